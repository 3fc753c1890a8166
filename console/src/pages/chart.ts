import type {
  Attachment,
  Binary,
  Bundle,
  Condition,
  DocumentReference,
  Encounter,
  MedicationRequest,
  MedicationStatement,
  Observation,
  Patient,
} from 'fhir/r4';
import type { App, Page } from '../app';
import { append, dataTable, h, link, message, replace, saveBlob, svg } from '../dom';
import { ApiError, linkOf, resources } from '../fhir';
import {
  ageOf,
  conceptText,
  dateText,
  identifierText,
  nameOf,
  periodText,
  quantityText,
  referenceText,
  timeOf,
} from '../format';
import { timePlot, type PlotSeries } from '../plot';

/**
 * The patient chart. Each section is one bounded search in the Patient's compartment (newest first,
 * `_count`, `_elements`), loaded in parallel, so a patient with years of data opens as fast as a new one.
 */
export const chartPage: Page = async (app, view, [id = '']) => {
  const header = h('section', { class: 'card', 'aria-labelledby': 'patient-h' });
  append(view, header);
  let patient: Patient;
  try {
    patient = await app.client.read<Patient>('Patient', id);
  } catch (e) {
    const text =
      e instanceof ApiError && e.status === 404 ? `There is no Patient/${id}.` : (e as Error).message;
    append(view, h('h1', { tabindex: '-1' }, 'Patient not found'), message(text, 'error'));
    header.remove();
    return;
  }
  renderHeader(header, patient);

  const sections = {
    encounters: section('encounters', 'Encounters'),
    conditions: section('conditions', 'Conditions'),
    medications: section('medications', 'Medications'),
    observations: section('observations', 'Observations'),
    documents: section('documents', 'Documents'),
  };
  append(
    view,
    h(
      'div',
      { class: 'chart-grid' },
      sections.observations,
      sections.encounters,
      sections.conditions,
      sections.medications,
      sections.documents,
    ),
  );
  const p = patient.id ?? id;
  await Promise.all([
    load(sections.observations, () => observations(app, p, sections.observations)),
    load(sections.encounters, () => encounters(app, p)),
    load(sections.conditions, () => conditions(app, p)),
    load(sections.medications, () => medications(app, p)),
    load(sections.documents, () => documents(app, p)),
  ]);
};

function renderHeader(el: HTMLElement, p: Patient): void {
  const age = ageOf(p.birthDate);
  const facts: Array<[string, string]> = [
    ['Gender', p.gender ?? 'unknown'],
    [
      'Birth date',
      p.birthDate ? `${p.birthDate}${age !== undefined && !p.deceasedDateTime ? ` (${age} y)` : ''}` : '',
    ],
    ['Deceased', p.deceasedDateTime ? dateText(p.deceasedDateTime) : p.deceasedBoolean ? 'yes' : ''],
    ['Identifiers', (p.identifier ?? []).map(identifierText).join('; ')],
    [
      'Address',
      (p.address ?? [])
        .slice(0, 1)
        .map(
          (a) =>
            a.text ??
            [a.line?.join(' '), a.city, a.state, a.postalCode, a.country].filter(Boolean).join(', '),
        )
        .join(''),
    ],
    ['Phone', (p.telecom ?? []).filter((t) => t.system === 'phone').map((t) => t.value ?? '')[0] ?? ''],
    ['Language', p.communication?.map((c) => conceptText(c.language)).join(', ') ?? ''],
  ];
  const id = encodeURIComponent(p.id ?? '');
  replace(
    el,
    h('h1', { id: 'patient-h', tabindex: '-1' }, nameOf(p.name)),
    h(
      'dl',
      { class: 'facts' },
      facts.filter(([, v]) => v !== '').map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))),
    ),
    h(
      'p',
      { class: 'actions' },
      link(`/console/resource/Patient/${id}`, 'JSON and history'),
      link(`/console/audit?patient=${id}`, 'Audit trail'),
      link(`/console/audit?report=${id}`, 'Access report'),
    ),
  );
}

function section(key: string, title: string): HTMLElement {
  return h(
    'section',
    { class: `card ${key}`, 'aria-labelledby': `${key}-h`, 'aria-busy': 'true' },
    h('h2', { id: `${key}-h` }, title),
    h('p', { class: 'muted' }, 'Loading…'),
  );
}

