import type { AuditEvent, Bundle, Parameters } from 'fhir/r4';
import type { App, Page } from '../app';
import { announce, append, dataTable, field, h, link, message, pager, replace, saveBlob } from '../dom';
import { errorOf, linkOf, queryString, resources } from '../fhir';
import { dateText } from '../format';

const ACTIONS: Array<[string, string]> = [
  ['', 'Any action'],
  ['C', 'Create'],
  ['R', 'Read'],
  ['U', 'Update'],
  ['D', 'Delete'],
  ['E', 'Execute (search, operation)'],
];

/** One AuditEvent as a row: who, what, how, outcome (the access report's columns, shortened). */
function who(e: AuditEvent): string {
  const a = e.agent.find((x) => x.requestor) ?? e.agent[0];
  return a?.who?.identifier?.value ?? a?.who?.display ?? a?.who?.reference ?? '';
}

function what(e: AuditEvent): string {
  const r = e.entity?.find((x) => x.role?.code === '4')?.what?.reference;
  if (r) return r;
  const q = e.entity?.find((x) => x.role?.code === '24');
  if (q) {
    let decoded = '';
    try {
      decoded = q.query ? atob(q.query) : '';
    } catch {
      decoded = '';
    }
    return `${q.description ?? ''}?${decoded}`;
  }
  return e.entity?.[0]?.what?.reference ?? '';
}

function outcomeText(e: AuditEvent): string {
  const o =
    e.outcome === '0'
      ? 'success'
      : e.outcome === '4'
        ? 'failed'
        : e.outcome === '8'
          ? 'server error'
          : (e.outcome ?? '');
  return e.outcome === '0' ? o : `${o}${e.outcomeDesc ? ` (${e.outcomeDesc})` : ''}`;
}

function eventRow(e: AuditEvent): HTMLElement {
  const target = what(e);
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9.-]+)(\/_history\/[^/]+)?$/.exec(target);
  return h(
    'tr',
    {},
    h(
      'td',
      { class: 'when' },
      e.id ? link(`/console/resource/AuditEvent/${e.id}`, dateText(e.recorded)) : dateText(e.recorded),
    ),
    h('td', {}, who(e)),
    h('td', {}, e.action ?? ''),
    h('td', {}, e.subtype?.map((s) => s.code).join(' ') ?? ''),
    h('td', { class: 'wrap' }, m ? link(`/console/resource/${m[1]}/${m[2]}`, target) : target),
    h('td', {}, outcomeText(e)),
  );
}

function eventTable(caption: string, events: AuditEvent[]): HTMLElement {
  return dataTable(
    caption,
    ['Recorded', 'User', 'Action', 'Interaction', 'Resource or query', 'Outcome'],
    events.map(eventRow),
  );
}

/**
 * The audit trail (AuditEvent search: agent:identifier, patient, entity, action, date), a patient's
 * access report ($access-report, with the CSV as a download) and the hash chain check ($verify).
 */
export const auditPage: Page = async (app, view, _params, query) => {
  append(view, h('h1', { tabindex: '-1' }, 'Audit'));
  const trail = h(
    'section',
    { class: 'card', 'aria-labelledby': 'trail-h' },
    h('h2', { id: 'trail-h' }, 'Audit trail'),
  );
  const report = h(
    'section',
    { class: 'card', 'aria-labelledby': 'report-h' },
    h('h2', { id: 'report-h' }, 'Access report'),
  );
  const verify = h(
    'section',
    { class: 'card', 'aria-labelledby': 'verify-h' },
    h('h2', { id: 'verify-h' }, 'Audit chain'),
  );
  append(view, trail, report, verify);
  renderVerify(app, verify);
  const reportFor = query.get('report');
  const tasks: Array<Promise<void>> = [
    renderTrail(app, trail, query),
    renderReport(app, report, reportFor ?? query.get('patient') ?? '', reportFor !== null),
  ];
  if (reportFor !== null) report.scrollIntoView();
  await Promise.all(tasks);
};

async function renderTrail(app: App, el: HTMLElement, query: URLSearchParams): Promise<void> {
  const user = h('input', { name: 'user', value: query.get('user') ?? '', autocomplete: 'off' });
  const patient = h('input', {
    name: 'patient',
    value: query.get('patient') ?? '',
    placeholder: 'Patient id',
  });
  const entity = h('input', {
    name: 'entity',
    value: query.get('entity') ?? '',
    placeholder: 'Observation/123',
  });
  const action = h(
    'select',
    { name: 'action' },
    ACTIONS.map(([v, l]) => h('option', { value: v, selected: (query.get('action') ?? '') === v }, l)),
  );
  const from = h('input', { name: 'from', type: 'date', value: query.get('from') ?? '' });
  const to = h('input', { name: 'to', type: 'date', value: query.get('to') ?? '' });
  const results = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    {
      class: 'row',
      'aria-label': 'Filter the audit trail',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        app.navigate(
          `/console/audit${queryString({ user: user.value, patient: patient.value, entity: entity.value, action: action.value, from: from.value, to: to.value })}`,
        );
      },
    },
    field('User', user, 'token subject, or anonymous'),
    field('Patient', patient),
    field('Resource', entity),
    field('Action', action),
    field('From', from),
    field('To', to),
    h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Filter')),
  );
  append(el, form, results);

  const pid = query.get('patient')?.trim();
  const q = {
    'agent:identifier': query.get('user') ?? undefined,
    patient: pid ? (pid.startsWith('Patient/') ? pid : `Patient/${pid}`) : undefined,
    entity: query.get('entity') ?? undefined,
    action: query.get('action') ?? undefined,
    date: [query.get('from') ? `ge${query.get('from')}` : '', query.get('to') ? `le${query.get('to')}` : ''],
    _sort: '-date',
    _count: '25',
  };
  const show = async (pending: Promise<Bundle>): Promise<void> => {
    replace(results, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const b = await pending;
      const events = resources<AuditEvent>(b);
      announce(`${events.length} audit events`);
      replace(
        results,
        events.length === 0
          ? message('No audit event matches.')
          : eventTable('Audit events, newest first', events),
        pager(
          'Audit pages',
          [
            [linkOf(b, 'previous'), 'Newer'],
            [linkOf(b, 'next'), 'Older'],
          ],
          (url) => void show(app.client.json<Bundle>(url)),
        ),
      );
    } catch (e) {
      replace(results, message((e as Error).message, 'error'));
    }
  };
  await show(app.client.search('AuditEvent', q));
}

