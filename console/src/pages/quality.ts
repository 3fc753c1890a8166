import type { Bundle, CapabilityStatement, OperationOutcome, OperationOutcomeIssue } from 'fhir/r4';
import type { App, Page } from '../app';
import { announce, append, field, h, link, message, replace } from '../dom';
import { linkOf, queryString, resources } from '../fhir';

/** One kind of problem and the resources that have it. */
interface IssueGroup {
  severity: string;
  code: string;
  expression: string;
  example: string;
  resources: Array<{ ref: string; diagnostics: string }>;
}

/** A validation run: lives in the module, so it goes on while the user looks at other pages. */
interface QualityRun {
  types: string[];
  profiles: string[];
  warnings: boolean;
  phase: 'counting' | 'validating' | 'done' | 'cancelled' | 'failed';
  total: number;
  checked: number;
  failing: number;
  error?: string;
  started: Date;
  finished?: Date;
  groups: Map<string, IssueGroup>;
  cancel: boolean;
  listener?: () => void;
}

let run: QualityRun | undefined;
let metadata: Promise<Array<{ type: string; profiles: string[] }>> | undefined;

/** Resources validated at once: enough to keep the server busy, few enough to leave room for others. */
const CONCURRENCY = 4;
const PAGE = 100;
const SHOWN_PER_GROUP = 50;

/** The types the server stores and the profiles it holds for each (CapabilityStatement.supportedProfile). */
function capabilities(app: App): Promise<Array<{ type: string; profiles: string[] }>> {
  metadata ??= app.client
    .json<CapabilityStatement>('metadata')
    .then((cs) =>
      (cs.rest?.[0]?.resource ?? [])
        .map((r) => ({ type: r.type, profiles: r.supportedProfile ?? [] }))
        .sort((a, b) => a.type.localeCompare(b.type)),
    );
  return metadata;
}

/**
 * Data quality: `$validate` over every stored resource of a type (or of every type that has data),
 * against the profiles chosen, in the background with a progress bar. The list of resources comes
 * from search pages of ids (`_elements=id`, 100 at a time); each is validated where it is stored
 * (`GET [type]/[id]/$validate?profile=...`), four at a time.
 */
export const qualityPage: Page = async (app, view) => {
  append(view, h('h1', { tabindex: '-1' }, 'Data quality'));
  const types = await capabilities(app);
  const type = h(
    'select',
    { name: 'type' },
    h('option', { value: '' }, 'Every type that has data'),
    types.map((t) => h('option', { value: t.type }, t.type)),
  );
  const profile = h('select', { name: 'profile', multiple: true, size: 6 });
  const fillProfiles = (): void => {
    const shown = types.filter((t) => t.profiles.length > 0 && (!type.value || t.type === type.value));
    replace(
      profile,
      shown.map((t) =>
        h(
          'optgroup',
          { label: t.type },
          t.profiles.map((url) => h('option', { value: url, title: url }, url.split('/').pop() ?? url)),
        ),
      ),
    );
  };
  type.addEventListener('change', fillProfiles);
  fillProfiles();
  const warnings = h('input', { type: 'checkbox', name: 'warnings' });
  const start = h('button', { type: 'submit' }, 'Start validation');
  const cancel = h('button', { type: 'button', onclick: () => run && (run.cancel = true) }, 'Cancel');
  const progressArea = h('div', { 'aria-live': 'polite' });
  const results = h('section', { 'aria-labelledby': 'issues-h' });
  append(
    view,
    h(
      'form',
      {
        class: 'card',
        'aria-label': 'Validation run',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          if (run && (run.phase === 'counting' || run.phase === 'validating')) return;
          const chosen = [...profile.selectedOptions].map((o) => o.value);
          run = newRun(type.value ? [type.value] : [], chosen, warnings.checked);
          run.listener = update;
          // "Every type" leaves out the audit log: the server writes it, and validating it only adds to it.
          const every = types.map((t) => t.type).filter((t) => t !== 'AuditEvent');
          void execute(app, run, type.value ? [type.value] : every, types);
          update();
        },
      },
      h(
        'div',
        { class: 'row' },
        field('Resource type', type),
        field(
          'Profiles',
          profile,
          'Profiles this server holds; with none chosen, the base definitions and the profiles each resource claims',
        ),
      ),
      h('div', { class: 'row' }, h('label', { class: 'check' }, warnings, ' Include warnings')),
      h('div', { class: 'actions' }, start, ' ', cancel),
    ),
    progressArea,
    results,
  );

  let lastRender = 0;
  function update(): void {
    if (!view.isConnected) return;
    const r = run;
    if (!r) {
      replace(progressArea, h('p', { class: 'muted' }, 'No validation has run in this session.'));
      return;
    }
    const busy = r.phase === 'counting' || r.phase === 'validating';
    start.disabled = busy;
    cancel.disabled = !busy;
    const pct = r.total > 0 ? Math.round((r.checked / r.total) * 100) : 0;
    replace(
      progressArea,
      h(
        'div',
        { class: 'progress' },
        h('label', { for: 'q-progress' }, phaseText(r)),
        h('progress', { id: 'q-progress', max: Math.max(r.total, 1), value: r.checked }, `${pct}%`),
      ),
      r.error ? message(r.error, 'error') : '',
    );
    // Re-draw the list at most twice a second while running.
    const now = Date.now();
    if (busy && now - lastRender < 500) return;
    lastRender = now;
    renderGroups(results, r);
    if (!busy) announce(phaseText(r));
  }
  // A run started earlier goes on: this page now shows its progress.
  if (run) run.listener = update;
  update();
};