async function load(el: HTMLElement, fill: () => Promise<Array<Node | string>>): Promise<void> {
  const heading = el.querySelector('h2');
  try {
    const content = await fill();
    replace(el, heading, content);
  } catch (e) {
    replace(el, heading, message((e as Error).message, 'error'));
  }
  el.setAttribute('aria-busy', 'false');
}

function resLink(type: string, id: string | undefined, text: string): HTMLElement | string {
  return id ? link(`/console/resource/${type}/${encodeURIComponent(id)}`, text || `${type}/${id}`) : text;
}

function moreNote(b: Bundle, shown: number, what: string): HTMLElement | string {
  return linkOf(b, 'next') ? h('p', { class: 'muted' }, `The ${shown} most recent ${what} are shown.`) : '';
}

// --- encounters: a timeline and the latest ones as a table ---

async function encounters(app: App, patient: string): Promise<Array<Node | string>> {
  const b = await app.client.search('Encounter', {
    patient,
    _sort: '-date',
    _count: '100',
    _elements: 'period,class,type,status,reasonCode,serviceProvider',
  });
  const list = resources<Encounter>(b);
  if (list.length === 0) return [message('No encounters.')];
  const rows = list
    .slice(0, 10)
    .map((e) =>
      h(
        'tr',
        {},
        h('td', {}, periodText(e.period)),
        h(
          'td',
          {},
          resLink('Encounter', e.id, conceptText(e.type?.[0]) || e.class?.display || e.class?.code || ''),
        ),
        h('td', {}, e.status),
        h('td', {}, conceptText(e.reasonCode?.[0])),
      ),
    );
  return [
    timeline(list),
    dataTable('Most recent encounters', ['When', 'Type', 'Status', 'Reason'], rows),
    list.length > 10
      ? h('p', { class: 'muted' }, `${list.length - 10} older encounters are on the timeline.`)
      : '',
    moreNote(b, list.length, 'encounters'),
  ];
}

/** Encounters as marks on a time line (SVG), each with a tooltip; the table below has the same facts. */
function timeline(list: Encounter[]): Element {
  const points = list
    .map((e) => ({ e, t: timeOf(e.period?.start ?? e.period?.end) }))
    .filter((x): x is { e: Encounter; t: number } => x.t !== undefined);
  const W = 1000;
  const H = 70;
  const pad = 20;
  if (points.length === 0) return h('span');
  const min = Math.min(...points.map((x) => x.t));
  const max = Math.max(...points.map((x) => x.t));
  const span = Math.max(max - min, 86_400_000);
  const x = (t: number): number => pad + ((t - min) / span) * (W - 2 * pad);
  const classes = [...new Set(points.map((p) => p.e.class?.code ?? ''))];
  const first = new Date(min).getUTCFullYear();
  const last = new Date(max).getUTCFullYear();
  const ticks: Element[] = [];
  const step = Math.max(1, Math.ceil((last - first + 1) / 8));
  for (let y = first; y <= last + 1; y += step) {
    const t = Date.UTC(y, 0, 1);
    if (t < min || t > min + span) continue;
    ticks.push(
      svg('line', { x1: x(t), x2: x(t), y1: 36, y2: 44, class: 'tick' }),
      svg('text', { x: x(t), y: 60, 'text-anchor': 'middle', class: 'tick-label' }, String(y)),
    );
  }
  return svg(
    'svg',
    {
      class: 'timeline',
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': `Timeline of ${points.length} encounters from ${dateText(new Date(min).toISOString())} to ${dateText(new Date(max).toISOString())}`,
    },
    svg('line', { x1: pad, x2: W - pad, y1: 40, y2: 40, class: 'axis' }),
    ticks,
    svg('text', { x: pad, y: 14, class: 'tick-label' }, dateText(new Date(min).toISOString()).slice(0, 10)),
    svg(
      'text',
      { x: W - pad, y: 14, 'text-anchor': 'end', class: 'tick-label' },
      dateText(new Date(max).toISOString()).slice(0, 10),
    ),
    points.map(({ e, t }) =>
      svg(
        'circle',
        {
          cx: x(t),
          cy: 40 - 10 * (classes.indexOf(e.class?.code ?? '') % 3),
          r: 5,
          class: `mark c${classes.indexOf(e.class?.code ?? '') % 4}`,
        },
        svg('title', {}, `${periodText(e.period)} ${conceptText(e.type?.[0]) || e.class?.code || ''}`),
      ),
    ),
  );
}