async function renderReport(app: App, el: HTMLElement, initial: string, run: boolean): Promise<void> {
  const patient = h('input', {
    name: 'report-patient',
    value: initial.replace(/^Patient\//, ''),
    required: true,
    placeholder: 'Patient id',
  });
  const start = h('input', { name: 'start', type: 'date' });
  const end = h('input', { name: 'end', type: 'date' });
  const out = h('div', { 'aria-live': 'polite' });
  const params = (): string => queryString({ start: start.value, end: end.value });
  const base = (): string => `Patient/${encodeURIComponent(patient.value.trim())}/$access-report`;
  const download = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        if (!patient.value.trim()) return patient.focus();
        const res = await app.client.fetch(`${base()}${params()}`, {}, 'text/csv');
        if (!res.ok) return replace(out, message((await errorOf(res)).message, 'error'));
        saveBlob(await res.blob(), `access-report-${patient.value.trim()}.csv`);
        announce('Access report downloaded');
      },
    },
    'Download CSV',
  );
  const show = async (): Promise<void> => {
    replace(out, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const b = await app.client.json<Bundle>(`${base()}${params()}`);
      const events = resources<AuditEvent>(b);
      const warning = b.entry?.find((e) => e.search?.mode === 'outcome');
      replace(
        out,
        h(
          'p',
          {},
          `${events.length} accesses to the records of Patient/${patient.value.trim()}, oldest first.`,
        ),
        warning ? message('The report was cut at its limit: narrow the period.', 'error') : '',
        events.length > 0 ? eventTable('Accesses to the patient records', events.slice(-200)) : '',
        events.length > 200
          ? h('p', { class: 'muted' }, 'The 200 most recent are shown; the CSV has them all.')
          : '',
      );
    } catch (e) {
      replace(out, message((e as Error).message, 'error'));
    }
  };
  append(
    el,
    h(
      'form',
      {
        class: 'row',
        'aria-label': 'Access report',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          void show();
        },
      },
      field('Patient', patient),
      field('From', start),
      field('To', end),
      h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Show report'), ' ', download),
    ),
    out,
  );
  if (run && initial) await show();
}

function renderVerify(app: App, el: HTMLElement): void {
  const out = h('div', { 'aria-live': 'polite' });
  append(
    el,
    h('p', {}, 'Walks the hash chain of every AuditEvent and reports the first break, if any.'),
    h(
      'button',
      {
        type: 'button',
        onclick: async () => {
          replace(out, h('p', { class: 'muted' }, 'Verifying…'));
          try {
            const p = await app.client.json<Parameters>('AuditEvent/$verify');
            const get = (n: string) => p.parameter?.find((x) => x.name === n);
            const ok = get('result')?.valueBoolean === true;
            const head = get('head')?.part ?? [];
            const brk = get('break')?.part ?? [];
            const part = (parts: typeof head, n: string): string => {
              const x = parts.find((y) => y.name === n);
              return x?.valueString ?? x?.valueId ?? '';
            };
            replace(
              out,
              h(
                'p',
                { class: `msg ${ok ? 'ok' : 'error'}`, role: ok ? null : 'alert' },
                ok ? 'The chain is intact.' : 'The chain is broken.',
              ),
              h(
                'dl',
                { class: 'facts' },
                h('div', {}, h('dt', {}, 'Checked'), h('dd', {}, String(get('checked')?.valueInteger ?? ''))),
                h('div', {}, h('dt', {}, 'Head sequence'), h('dd', {}, part(head, 'sequence'))),
                h('div', {}, h('dt', {}, 'Head hash'), h('dd', { class: 'mono' }, part(head, 'hash'))),
                brk.length
                  ? h(
                      'div',
                      {},
                      h('dt', {}, 'First break'),
                      h('dd', {}, `#${part(brk, 'sequence')} ${part(brk, 'id')}: ${part(brk, 'reason')}`),
                    )
                  : '',
              ),
            );
          } catch (e) {
            replace(out, message((e as Error).message, 'error'));
          }
        },
      },
      'Verify the chain',
    ),
    out,
  );
}
