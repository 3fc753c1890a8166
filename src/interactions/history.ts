import type { Request, Response } from 'express';
import type { Bundle, BundleEntry, BundleLink } from 'fhir/r4';
import { badRequest, notFound } from '../fhir/errors';
import { parseInstantParam } from '../fhir/instant';
import { checkId, checkType } from '../fhir/resource';
import { queryPairs } from '../http/query';
import { sendJson } from '../http/respond';
import type { HistoryDoc } from '../store/documents';
import { accessOf, seesEverything } from '../auth/policy';
import { noteAccess } from '../audit/note';
import { compartmentCodes, patientsOf } from '../fhir/compartment';
import { DEFAULT_COUNT, MAX_COUNT } from '../search/request';
import type { AppContext } from './context';
import { tombstoneVisible } from './crud';

/** A FHIR instant or dateTime to the ISO form the store compares (UTC, milliseconds). */
function parseCount(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_COUNT;
  if (!/^\d{1,9}$/.test(raw)) throw badRequest(`_count must be a non-negative integer, got "${raw}"`);
  return Math.min(Number(raw), MAX_COUNT);
}

function parseOffset(raw: string | undefined): number {
  if (raw === undefined) return 0;
  if (!/^\d{1,9}$/.test(raw)) throw badRequest(`_offset must be a non-negative integer, got "${raw}"`);
  return Number(raw);
}

function entryOf(ctx: AppContext, h: HistoryDoc): BundleEntry {
  const fullUrl = `${ctx.config.baseUrl}/${h.type}/${h.id}`;
  const e: BundleEntry = {
    fullUrl,
    request: { method: h.method, url: h.method === 'POST' ? h.type : `${h.type}/${h.id}` },
    response: {
      status: h.method === 'DELETE' ? '204' : h.method === 'POST' || h.versionId === 1 ? '201' : '200',
      etag: `W/"${h.versionId}"`,
      lastModified: h.lastUpdated,
    },
  };
  if (h.resource) e.resource = h.resource;
  return e;
}

/** GET [base]/_history, [base]/[type]/_history, [base]/[type]/[id]/_history (http.html#history). */
export async function history(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = req.params.type === undefined ? undefined : checkType(ctx.registry, req.params.type as string);
  const id = req.params.id === undefined ? undefined : checkId(req.params.id as string);
  noteAccess(res, {
    interaction: id ? 'history-instance' : type ? 'history-type' : 'history-system',
    resourceType: type,
    id,
    query: new URLSearchParams(queryPairs(req)).toString(),
  });
  const policy = accessOf(res);
  if (type) policy.require(type, 'r');
  else for (const t of ctx.registry.resourceTypes) policy.require(t, 'r');
  const params = new Map<string, string>();
  for (const [k, v] of queryPairs(req)) {
    if (params.has(k) && k !== '_format' && k !== '_pretty') throw badRequest(`${k} may be given only once`);
    params.set(k, v);
  }
  for (const k of params.keys()) {
    if (!['_count', '_since', '_at', '_offset', '_till', '_format', '_pretty', '_list'].includes(k))
      throw badRequest(`Unknown history parameter ${k}; supported: _count, _since, _at`);
    if (k === '_list') throw badRequest('_list is not supported on history');
  }
  const count = parseCount(params.get('_count'));
  const offset = parseOffset(params.get('_offset'));
  const since = params.has('_since')
    ? parseInstantParam('_since', params.get('_since') as string)
    : undefined;
  const at = params.has('_at') ? parseInstantParam('_at', params.get('_at') as string) : undefined;
  // Paging is pinned to the first page's moment so that new writes do not shift later pages.
  const till = params.has('_till')
    ? parseInstantParam('_till', params.get('_till') as string)
    : new Date().toISOString();
  if (id && type) {
    const cur = await ctx.store.read(type, id);
    if (
      !cur ||
      (cur.resource && !policy.canSee(cur.resource, 'r')) ||
      (!cur.resource && !(await tombstoneVisible(ctx, policy, type, id, cur.versionId)))
    )
      throw notFound(`${type}/${id} has no history: it does not exist`);
  }
  const page = await ctx.store.historyOf({ type, id, since, at, till, count, offset });
  // Versions the caller may not see are left out. (Deletions carry no resource; they are kept
  // only in instance history, whose resource the caller was allowed to see above.)
  const entries = page.entries.filter((h) =>
    h.resource ? policy.canSee(h.resource, 'r') : Boolean(id) || seesEverything(policy, h.type, 'r'),
  );
  const total = entries.length === page.entries.length ? page.total : offset + entries.length;
  const patients = new Set<string>();
  for (const h of entries)
    if (h.resource)
      for (const p of patientsOf(
        ctx.registry,
        h.type,
        h.id,
        ctx.store.indexOf(h.resource, compartmentCodes(ctx.registry, h.type)),
      ))
        patients.add(p);
  noteAccess(res, { count: entries.length, patients: [...patients] });
  const base = `${ctx.config.baseUrl}${type ? `/${type}` : ''}${id ? `/${id}` : ''}/_history`;
  const link = (o: number): string => {
    const q = new URLSearchParams();
    if (params.has('_since')) q.set('_since', params.get('_since') as string);
    if (params.has('_at')) q.set('_at', params.get('_at') as string);
    q.set('_till', till);
    q.set('_count', String(count));
    q.set('_offset', String(o));
    return `${base}?${q.toString()}`;
  };
  const links: BundleLink[] = [{ relation: 'self', url: link(offset) }];
  if (count > 0 && offset + count < total) links.push({ relation: 'next', url: link(offset + count) });
  if (offset > 0) links.push({ relation: 'previous', url: link(Math.max(0, offset - count)) });
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    total,
    link: links,
    entry: entries.map((h) => entryOf(ctx, h)),
  };
  sendJson(req, res, 200, bundle);
}