// --- conditions and medications ---

async function conditions(app: App, patient: string): Promise<Array<Node | string>> {
  const b = await app.client.search('Condition', {
    patient,
    _sort: '-recorded-date',
    _count: '100',
    _elements:
      'code,clinicalStatus,verificationStatus,onsetDateTime,onsetPeriod,abatementDateTime,recordedDate',
  });
  const list = resources<Condition>(b);
  if (list.length === 0) return [message('No conditions.')];
  const rows = list.map((c) =>
    h(
      'tr',
      {},
      h('td', {}, resLink('Condition', c.id, conceptText(c.code))),
      h('td', {}, conceptText(c.clinicalStatus)),
      h('td', {}, dateText(c.onsetDateTime ?? c.onsetPeriod?.start ?? c.recordedDate)),
      h('td', {}, dateText(c.abatementDateTime)),
    ),
  );
  return [
    dataTable('Conditions', ['Condition', 'Status', 'Onset', 'Resolved'], rows),
    moreNote(b, list.length, 'conditions'),
  ];
}

async function medications(app: App, patient: string): Promise<Array<Node | string>> {
  const [requests, statements] = await Promise.all([
    app.client.search('MedicationRequest', {
      patient,
      _sort: '-authoredon',
      _count: '100',
      _elements: 'medicationCodeableConcept,medicationReference,status,intent,authoredOn,dosageInstruction',
    }),
    app.client.search('MedicationStatement', {
      patient,
      _count: '50',
      _elements:
        'medicationCodeableConcept,medicationReference,status,effectiveDateTime,effectivePeriod,dosage',
    }),
  ]);
  const rows = [
    ...resources<MedicationRequest>(requests).map((m) => ({
      type: 'MedicationRequest',
      id: m.id,
      what: conceptText(m.medicationCodeableConcept) || referenceText(m.medicationReference),
      kind: `Request (${m.intent})`,
      status: m.status,
      when: m.authoredOn,
      dose: m.dosageInstruction?.[0]?.text ?? '',
    })),
    ...resources<MedicationStatement>(statements).map((m) => ({
      type: 'MedicationStatement',
      id: m.id,
      what: conceptText(m.medicationCodeableConcept) || referenceText(m.medicationReference),
      kind: 'Statement',
      status: m.status,
      when: m.effectiveDateTime ?? m.effectivePeriod?.start,
      dose: m.dosage?.[0]?.text ?? '',
    })),
  ].sort((a, b) => (b.when ?? '').localeCompare(a.when ?? ''));
  if (rows.length === 0) return [message('No medications.')];
  return [
    dataTable(
      'Medications',
      ['Medication', 'Kind', 'Status', 'Date', 'Dosage'],
      rows.map((r) =>
        h(
          'tr',
          {},
          h('td', {}, resLink(r.type, r.id, r.what)),
          h('td', {}, r.kind),
          h('td', {}, r.status),
          h('td', {}, dateText(r.when)),
          h('td', {}, r.dose),
        ),
      ),
    ),
    moreNote(requests, rows.length, 'medications'),
  ];
}

// --- documents with their attachments ---

async function documents(app: App, patient: string): Promise<Array<Node | string>> {
  const b = await app.client.search('DocumentReference', {
    patient,
    _sort: '-date',
    _count: '20',
    _elements: 'type,category,date,description,status,content',
  });
  const list = resources<DocumentReference>(b);
  if (list.length === 0) return [message('No documents.')];
  const items = list.map((d) =>
    h(
      'li',
      {},
      h(
        'div',
        {},
        h(
          'strong',
          {},
          resLink('DocumentReference', d.id, conceptText(d.type) || d.description || 'Document'),
        ),
        ' ',
        h('span', { class: 'muted' }, [dateText(d.date), d.status].filter(Boolean).join(' · ')),
      ),
      d.description ? h('div', {}, d.description) : '',
      h(
        'ul',
        { class: 'attachments' },
        (d.content ?? []).map((c, i) => attachmentItem(app, c.attachment, `${d.id ?? 'document'}-${i + 1}`)),
      ),
    ),
  );
  return [h('ul', { class: 'documents' }, items), moreNote(b, list.length, 'documents')];
}

