import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { httpRequest, RequestTimeout, type HttpAnswer } from '../process';

/**
 * The load used by test/reliability/*.load.ts: `clients` concurrent loops on loopback, each mixing
 * creates, If-Match increments of shared counters (retried on 412), searches and small transaction
 * Bundles. What the server acknowledged is recorded in a `Ledger` so that it can be checked afterwards
 * (also after a SIGKILL and a restart).
 */

export type Kind = 'create' | 'increment' | 'search' | 'transaction';

/** The loop's own keep-alive agent (`maxSockets` wide) and request time limit. */
export function makeClient(maxSockets: number, timeoutMs: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const request = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
    httpRequest(method, url, body, headers, { agent, timeoutMs });
  return { request, close: () => agent.destroy() };
}

export type Client = ReturnType<typeof makeClient>;

/** What the server acknowledged, kept across kills and restarts. */
export interface Ledger {
  /** `Type/id` -> highest acknowledged versionId (creates and transaction entries). */
  written: Map<string, number>;
  /** counter id -> acknowledged increments. */
  increments: Map<string, number>;
  /** counter id -> increments whose answer was lost (the server died): applied or not. */
  inDoubt: Map<string, number>;
  /** Transaction tags sent: tag -> acknowledged (true) or unknown (false). */
  transactions: Map<string, boolean>;
}

export function newLedger(): Ledger {
  return { written: new Map(), increments: new Map(), inDoubt: new Map(), transactions: new Map() };
}

export interface Stats {
  count: Record<Kind, number>;
  latencies: Record<Kind, number[]>;
  conflicts: number;
  timeouts: number;
  /** Answers that were not the expected success (5xx, unexpected 4xx); each is listed in `unexpected`. */
  unexpected: string[];
  /** Requests that failed without an answer (connection reset by a kill). */
  dropped: number;
}

export function newStats(): Stats {
  return {
    count: { create: 0, increment: 0, search: 0, transaction: 0 },
    latencies: { create: [], increment: [], search: [], transaction: [] },
    conflicts: 0,
    timeouts: 0,
    unexpected: [],
    dropped: 0,
  };
}

export const TX_SYSTEM = 'urn:fhir-r4-server:reliability-tx';

interface Versioned {
  id: string;
  meta?: { versionId?: string };
  multipleBirthInteger?: number;
}

function versionOf(body: string): number {
  return Number((JSON.parse(body) as Versioned).meta?.versionId);
}

/** Creates the shared counters (Patients whose multipleBirthInteger is the counter). */
export async function createCounters(
  client: Client,
  baseUrl: string,
  n: number,
  ledger: Ledger,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await client.request('POST', `${baseUrl}/Patient`, {
      resourceType: 'Patient',
      name: [{ family: 'Counter', given: [`c${i}`] }],
      multipleBirthInteger: 0,
    });
    if (r.status !== 201) throw new Error(`counter create: ${r.status} ${r.body}`);
    const id = (JSON.parse(r.body) as Versioned).id;
    ids.push(id);
    ledger.written.set(`Patient/${id}`, 1);
    ledger.increments.set(id, 0);
    ledger.inDoubt.set(id, 0);
  }
  return ids;
}

export interface LoadOptions {
  clients: number;
  /** Stop when this resolves (a timer, or the moment of a kill). */
  until: Promise<void>;
  counters: string[];
  /** Set when the server is being killed: failures after it are expected, not errors. */
  killed: () => boolean;
}