function newRun(types: string[], profiles: string[], warnings: boolean): QualityRun {
  return {
    types,
    profiles,
    warnings,
    phase: 'counting',
    total: 0,
    checked: 0,
    failing: 0,
    started: new Date(),
    groups: new Map(),
    cancel: false,
  };
}

function phaseText(r: QualityRun): string {
  const scope = `${r.types.length === 1 ? r.types[0] : 'all types'}${r.profiles.length ? ` against ${r.profiles.length} profile(s)` : ''}`;
  switch (r.phase) {
    case 'counting':
      return `Counting resources (${scope})…`;
    case 'validating':
      return `Validating ${scope}: ${r.checked.toLocaleString('en')} of ${r.total.toLocaleString('en')} checked, ${r.failing} with issues`;
    case 'done':
      return `Done: ${r.checked.toLocaleString('en')} resources of ${scope} checked, ${r.failing} with issues`;
    case 'cancelled':
      return `Cancelled after ${r.checked.toLocaleString('en')} resources, ${r.failing} with issues`;
    case 'failed':
      return `Stopped after ${r.checked.toLocaleString('en')} resources`;
  }
}

async function execute(
  app: App,
  r: QualityRun,
  candidateTypes: string[],
  held: Array<{ type: string; profiles: string[] }>,
): Promise<void> {
  const notify = (): void => r.listener?.();
  // A profile applies to the type it constrains: each type is checked against its own chosen ones,
  // and with profiles chosen, types none of them applies to are left out.
  const profilesFor = (t: string): string[] =>
    r.profiles.filter((p) => held.find((x) => x.type === t)?.profiles.includes(p));
  try {
    // A snapshot: resources written after the start (the AuditEvents of this very run among them) are
    // left for the next run, so paging ends and the total holds.
    const asOf = `le${r.started.toISOString()}`;
    // Which types, and how many of each (_summary=count: no resources travel).
    const candidates =
      r.profiles.length > 0 ? candidateTypes.filter((t) => profilesFor(t).length > 0) : candidateTypes;
    const counts: Array<[string, number]> = [];
    await pool(candidates, 6, async (t) => {
      if (r.cancel) return;
      const b = await app.client.search(t, { _summary: 'count', _lastUpdated: asOf });
      if ((b.total ?? 0) > 0) counts.push([t, b.total ?? 0]);
    });
    counts.sort((a, b) => a[0].localeCompare(b[0]));
    r.types = counts.map(([t]) => t);
    r.total = counts.reduce((n, [, c]) => n + c, 0);
    r.phase = 'validating';
    notify();
    for (const [t] of counts) {
      const q = queryString({ profile: profilesFor(t) });
      let next: string | undefined =
        `${t}${queryString({ _elements: 'id', _count: String(PAGE), _sort: '_id', _lastUpdated: asOf })}`;
      while (next && !r.cancel) {
        const page: Bundle = await app.client.json<Bundle>(next);
        const ids = resources(page)
          .map((x) => x.id)
          .filter((x): x is string => !!x);
        await pool(ids, CONCURRENCY, async (id) => {
          if (r.cancel) return;
          const oo = await app.client.json<OperationOutcome>(`${t}/${encodeURIComponent(id)}/$validate${q}`);
          record(r, `${t}/${id}`, oo.issue);
          r.checked += 1;
          notify();
        });
        next = linkOf(page, 'next');
      }
      if (r.cancel) break;
    }
    r.phase = r.cancel ? 'cancelled' : 'done';
  } catch (e) {
    r.phase = 'failed';
    r.error = (e as Error).message;
  }
  r.finished = new Date();
  notify();
}

