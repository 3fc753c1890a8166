import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Bundle, BundleEntry, BundleEntryResponse, Resource } from 'fhir/r4';
import { accessOf, type AccessPolicy } from '../auth/policy';
import { noteAccess, type AuditEntryNote, type InteractionCode } from '../audit/note';
import { compartmentCodes, patientsOf } from '../fhir/compartment';
import { badRequest, FhirError, issue } from '../fhir/errors';
import { readJson } from '../http/body';
import { etag, parsePrefer, type PreferReturn } from '../http/headers';
import { outcome, sendJson } from '../http/respond';
import { atEntry, entriesOf, isWrite, methodRank, parseEntry, type ParsedEntry } from './bundle-entry';
import { executeWrite, planWrites, type WriteOutcome } from './bundle-plan';
import type { AppContext } from './context';
import { notModified, readableCurrent, readableVersion } from './crud';
import { searchBundle } from './search';

/**
 * What the audit recorder gets per entry of a batch or transaction, on `res.locals.auditEntries`
 * (an array in the order of the request's entries; empty when a transaction failed as a whole,
 * since then nothing happened but the Bundle-level failure, which the request's AuditNote carries).
 * Shaped like AuditNote (audit/note.ts) plus the entry's HTTP status.
 */
export type EntryAudit = AuditEntryNote & { patients: string[] };

export interface BundleOptions {
  policy: AccessPolicy;
  /** Prefer: return= for every entry (http.html#transaction-response); representation by default. */
  prefer?: PreferReturn;
  /** Prefer: handling=strict for searches in GET entries. */
  strict?: boolean;
}

export interface BundleResult {
  bundle: Bundle;
  audit: EntryAudit[];
}

/** Batch entries are independent: a few run at once so their journal writes share an fsync. */
const BATCH_CONCURRENCY = 8;

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
}

/** POST [base] (http.html#transaction): a batch or transaction Bundle. */
export async function bundleHandler(ctx: AppContext, req: Request, res: Response): Promise<void> {
  noteAccess(res, { interaction: 'batch' });
  res.locals.auditEntries = [];
  const { value } = await readJson(req, ctx.config, ['resource']);
  const type = (value as { type?: unknown } | null)?.type;
  if (type === 'transaction') noteAccess(res, { interaction: 'transaction' });
  const prefer = parsePrefer(req);
  const options: BundleOptions = { policy: accessOf(res), strict: prefer.handling === 'strict' };
  if (prefer.return) options.prefer = prefer.return;
  const r = await processBundle(ctx, value, options);
  res.locals.auditEntries = r.audit;
  noteAccess(res, { patients: [...new Set(r.audit.flatMap((a) => a.patients))] });
  sendJson(req, res, 200, r.bundle);
}

/** Runs a batch or transaction Bundle; the HTTP handler and the bulk loader (scripts/import.ts) share it. */
export async function processBundle(
  ctx: AppContext,
  body: unknown,
  options: BundleOptions,
): Promise<BundleResult> {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw badRequest('The body of POST [base] must be a Bundle');
  const bundle = body as Record<string, unknown>;
  if (bundle.resourceType !== 'Bundle')
    throw badRequest('The body of POST [base] must be a Bundle', 'invalid', ['resourceType']);
  if (bundle.type === 'transaction') return transaction(ctx, entriesOf(bundle), options);
  if (bundle.type === 'batch') return batch(ctx, entriesOf(bundle), options);
  throw badRequest(
    `POST [base] takes a Bundle of type batch or transaction, not ${JSON.stringify(bundle.type)}`,
    'invalid',
    ['Bundle.type'],
  );
}

function fullUrlOf(raw: unknown): string | undefined {
  const f = (raw as { fullUrl?: unknown } | null)?.fullUrl;
  return typeof f === 'string' ? f : undefined;
}

function inProcessingOrder(entries: ParsedEntry[]): ParsedEntry[] {
  return [...entries].sort((a, b) => methodRank(a.method) - methodRank(b.method) || a.index - b.index);
}

/** Ids of resources the Bundle creates, chosen once so that a retried transaction reuses them. */
function newIdsFor(entries: readonly ParsedEntry[]): Map<number, string> {
  const ids = new Map<number, string>();
  for (const e of entries)
    if (e.method === 'POST' || (e.method === 'PUT' && !e.id)) ids.set(e.index, randomUUID());
  return ids;
}

/**
 * All or nothing (http.html#trules): parse and validate every entry, then plan (resolve
 * conditions and references, check duplicates) and write in one atomic transaction. Any failing
 * entry fails the Bundle with an OperationOutcome naming it; nothing is stored. GET entries run
 * after the commit and see its result.
 */