function attachmentItem(app: App, a: Attachment, fallbackName: string): HTMLElement {
  const type = a.contentType ?? 'application/octet-stream';
  const name = a.title ?? `${fallbackName}.${extensionOf(type)}`;
  const size = a.size ?? (a.data ? Math.floor((a.data.length * 3) / 4) : undefined);
  const label = `${name} (${type}${size !== undefined ? `, ${formatSize(size)}` : ''})`;
  const viewer = h('div');
  const li = h('li', {}, h('span', {}, label), ' ');
  const external = a.url && /^https?:/i.test(a.url) && !a.url.startsWith(app.client.settings.fhirBase);
  if (external && a.url) {
    append(li, h('a', { href: a.url, target: '_blank', rel: 'noopener noreferrer' }, 'Open (external)'));
    return li;
  }
  if (!a.data && !a.url) {
    append(li, h('span', { class: 'muted' }, 'no content'));
    return li;
  }
  const content = async (): Promise<Blob> => {
    if (a.data) return new Blob([base64Bytes(a.data)], { type });
    // Binary/[id] on this server: read as FHIR JSON (so the same token and policy apply).
    const bin = await app.client.json<Binary>(a.url ?? '');
    return new Blob([base64Bytes(bin.data ?? '')], { type: bin.contentType ?? type });
  };
  append(
    li,
    h(
      'button',
      {
        type: 'button',
        class: 'small',
        onclick: () =>
          void content().then(
            (blob) => saveBlob(blob, name),
            (e: Error) => replace(viewer, message(e.message, 'error')),
          ),
      },
      'Download',
    ),
  );
  if (type.startsWith('text/')) {
    append(
      li,
      ' ',
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          'aria-expanded': 'false',
          onclick: (ev: Event) => {
            const btn = ev.currentTarget as HTMLButtonElement;
            if (btn.getAttribute('aria-expanded') === 'true') {
              replace(viewer);
              btn.setAttribute('aria-expanded', 'false');
              return;
            }
            btn.setAttribute('aria-expanded', 'true');
            void content()
              .then((blob) => blob.text())
              .then(
                (text) => replace(viewer, h('pre', { class: 'note', tabindex: '0' }, text)),
                (e: Error) => replace(viewer, message(e.message, 'error')),
              );
          },
        },
        'Show',
      ),
    );
  }
  append(li, viewer);
  return li;
}

function base64Bytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64.replace(/\s+/g, ''));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function extensionOf(type: string): string {
  const known: Record<string, string> = {
    'text/plain': 'txt',
    'text/html': 'html',
    'application/pdf': 'pdf',
    'image/png': 'png',
    'image/jpeg': 'jpg',
    'application/json': 'json',
  };
  return known[type.split(';')[0]?.trim() ?? ''] ?? 'bin';
}