/** Runs the mixed load until `until`; never throws (failures are counted in `stats`). */
export async function runLoad(
  client: Client,
  baseUrl: string,
  opts: LoadOptions,
  ledger: Ledger,
  stats: Stats,
): Promise<void> {
  let stop = false;
  void opts.until.then(() => {
    stop = true;
  });

  const timed = async (kind: Kind, fn: () => Promise<void>): Promise<void> => {
    const t0 = performance.now();
    await fn();
    stats.latencies[kind].push(performance.now() - t0);
    stats.count[kind]++;
  };
  const unexpected = (what: string, r: HttpAnswer): void => {
    stats.unexpected.push(`${what}: ${r.status} ${r.body.slice(0, 300)}`);
  };

  const create = (w: number, i: number) =>
    timed('create', async () => {
      const r = await client.request('POST', `${baseUrl}/Patient`, {
        resourceType: 'Patient',
        name: [{ family: `Load${w % 8}`, given: [`w${w}-${i}`] }],
        gender: i % 2 ? 'female' : 'male',
      });
      if (r.status === 201) ledger.written.set(`Patient/${(JSON.parse(r.body) as Versioned).id}`, 1);
      else unexpected('create', r);
    });

  const increment = (counter: string) =>
    timed('increment', async () => {
      // Read, add one, write back guarded by the version read; on 412 someone was first: read again.
      for (;;) {
        const got = await client.request('GET', `${baseUrl}/Patient/${counter}`);
        if (got.status !== 200) return unexpected('counter read', got);
        const res = JSON.parse(got.body) as Versioned & Record<string, unknown>;
        const version = res.meta?.versionId ?? '';
        let put: HttpAnswer;
        try {
          put = await client.request(
            'PUT',
            `${baseUrl}/Patient/${counter}`,
            { ...res, meta: undefined, multipleBirthInteger: (res.multipleBirthInteger ?? 0) + 1 },
            { 'if-match': `W/"${version}"` },
          );
        } catch (e) {
          // The answer is lost: the increment may or may not have been applied.
          ledger.inDoubt.set(counter, (ledger.inDoubt.get(counter) ?? 0) + 1);
          throw e;
        }
        if (put.status === 412) {
          stats.conflicts++;
          continue;
        }
        if (put.status !== 200) return unexpected('counter update', put);
        ledger.increments.set(counter, (ledger.increments.get(counter) ?? 0) + 1);
        ledger.written.set(`Patient/${counter}`, versionOf(put.body));
        return;
      }
    });

  const search = (w: number) =>
    timed('search', async () => {
      const r = await client.request('GET', `${baseUrl}/Patient?family=Load${w % 8}&gender=female&_count=10`);
      if (r.status !== 200) unexpected('search', r);
    });

  const transaction = () =>
    timed('transaction', async () => {
      const tag = randomUUID();
      const patientUrl = `urn:uuid:${randomUUID()}`;
      ledger.transactions.set(tag, false);
      const r = await client.request('POST', baseUrl, {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: patientUrl,
            resource: {
              resourceType: 'Patient',
              identifier: [{ system: TX_SYSTEM, value: tag }],
              name: [{ family: 'Tx', given: [tag.slice(0, 8)] }],
            },
            request: { method: 'POST', url: 'Patient' },
          },
          {
            resource: {
              resourceType: 'Observation',
              status: 'final',
              identifier: [{ system: TX_SYSTEM, value: tag }],
              code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
              subject: { reference: patientUrl },
              valueQuantity: { value: 60, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
            },
            request: { method: 'POST', url: 'Observation' },
          },
        ],
      });
      if (r.status !== 200) return unexpected('transaction', r);
      ledger.transactions.set(tag, true);
      const bundle = JSON.parse(r.body) as { entry?: { response?: { location?: string } }[] };
      for (const e of bundle.entry ?? []) {
        const m = /^(?:.*\/)?(\w+\/[^/]+)\/_history\/(\d+)$/.exec(e.response?.location ?? '');
        if (!m?.[1]) throw new Error(`transaction answer without a location: ${r.body.slice(0, 300)}`);
        ledger.written.set(m[1], Number(m[2]));
      }
    });

  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const pick = (w * 7 + i) % 10;
      try {
        if (pick < 3) await create(w, i);
        else if (pick < 6) await increment(opts.counters[(w + i) % opts.counters.length] ?? '');
        else if (pick < 8) await search(w);
        else await transaction();
      } catch (e) {
        if (opts.killed()) return; // the server is gone, as planned
        if (e instanceof RequestTimeout) stats.timeouts++;
        else stats.dropped++;
        stats.unexpected.push(`worker ${w}: ${String(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, (_, w) => worker(w)));
}

/** Samples VmRSS (kB) of a process until stopped. */
export function sampleRss(pid: number, everyMs: number): { stop: () => number[] } {
  const samples: number[] = [];
  const read = (): void => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m?.[1]) samples.push(Number(m[1]));
    } catch {
      // the process is gone, or there is no /proc
    }
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      read();
      return samples;
    },
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export function summarize(stats: Stats, seconds: number): string {
  const lines = (Object.keys(stats.count) as Kind[]).map((k) => {
    const sorted = [...stats.latencies[k]].sort((a, b) => a - b);
    return `  ${k.padEnd(12)} ${String(stats.count[k]).padStart(6)} (${(stats.count[k] / seconds).toFixed(1)}/s)  p50 ${percentile(sorted, 50).toFixed(1)} ms  p99 ${percentile(sorted, 99).toFixed(1)} ms`;
  });
  return [
    ...lines,
    `  412 retries ${stats.conflicts}, timeouts ${stats.timeouts}, dropped ${stats.dropped}`,
  ].join('\n');
}

export interface Verified {
  resources: number;
  versions: number;
  transactions: number;
  auditChecked: number;
  problems: string[];
}

/** Runs `fn` over `items` with at most `n` in flight. */
async function eachLimit<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

async function countOf(client: Client, url: string): Promise<number> {
  const r = await client.request('GET', url);
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body.slice(0, 300)}`);
  return (JSON.parse(r.body) as { total: number }).total;
}

