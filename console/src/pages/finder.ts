import type { Bundle, Patient } from 'fhir/r4';
import type { Page } from '../app';
import { announce, append, dataTable, field, h, link, message, pager, replace } from '../dom';
import { linkOf, queryString, resources } from '../fhir';
import { identifierText, nameOf } from '../format';

const PAGE_SIZE = 20;

/**
 * Patient finder: name, birth date and identifier go to Patient search as they are
 * (`name`, `birthdate`, `identifier`), one page of 20 at a time with the Bundle's own paging links,
 * and only the elements the table shows (_elements).
 */
export const finderPage: Page = async (app, view, _params, query) => {
  const name = h('input', {
    name: 'name',
    type: 'search',
    value: query.get('name') ?? '',
    autocomplete: 'off',
  });
  const birthdate = h('input', { name: 'birthdate', type: 'date', value: query.get('birthdate') ?? '' });
  const identifier = h('input', { name: 'identifier', type: 'search', value: query.get('identifier') ?? '' });
  const results = h('section', { 'aria-labelledby': 'results-h' });
  const form = h(
    'form',
    {
      role: 'search',
      class: 'row',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const q = queryString({ name: name.value, birthdate: birthdate.value, identifier: identifier.value });
        app.navigate(`/console/${q}`);
      },
    },
    field('Name', name, 'Any part of a name, e.g. "smi" finds Smith'),
    field('Birth date', birthdate),
    field('Identifier', identifier, 'value, or system|value'),
    h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Search')),
  );
  append(view, h('h1', { tabindex: '-1' }, 'Find a patient'), form, results);

  const openForm = openResourceForm(app);
  append(view, openForm);

  const q = {
    name: query.get('name') ?? undefined,
    birthdate: query.get('birthdate') ?? undefined,
    identifier: query.get('identifier') ?? undefined,
    _count: String(PAGE_SIZE),
    _elements: 'name,birthDate,gender,identifier',
    _sort: 'family',
  };
  const page = query.get('page');
  await show(page ? app.client.json<Bundle>(page) : app.client.search('Patient', q));

  async function show(pending: Promise<Bundle>): Promise<void> {
    replace(results, h('h2', { id: 'results-h' }, 'Patients'), h('p', { class: 'muted' }, 'Searching…'));
    let bundle: Bundle;
    try {
      bundle = await pending;
    } catch (e) {
      replace(results, h('h2', { id: 'results-h' }, 'Patients'), message((e as Error).message, 'error'));
      return;
    }
    const patients = resources<Patient>(bundle);
    announce(`${patients.length} patient${patients.length === 1 ? '' : 's'} found`);
    const rows = patients.map((p) =>
      h(
        'tr',
        {},
        h('td', {}, link(`/console/patient/${encodeURIComponent(p.id ?? '')}`, nameOf(p.name))),
        h('td', {}, p.birthDate ?? ''),
        h('td', {}, p.gender ?? ''),
        h('td', {}, (p.identifier ?? []).slice(0, 2).map(identifierText).join('; ')),
      ),
    );
    replace(
      results,
      h('h2', { id: 'results-h' }, 'Patients'),
      patients.length === 0
        ? message('No patient matches.')
        : dataTable('Matching patients', ['Name', 'Birth date', 'Gender', 'Identifiers'], rows),
      pager(
        'Result pages',
        [
          [linkOf(bundle, 'previous'), 'Previous page'],
          [linkOf(bundle, 'next'), 'Next page'],
        ],
        (url) => void show(app.client.json<Bundle>(url)),
      ),
    );
  }
};

/** Any resource by Type/id: its JSON and version history. */
function openResourceForm(app: Parameters<Page>[0]): HTMLElement {
  const ref = h('input', {
    name: 'reference',
    placeholder: 'Observation/123',
    pattern: '[A-Za-z]+/[A-Za-z0-9.\\-]+',
  });
  return h(
    'form',
    {
      class: 'row card',
      'aria-label': 'Open a resource',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const m = /^([A-Za-z]+)\/([A-Za-z0-9.-]{1,64})$/.exec(ref.value.trim());
        if (m) app.navigate(`/console/resource/${m[1]}/${m[2]}`);
      },
    },
    field('Open any resource (Type/id)', ref),
    h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Open')),
  );
}