async function transaction(ctx: AppContext, raws: unknown[], options: BundleOptions): Promise<BundleResult> {
  if (!ctx.store.backend.supportsTransactions)
    throw new FhirError(501, [
      issue(
        'not-supported',
        'This server stores in a MongoDB deployment without multi-document transactions (a standalone ' +
          'mongod), so it cannot run a transaction atomically and refuses to run it otherwise. Use a ' +
          'replica set, or send a batch Bundle.',
      ),
    ]);
  const { policy } = options;
  const parsed: ParsedEntry[] = [];
  for (let i = 0; i < raws.length; i++) {
    try {
      parsed.push(await parseEntry(ctx, raws[i], i, options.policy));
    } catch (err) {
      throw atEntry(err, { index: i, fullUrl: fullUrlOf(raws[i]) });
    }
  }
  const ordered = inProcessingOrder(parsed);
  const writes = ordered.filter((e) => isWrite(e.method));
  const newIds = newIdsFor(writes);
  const outcomes = await ctx.store.atomically(async (session) => {
    const targets = await planWrites(ctx, writes, newIds, policy, session);
    const out = new Map<number, WriteOutcome>();
    for (const e of writes) {
      const t = targets.get(e.index);
      if (!t) continue;
      try {
        out.set(e.index, await executeWrite(ctx, e, t, policy, session));
      } catch (err) {
        throw atEntry(err, e);
      }
    }
    return out;
  });
  const entries: BundleEntry[] = new Array<BundleEntry>(raws.length);
  const audit: EntryAudit[] = new Array<EntryAudit>(raws.length);
  for (const e of writes) {
    const o = outcomes.get(e.index);
    if (!o) continue;
    entries[e.index] = writeEntry(ctx, o, options.prefer);
    audit[e.index] = writeAudit(ctx, e, o);
  }
  for (const e of ordered) {
    if (isWrite(e.method)) continue;
    const r = await readEntrySafely(ctx, e, options);
    entries[e.index] = r.entry;
    audit[e.index] = r.audit;
  }
  return {
    bundle: { resourceType: 'Bundle', type: 'transaction-response', entry: entries },
    audit,
  };
}

/** Entries are independent (http.html#brules): each succeeds or fails on its own. */
async function batch(ctx: AppContext, raws: unknown[], options: BundleOptions): Promise<BundleResult> {
  const { policy } = options;
  const entries: BundleEntry[] = new Array<BundleEntry>(raws.length);
  const audit: EntryAudit[] = new Array<EntryAudit>(raws.length);
  const parsed: ParsedEntry[] = [];
  for (let i = 0; i < raws.length; i++) {
    try {
      parsed.push(await parseEntry(ctx, raws[i], i, policy));
    } catch (err) {
      entries[i] = errorEntry(ctx, err);
      audit[i] = { interaction: 'batch', status: statusOf(err), patients: [] };
    }
  }
  const run = async (e: ParsedEntry): Promise<void> => {
    if (!isWrite(e.method)) {
      const r = await readEntrySafely(ctx, e, options);
      entries[e.index] = r.entry;
      audit[e.index] = r.audit;
      return;
    }
    const newIds = newIdsFor([e]);
    try {
      const o = await ctx.store.atomically(async (session) => {
        const t = (await planWrites(ctx, [e], newIds, policy, session)).get(e.index);
        if (!t) throw new Error('unplanned entry');
        return executeWrite(ctx, e, t, policy, session);
      });
      entries[e.index] = writeEntry(ctx, o, options.prefer);
      audit[e.index] = writeAudit(ctx, e, o);
    } catch (err) {
      entries[e.index] = errorEntry(ctx, err);
      audit[e.index] = { ...baseAudit(e), status: statusOf(err), patients: [] };
    }
  };
  // Processing order still holds between groups; within one group entries may run together.
  for (let rank = 0; rank <= 3; rank++) {
    const group = parsed.filter((e) => methodRank(e.method) === rank);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < group.length) await run(group[next++] as ParsedEntry);
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, group.length) }, worker));
  }
  return { bundle: { resourceType: 'Bundle', type: 'batch-response', entry: entries }, audit };
}

function statusOf(err: unknown): number {
  return err instanceof FhirError ? err.status : 500;
}

function errorEntry(ctx: AppContext, err: unknown): BundleEntry {
  if (err instanceof FhirError)
    return { response: { status: statusLine(err.status), outcome: err.toOperationOutcome() } };
  ctx.log.error({ err }, 'unexpected error in a batch entry');
  return {
    response: {
      status: statusLine(500),
      outcome: outcome('error', 'exception', 'Internal server error while processing this entry'),
    },
  };
}

