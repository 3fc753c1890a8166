import type { Page, App } from '../app';
import { announce, append, field, h, message, replace, saveBlob } from '../dom';
import { errorOf, queryString } from '../fhir';
import { dateText } from '../format';

interface ExportJob {
  /** The status URL on this server's API (Content-Location of the kick-off). */
  status: string;
  started: string;
  request: string;
  deidentified: boolean;
}

interface Manifest {
  transactionTime: string;
  output: Array<{ type: string; url: string; count?: number }>;
  error: Array<{ type: string; url: string }>;
}

const JOBS_KEY = 'console.exports';
const POLL_MS = 2000;

function savedJobs(): ExportJob[] {
  try {
    return JSON.parse(localStorage.getItem(JOBS_KEY) ?? '[]') as ExportJob[];
  } catch {
    return [];
  }
}

function saveJobs(jobs: ExportJob[]): void {
  localStorage.setItem(JOBS_KEY, JSON.stringify(jobs));
}

/**
 * Studies: bulk `$export` kick-off (system, all patients or a Group; optionally de-identified with
 * `_deidentify=safe-harbor`), the job's progress from its status URL, and its NDJSON files as
 * downloads. Only the user who started a job can see it (the server checks), so the console keeps
 * the status URLs of this browser's jobs.
 */
export const studiesPage: Page = (app, view) => {
  append(view, h('h1', { tabindex: '-1' }, 'Studies'));
  const level = h(
    'select',
    { name: 'level' },
    h('option', { value: 'system' }, 'Everything (system level)'),
    h('option', { value: 'patient' }, 'All patients and their records (Patient level)'),
    h('option', { value: 'group' }, 'A group of patients (Group level)'),
  );
  const group = h('input', { name: 'group', placeholder: 'Group id' });
  const types = h('input', { name: 'types', placeholder: 'Patient,Observation,Condition' });
  const since = h('input', { name: 'since', type: 'datetime-local' });
  const deid = h('input', { type: 'checkbox', name: 'deidentify' });
  const formMsg = h('div', { 'aria-live': 'polite' });
  const jobsEl = h('section', { class: 'card', 'aria-labelledby': 'jobs-h' });
  append(
    view,
    h(
      'form',
      {
        class: 'card',
        'aria-label': 'Start an export',
        onsubmit: async (ev: Event) => {
          ev.preventDefault();
          const path =
            level.value === 'system'
              ? '$export'
              : level.value === 'patient'
                ? 'Patient/$export'
                : `Group/${encodeURIComponent(group.value.trim())}/$export`;
          if (level.value === 'group' && !group.value.trim()) return group.focus();
          const q = queryString({
            _type: types.value.replace(/\s+/g, ''),
            _since: since.value ? new Date(since.value).toISOString() : undefined,
            _deidentify: deid.checked ? 'safe-harbor' : undefined,
          });
          replace(formMsg, h('p', { class: 'muted' }, 'Starting…'));
          const res = await app.client.fetch(`${path}${q}`, { headers: { Prefer: 'respond-async' } });
          const location = res.headers.get('Content-Location');
          if (res.status !== 202 || !location) {
            replace(formMsg, message((await errorOf(res)).message, 'error'));
            return;
          }
          const job: ExportJob = {
            status: location,
            started: new Date().toISOString(),
            request: `${path}${q}`,
            deidentified: deid.checked,
          };
          saveJobs([job, ...savedJobs()]);
          replace(formMsg, message('Export started.'));
          renderJobs(app, jobsEl);
        },
      },
      h(
        'div',
        { class: 'row' },
        field('What', level),
        field('Group', group, 'Group level only'),
        field('Types', types, 'Comma-separated; empty: every type you may read'),
        field('Changed since', since),
      ),
      h(
        'div',
        { class: 'row' },
        h(
          'label',
          { class: 'check' },
          deid,
          ' De-identify (HIPAA Safe Harbor: pseudonyms, no names, dates cut to years)',
        ),
      ),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Start export')),
      formMsg,
    ),
    jobsEl,
  );
  renderJobs(app, jobsEl);
};

function renderJobs(app: App, el: HTMLElement): void {
  const jobs = savedJobs();
  replace(
    el,
    h('h2', { id: 'jobs-h' }, 'Exports started from this browser'),
    jobs.length === 0
      ? message('None yet.')
      : h(
          'ul',
          { class: 'jobs' },
          jobs.map((j) => jobItem(app, el, j)),
        ),
  );
}

function jobItem(app: App, listEl: HTMLElement, job: ExportJob): HTMLElement {
  const state = h('div', { 'aria-live': 'polite' }, h('span', { class: 'muted' }, 'Checking…'));
  const remove = h(
    'button',
    {
      type: 'button',
      class: 'small',
      onclick: async () => {
        const res = await app.client.fetch(job.status, { method: 'DELETE' });
        if (!res.ok && res.status !== 404)
          return replace(state, message((await errorOf(res)).message, 'error'));
        saveJobs(savedJobs().filter((j) => j.status !== job.status));
        announce('Export removed');
        renderJobs(app, listEl);
      },
    },
    'Cancel and delete',
  );
  const li = h(
    'li',
    { class: 'job' },
    h(
      'div',
      {},
      h('strong', {}, job.request),
      ' ',
      h(
        'span',
        { class: 'muted' },
        `started ${dateText(job.started)}${job.deidentified ? ' · de-identified' : ''}`,
      ),
      ' ',
      remove,
    ),
    state,
  );
  const poll = async (): Promise<void> => {
    if (!li.isConnected) return;
    let res: Response;
    try {
      res = await app.client.fetch(job.status, {}, 'application/json');
    } catch (e) {
      replace(state, message((e as Error).message, 'error'));
      return;
    }
    if (res.status === 202) {
      replace(
        state,
        h(
          'p',
          {},
          h('span', { class: 'spinner', 'aria-hidden': 'true' }),
          ` ${res.headers.get('X-Progress') ?? 'in progress'}`,
        ),
      );
      // Poll while the page shows the job; leaving the page stops it (the job goes on on the server).
      setTimeout(() => {
        if (li.isConnected) void poll();
      }, POLL_MS);
      return;
    }
    if (res.status === 404) {
      replace(state, message('The server no longer has this job (deleted, or started by someone else).'));
      return;
    }
    if (!res.ok) {
      replace(state, message(`The export failed: ${(await errorOf(res)).message}`, 'error'));
      return;
    }
    const m = (await res.json()) as Manifest;
    const files = [
      ...m.output.map((o) => ({ ...o, error: false })),
      ...m.error.map((o) => ({ ...o, count: undefined, error: true })),
    ];
    replace(
      state,
      h(
        'p',
        {},
        `Done: data as of ${dateText(m.transactionTime)}, ${files.length} file${files.length === 1 ? '' : 's'}.`,
      ),
      h(
        'ul',
        { class: 'files' },
        files.map((f) => {
          const name = decodeURIComponent(f.url.split('/').pop() ?? `${f.type}.ndjson`);
          return h(
            'li',
            {},
            `${name} (${f.error ? 'errors' : `${f.count ?? '?'} ${f.type}`}) `,
            h(
              'button',
              {
                type: 'button',
                class: 'small',
                onclick: async () => {
                  const r = await app.client.fetch(f.url, {}, 'application/fhir+ndjson');
                  if (!r.ok) return replace(state, message((await errorOf(r)).message, 'error'));
                  saveBlob(await r.blob(), name);
                },
              },
              `Download ${name}`,
            ),
          );
        }),
      ),
    );
  };
  setTimeout(() => void poll(), 0);
  return li;
}