/** Runs `work` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < items.length) {
      const item = items[i++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

function record(r: QualityRun, ref: string, issues: OperationOutcomeIssue[]): void {
  const bad = issues.filter(
    (i) => i.severity === 'error' || i.severity === 'fatal' || (r.warnings && i.severity === 'warning'),
  );
  if (bad.length === 0) return;
  r.failing += 1;
  for (const i of bad) {
    const expression = (i.expression?.[0] ?? i.location?.[0] ?? '').replace(/\[\d+\]/g, '');
    const diagnostics = i.diagnostics ?? i.details?.text ?? '';
    // Same kind of problem: same place, same message once values and numbers are masked.
    const shape = diagnostics.replace(/"[^"]*"|'[^']*'/g, '"…"').replace(/\d+(\.\d+)?/g, '#');
    const key = `${i.severity}|${i.code}|${expression}|${shape}`;
    let g = r.groups.get(key);
    if (!g) {
      g = { severity: i.severity, code: i.code, expression, example: diagnostics, resources: [] };
      r.groups.set(key, g);
    }
    // One call per resource: an earlier issue of this resource in the group is the group's last entry.
    if (g.resources.at(-1)?.ref !== ref) g.resources.push({ ref, diagnostics });
  }
}

function renderGroups(el: HTMLElement, r: QualityRun): void {
  const groups = [...r.groups.values()].sort((a, b) => b.resources.length - a.resources.length);
  replace(
    el,
    h('h2', { id: 'issues-h' }, `Issues (${groups.length} kinds)`),
    groups.length === 0
      ? message(r.phase === 'done' ? 'No resource has issues.' : 'No issues found so far.')
      : h(
          'ul',
          { class: 'issues' },
          groups.map((g) =>
            h(
              'li',
              { class: `issue ${g.severity}` },
              h(
                'details',
                {},
                h(
                  'summary',
                  {},
                  h('span', { class: `badge ${g.severity}` }, g.severity),
                  ' ',
                  h('strong', {}, `${g.resources.length} resource${g.resources.length === 1 ? '' : 's'}`),
                  ' · ',
                  g.expression ? h('code', {}, g.expression) : '',
                  ' ',
                  g.example,
                ),
                h(
                  'ul',
                  {},
                  g.resources
                    .slice(0, SHOWN_PER_GROUP)
                    .map((x) =>
                      h(
                        'li',
                        {},
                        link(`/console/resource/${x.ref}`, x.ref),
                        x.diagnostics !== g.example ? h('span', { class: 'muted' }, ` ${x.diagnostics}`) : '',
                      ),
                    ),
                  g.resources.length > SHOWN_PER_GROUP
                    ? h('li', { class: 'muted' }, `and ${g.resources.length - SHOWN_PER_GROUP} more`)
                    : '',
                ),
              ),
            ),
          ),
        ),
  );
}