function interactionOf(e: ParsedEntry): InteractionCode {
  switch (e.method) {
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      if (e.versionId !== undefined) return 'vread';
      if (e.id) return 'read';
      return e.type ? 'search-type' : 'search-system';
  }
}

function baseAudit(e: ParsedEntry): Omit<EntryAudit, 'status' | 'patients'> {
  const a: Omit<EntryAudit, 'status' | 'patients'> = { interaction: interactionOf(e) };
  if (e.type) a.resourceType = e.type;
  if (e.id) a.id = e.id;
  if (e.params.length > 0) a.query = new URLSearchParams(e.params).toString();
  return a;
}

function writeAudit(ctx: AppContext, e: ParsedEntry, o: WriteOutcome): EntryAudit {
  const a: EntryAudit = { ...baseAudit(e), resourceType: o.type, status: o.status, patients: [] };
  if (o.id) {
    a.id = o.id;
    if (o.idx) a.patients = patientsOf(ctx.registry, o.type, o.id, o.idx);
  }
  if (o.versionId !== undefined) a.versionId = o.versionId;
  return a;
}

/** A response entry for a write, with the body Prefer asks for. */
function writeEntry(ctx: AppContext, o: WriteOutcome, prefer: PreferReturn | undefined): BundleEntry {
  const response: BundleEntryResponse = { status: statusLine(o.status) };
  const entry: BundleEntry = {};
  if (o.id && o.versionId !== undefined) {
    response.etag = etag(o.versionId);
    if (o.status !== 204) {
      response.location = `${o.type}/${o.id}/_history/${o.versionId}`;
      entry.fullUrl = `${ctx.config.baseUrl}/${o.type}/${o.id}`;
    }
  }
  if (o.lastUpdated) response.lastModified = o.lastUpdated;
  if (prefer === 'OperationOutcome') response.outcome = outcome('information', 'informational', o.info);
  else if (prefer !== 'minimal' && o.resource) entry.resource = o.resource;
  entry.response = response;
  return entry;
}

async function readEntrySafely(
  ctx: AppContext,
  e: ParsedEntry,
  options: BundleOptions,
): Promise<{ entry: BundleEntry; audit: EntryAudit }> {
  try {
    return await readEntry(ctx, e, options);
  } catch (err) {
    return { entry: errorEntry(ctx, err), audit: { ...baseAudit(e), status: statusOf(err), patients: [] } };
  }
}

/** GET/HEAD entries: read, vread and search, with the semantics of the single interactions. */
async function readEntry(
  ctx: AppContext,
  e: ParsedEntry,
  options: BundleOptions,
): Promise<{ entry: BundleEntry; audit: EntryAudit }> {
  const { policy } = options;
  const head = e.method === 'HEAD';
  if (!e.id) {
    const path = e.type ? `/${e.type}` : '';
    const r = await searchBundle(
      ctx,
      policy,
      options.strict ?? false,
      path,
      e.type ? [e.type] : undefined,
      e.params,
    );
    const entry: BundleEntry = { response: { status: '200 OK' } };
    if (!head) entry.resource = r.bundle;
    return { entry, audit: { ...baseAudit(e), status: 200, patients: r.patients } };
  }
  const type = e.type as string;
  const id = e.id;
  let resource: Resource;
  let versionId: number;
  let lastUpdated: string;
  let idx: Record<string, unknown>;
  if (e.versionId !== undefined) {
    ({ resource, versionId, lastUpdated } = await readableVersion(ctx, policy, type, id, e.versionId));
    idx = ctx.store.indexOf(resource, compartmentCodes(ctx.registry, type));
  } else {
    ({ resource, versionId, lastUpdated, idx } = await readableCurrent(ctx, policy, type, id));
  }
  const response: BundleEntryResponse = {
    status: '200 OK',
    etag: etag(versionId),
    lastModified: lastUpdated,
  };
  const audit: EntryAudit = {
    ...baseAudit(e),
    versionId,
    status: 200,
    patients: patientsOf(ctx.registry, type, id, idx),
  };
  if (notModified(versionId, lastUpdated, e.ifNoneMatch, e.ifModifiedSince)) {
    response.status = '304 Not Modified';
    return { entry: { response }, audit: { ...audit, status: 304 } };
  }
  const entry: BundleEntry = { fullUrl: `${ctx.config.baseUrl}/${type}/${id}`, response };
  if (!head) entry.resource = resource;
  return { entry, audit };
}
