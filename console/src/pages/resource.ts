import type { Bundle, Resource } from 'fhir/r4';
import type { Page } from '../app';
import { append, dataTable, field, h, link, message, replace } from '../dom';
import { canonicalJson, diffLines } from '../diff';
import { ApiError } from '../fhir';
import { dateText } from '../format';

interface Version {
  versionId: string;
  lastUpdated: string;
  method: string;
  resource?: Resource;
}

/**
 * Any resource: its current JSON, its versions (`_history`) and a line diff between two of them.
 * The history is read one page of up to 100 versions.
 */
export const resourcePage: Page = async (app, view, [type = '', id = '']) => {
  const path = `${type}/${encodeURIComponent(id)}`;
  append(view, h('h1', { tabindex: '-1' }, `${type}/${id}`));
  let history: Bundle;
  try {
    history = await app.client.json<Bundle>(`${path}/_history?_count=100`);
  } catch (e) {
    const text =
      e instanceof ApiError && e.status === 404 ? `There is no ${type}/${id}.` : (e as Error).message;
    append(view, message(text, 'error'));
    return;
  }
  const versions: Version[] = (history.entry ?? []).map((e) => ({
    versionId: e.resource?.meta?.versionId ?? /_history\/([^/]+)$/.exec(e.fullUrl ?? '')?.[1] ?? '?',
    lastUpdated: e.resource?.meta?.lastUpdated ?? e.response?.lastModified ?? '',
    method: e.request?.method ?? '',
    resource: e.resource,
  }));
  const current = versions[0];
  if (type === 'Patient')
    append(view, h('p', {}, link(`/console/patient/${encodeURIComponent(id)}`, 'Open the chart')));

  const json = h('pre', { class: 'json', tabindex: '0', 'aria-label': 'Resource JSON' });
  const heading = h('h2', { id: 'json-h' }, 'Current version');
  if (current?.resource) {
    heading.textContent = `Version ${current.versionId} (${dateText(current.lastUpdated)})`;
    json.textContent = JSON.stringify(current.resource, null, 2);
  } else {
    heading.textContent = `Deleted (version ${current?.versionId ?? '?'}, ${dateText(current?.lastUpdated)})`;
    json.textContent = '';
  }

  const rows = versions.map((v) =>
    h(
      'tr',
      {},
      h('td', {}, v.versionId),
      h('td', {}, dateText(v.lastUpdated)),
      h('td', {}, v.resource ? v.method || 'PUT' : 'DELETE'),
      h(
        'td',
        {},
        v.resource
          ? h(
              'button',
              {
                type: 'button',
                class: 'small',
                onclick: () => {
                  heading.textContent = `Version ${v.versionId} (${dateText(v.lastUpdated)})`;
                  json.textContent = JSON.stringify(v.resource, null, 2);
                },
              },
              `Show version ${v.versionId}`,
            )
          : '',
      ),
    ),
  );
  const withBody = versions.filter((v) => v.resource);
  const options = (): HTMLOptionElement[] =>
    withBody.map((v) => h('option', { value: v.versionId }, `${v.versionId} · ${dateText(v.lastUpdated)}`));
  const from = h('select', { name: 'from' }, options());
  const to = h('select', { name: 'to' }, options());
  if (withBody.length > 1) from.selectedIndex = 1;
  const diffOut = h('div', { class: 'diff-out', 'aria-live': 'polite' });
  const showDiff = (): void => {
    const a = withBody.find((v) => v.versionId === from.value)?.resource;
    const b = withBody.find((v) => v.versionId === to.value)?.resource;
    if (!a || !b) return;
    const lines = diffLines(canonicalJson(a), canonicalJson(b));
    const changed = lines.filter((l) => l.kind !== 'same').length;
    replace(
      diffOut,
      h(
        'p',
        {},
        changed === 0 ? 'The two versions are the same.' : `${changed} changed lines (keys sorted).`,
      ),
      h(
        'pre',
        { class: 'diff', tabindex: '0', 'aria-label': `Changes from version ${from.value} to ${to.value}` },
        lines.map((l) =>
          h(
            'span',
            { class: `d-${l.kind}` },
            h('span', { class: 'sr-only' }, l.kind === 'same' ? '' : `${l.kind}: `),
            `${l.kind === 'added' ? '+ ' : l.kind === 'removed' ? '- ' : '  '}${l.text}\n`,
          ),
        ),
      ),
    );
  };
  from.addEventListener('change', showDiff);
  to.addEventListener('change', showDiff);

  append(
    view,
    h(
      'div',
      { class: 'two-col' },
      h('section', { class: 'card', 'aria-labelledby': 'json-h' }, heading, json),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'history-h' },
        h(
          'h2',
          { id: 'history-h' },
          `History (${versions.length} version${versions.length === 1 ? '' : 's'})`,
        ),
        dataTable('Versions, newest first', ['Version', 'Changed', 'How', ''], rows),
        withBody.length > 1
          ? h(
              'div',
              {},
              h('h3', {}, 'Compare versions'),
              h('div', { class: 'row' }, field('From', from), field('To', to)),
              diffOut,
            )
          : h('p', { class: 'muted' }, 'One version: nothing to compare.'),
      ),
    ),
  );
  if (withBody.length > 1) showDiff();
};