function formatSize(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} kB`
      : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// --- observations: latest value per code, and plots of the numeric ones ---

interface CodeGroup {
  key: string;
  label: string;
  unit: string;
  latest: Observation;
  count: number;
  series: Map<string, PlotSeries>;
}

function obsTime(o: Observation): number | undefined {
  return timeOf(o.effectiveDateTime ?? o.effectiveInstant ?? o.effectivePeriod?.start ?? o.issued);
}

function valueText(o: Observation): string {
  if (o.valueQuantity) return quantityText(o.valueQuantity);
  if (o.valueCodeableConcept) return conceptText(o.valueCodeableConcept);
  if (o.valueString !== undefined) return o.valueString;
  if (o.valueBoolean !== undefined) return String(o.valueBoolean);
  if (o.valueInteger !== undefined) return String(o.valueInteger);
  if (o.component?.length)
    return o.component
      .map(
        (c) =>
          `${conceptText(c.code)} ${c.valueQuantity ? quantityText(c.valueQuantity) : conceptText(c.valueCodeableConcept)}`,
      )
      .join(', ');
  return '';
}

function groupObservations(list: Observation[]): CodeGroup[] {
  const groups = new Map<string, CodeGroup>();
  for (const o of list) {
    const c = o.code.coding?.[0];
    const key = c?.code ? `${c.system ?? ''}|${c.code}` : (o.code.text ?? '');
    let g = groups.get(key);
    if (!g) {
      g = { key, label: conceptText(o.code) || key, unit: '', latest: o, count: 0, series: new Map() };
      groups.set(key, g);
    }
    g.count += 1;
    const t = obsTime(o);
    if (t !== undefined && (obsTime(g.latest) ?? 0) < t) g.latest = o;
    if (t === undefined) continue;
    const add = (label: string, value: number | undefined, unit: string | undefined): void => {
      if (value === undefined || !Number.isFinite(value)) return;
      const grp = g as CodeGroup;
      if (!grp.unit && unit) grp.unit = unit;
      let s = grp.series.get(label);
      if (!s) grp.series.set(label, (s = { label, points: [] }));
      s.points.push([t, value]);
    };
    if (o.valueQuantity) add(g.label, o.valueQuantity.value, o.valueQuantity.unit ?? o.valueQuantity.code);
    for (const comp of o.component ?? [])
      if (comp.valueQuantity)
        add(
          conceptText(comp.code),
          comp.valueQuantity.value,
          comp.valueQuantity.unit ?? comp.valueQuantity.code,
        );
  }
  for (const g of groups.values()) for (const s of g.series.values()) s.points.sort((a, b) => a[0] - b[0]);
  return [...groups.values()].sort((a, b) => (obsTime(b.latest) ?? 0) - (obsTime(a.latest) ?? 0));
}

async function observations(app: App, patient: string, host: HTMLElement): Promise<Array<Node | string>> {
  const b = await app.client.search('Observation', {
    patient,
    _sort: '-date',
    _count: '500',
    _elements:
      'code,status,effectiveDateTime,effectiveInstant,effectivePeriod,issued,valueQuantity,valueCodeableConcept,valueString,valueBoolean,valueInteger,component',
  });
  const list = resources<Observation>(b);
  if (list.length === 0) return [message('No observations.')];
  const groups = groupObservations(list);
  const plottable = groups.filter((g) => [...g.series.values()].some((s) => s.points.length >= 1));
  const plotArea = h('div', { class: 'plot-area', 'aria-live': 'polite' });
  const buttons = new Map<string, HTMLButtonElement>();
  const showPlot = (g: CodeGroup): void => {
    for (const [k, btn] of buttons) btn.setAttribute('aria-pressed', String(k === g.key));
    const width = (host.clientWidth || 720) - 40;
    replace(plotArea, timePlot(g.label, g.unit, [...g.series.values()], width));
  };
  const rows = groups.map((g) => {
    const numeric = plottable.includes(g);
    let btn: HTMLButtonElement | null = null;
    if (numeric) {
      btn = h(
        'button',
        { type: 'button', class: 'small', 'aria-pressed': 'false', onclick: () => showPlot(g) },
        'Plot',
      );
      buttons.set(g.key, btn);
    }
    return h(
      'tr',
      {},
      h('td', {}, resLink('Observation', g.latest.id, g.label)),
      h('td', {}, valueText(g.latest)),
      h(
        'td',
        {},
        dateText(
          g.latest.effectiveDateTime ??
            g.latest.effectiveInstant ??
            g.latest.effectivePeriod?.start ??
            g.latest.issued,
        ),
      ),
      h('td', { class: 'num' }, String(g.count)),
      h('td', {}, btn),
    );
  });
  // Start with the numeric code that has the most readings (vital signs, usually).
  const first = [...plottable].sort((a, b) => b.count - a.count)[0];
  const result: Array<Node | string> = [
    plotArea,
    dataTable(
      'Latest observation of each kind',
      ['Observation', 'Latest value', 'Date', 'Readings', ''],
      rows,
    ),
    moreNote(b, list.length, 'observations'),
  ];
  // Plot after the section is in place, so it can take the section's width.
  if (first) setTimeout(() => showPlot(first), 0);
  return result;
}