/**
 * Checks everything in the ledger against the server: every acknowledged write is there with a
 * complete version chain (history total = versionId) and its AuditEvent; counters hold exactly the
 * acknowledged increments (plus at most the ones whose answer was lost to a kill); every transaction
 * is there whole or not at all (and whole when it was acknowledged).
 */
export async function verifyLedger(client: Client, baseUrl: string, ledger: Ledger): Promise<Verified> {
  const out: Verified = { resources: 0, versions: 0, transactions: 0, auditChecked: 0, problems: [] };
  const problem = (s: string): void => {
    out.problems.push(s);
  };
  await eachLimit([...ledger.written], 16, async ([ref, acked]) => {
    const r = await client.request('GET', `${baseUrl}/${ref}`);
    if (r.status !== 200) return problem(`${ref}: read ${r.status}`);
    const res = JSON.parse(r.body) as Versioned;
    const version = Number(res.meta?.versionId);
    if (!(version >= acked)) problem(`${ref}: versionId ${version} < acknowledged ${acked}`);
    const history = await countOf(client, `${baseUrl}/${ref}/_history?_count=1`);
    if (history !== version) problem(`${ref}: history total ${history} != versionId ${version}`);
    const counter = ledger.increments.get(res.id);
    const created = await countOf(
      client,
      `${baseUrl}/AuditEvent?entity=${ref}&action=C&outcome=0&_summary=count`,
    );
    if (created < 1) problem(`${ref}: no AuditEvent for its create`);
    if (counter !== undefined) {
      const value = res.multipleBirthInteger ?? 0;
      const doubt = ledger.inDoubt.get(res.id) ?? 0;
      if (value < counter || value > counter + doubt)
        problem(`counter ${ref}: ${value}, acknowledged increments ${counter} (+${doubt} in doubt)`);
      if (version !== value + 1) problem(`counter ${ref}: versionId ${version} for value ${value}`);
      const updated = await countOf(
        client,
        `${baseUrl}/AuditEvent?entity=${ref}&action=U&outcome=0&_summary=count`,
      );
      if (updated < counter) problem(`counter ${ref}: ${updated} update AuditEvents < ${counter} increments`);
      out.auditChecked++;
    }
    out.auditChecked++;
    out.resources++;
    out.versions += version;
  });
  await eachLimit([...ledger.transactions], 16, async ([tag, acked]) => {
    const patients = await countOf(
      client,
      `${baseUrl}/Patient?identifier=${TX_SYSTEM}|${tag}&_summary=count`,
    );
    const observations = await countOf(
      client,
      `${baseUrl}/Observation?identifier=${TX_SYSTEM}|${tag}&_summary=count`,
    );
    if (patients !== observations || patients > 1)
      problem(`transaction ${tag}: ${patients} Patient, ${observations} Observation`);
    else if (acked && patients !== 1) problem(`acknowledged transaction ${tag} is missing`);
    out.transactions++;
  });
  return out;
}
