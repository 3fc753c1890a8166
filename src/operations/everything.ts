import type { Request, Response } from 'express';
import { parseInstantParam } from '../fhir/instant';
import type { Bundle, BundleEntry, BundleLink, Resource } from 'fhir/r4';
import { accessOf, permits, restrict, type AccessPolicy } from '../auth/policy';
import { noteAccess } from '../audit/note';
import { compartmentFilter } from '../fhir/compartment';
import { badRequest, gone, notFound } from '../fhir/errors';
import { referencesIn } from '../fhir/references';
import { checkId } from '../fhir/resource';
import { queryPairs } from '../http/query';
import { sendJson } from '../http/respond';
import type { AppContext } from '../interactions/context';
import { DEFAULT_COUNT, MAX_COUNT } from '../search/request';
import { parseDateRange } from '../search/types/date';
import type { Filter } from '../store/backend';
import type { CurrentDoc } from '../store/documents';

/** Resources outside the compartment that $everything adds when compartment resources point to them. */
const REFERENCED_TYPES: readonly string[] = ['Practitioner', 'Organization', 'Location', 'Medication'];

/** The search parameter that carries a type's clinical ("care") date, first one the type has. */
const CLINICAL_DATE_PARAMS = [
  'date',
  'onset-date',
  'authoredon',
  'recorded-date',
  'period',
  'occurrence',
  'effective',
  'created',
  'issued',
];

interface EverythingParams {
  start?: number;
  end?: number;
  since?: string;
  types?: string[];
  count: number;
  offset: number;
}

function nonNegative(name: string, raw: string): number {
  if (!/^\d{1,9}$/.test(raw.trim()))
    throw badRequest(`${name} must be a non-negative integer, got "${raw.slice(0, 40)}"`);
  return Number(raw.trim());
}

function parseParams(ctx: AppContext, pairs: Array<[string, string]>): EverythingParams {
  const out: EverythingParams = { count: DEFAULT_COUNT, offset: 0 };
  for (const [name, value] of pairs) {
    switch (name) {
      case 'start':
      case 'end': {
        const range = parseDateRange(value);
        if (!range) throw badRequest(`${name} must be a date, got "${value.slice(0, 40)}"`);
        if (name === 'start') out.start = range.lo;
        else out.end = range.hi;
        break;
      }
      case '_since': {
        out.since = parseInstantParam('_since', value);
        break;
      }
      case '_type':
        for (const t of value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)) {
          if (!ctx.registry.isResourceType(t))
            throw badRequest(`Unknown resource type "${t.slice(0, 80)}" in _type`);
          out.types = [...(out.types ?? []), t];
        }
        break;
      case '_count':
        out.count = Math.min(nonNegative('_count', value), MAX_COUNT);
        break;
      case '_offset':
        out.offset = nonNegative('_offset', value);
        break;
      case '_format':
      case '_pretty':
        break;
      default:
        throw badRequest(`Unknown $everything parameter ${name.slice(0, 80)}`, 'not-supported');
    }
  }
  return out;
}

function clinicalDateParam(ctx: AppContext, type: string): string | undefined {
  const params = ctx.registry.searchParametersFor(type);
  return CLINICAL_DATE_PARAMS.find((c) => params.get(c)?.type === 'date');
}

/** Resources without a clinical date are kept; dated ones must overlap [start, end]. */
function dateFilter(ctx: AppContext, type: string, p: EverythingParams): Filter | undefined {
  if (p.start === undefined && p.end === undefined) return undefined;
  const code = type === 'Patient' ? undefined : clinicalDateParam(ctx, type);
  if (!code) return undefined;
  const f = `idx.${code}`;
  const overlap: Record<string, unknown> = {};
  if (p.start !== undefined) overlap.hi = { $gte: p.start };
  if (p.end !== undefined) overlap.lo = { $lte: p.end };
  return { $or: [{ [f]: { $exists: false } }, { [f]: { $size: 0 } }, { [f]: { $elemMatch: overlap } }] };
}

function allowed(policy: AccessPolicy, type: string, action: 'r' | 's', explicit: boolean): boolean {
  // A type the client asked for by name must be permitted (403 otherwise); others are skipped.
  if (explicit) policy.require(type, action);
  return permits(policy, type, action);
}

/** Literal references `Type/id` anywhere in a resource, for the types asked. */
function referencedIds(
  resource: unknown,
  types: ReadonlySet<string>,
  out: Map<string, Set<string>>,
  base: string,
): void {
  for (const ref of referencesIn(resource)) {
    const local = ref.startsWith(base) ? ref.slice(base.length) : ref;
    const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/.*)?$/.exec(local);
    if (m && types.has(m[1] as string)) {
      const set = out.get(m[1] as string) ?? new Set<string>();
      set.add(m[2] as string);
      out.set(m[1] as string, set);
    }
  }
}

/** All matches in a stable order: the Patient, the compartment by type and id, then referenced resources. */
async function collect(
  ctx: AppContext,
  policy: AccessPolicy,
  patient: CurrentDoc,
  id: string,
  p: EverythingParams,
): Promise<Array<{ doc: CurrentDoc; mode: 'match' | 'include' }>> {
  const wanted = p.types ? new Set(p.types) : undefined;
  const out: Array<{ doc: CurrentDoc; mode: 'match' | 'include' }> = [];
  const since = p.since ? { lastUpdated: { $gt: p.since } } : undefined;
  if ((!wanted || wanted.has('Patient')) && (!since || patient.lastUpdated > (p.since as string)))
    out.push({ doc: patient, mode: 'match' });
  const compartment: CurrentDoc[] = [];
  for (const type of ctx.registry.resourceTypes) {
    const inCompartment = type === 'Patient' ? null : compartmentFilter(ctx.registry, type, [id]);
    if (!inCompartment) continue;
    if (!allowed(policy, type, 's', wanted?.has(type) ?? false)) continue;
    const parts: Filter[] = [{ deleted: false }, inCompartment];
    if (since) parts.push(since);
    const dates = dateFilter(ctx, type, p);
    if (dates) parts.push(dates);
    const filter = restrict({ $and: parts }, policy, type, 's');
    if (!filter) continue;
    const docs = await ctx.store.find(type, filter, { sort: { _id: 1 } });
    compartment.push(...docs);
    if (!wanted || wanted.has(type)) out.push(...docs.map((doc) => ({ doc, mode: 'match' as const })));
  }
  const refTypes = new Set(REFERENCED_TYPES.filter((t) => !wanted || wanted.has(t)));
  const refs = new Map<string, Set<string>>();
  for (const d of [patient, ...compartment])
    referencedIds(d.resource, refTypes, refs, `${ctx.config.baseUrl}/`);
  for (const type of REFERENCED_TYPES) {
    const ids = refs.get(type);
    if (!ids || !allowed(policy, type, 'r', wanted?.has(type) ?? false)) continue;
    const parts: Filter[] = [{ _id: { $in: [...ids] } }, { deleted: false }];
    if (since) parts.push(since);
    const filter = restrict({ $and: parts }, policy, type, 'r');
    if (!filter) continue;
    const docs = await ctx.store.find(type, filter, { sort: { _id: 1 } });
    out.push(...docs.map((doc) => ({ doc, mode: 'include' as const })));
  }
  return out;
}

function pageLink(
  ctx: AppContext,
  id: string,
  pairs: Array<[string, string]>,
  offset: number,
  count: number,
): string {
  const q = new URLSearchParams(pairs.filter(([k]) => k !== '_offset' && k !== '_count'));
  q.set('_count', String(count));
  q.set('_offset', String(offset));
  return `${ctx.config.baseUrl}/Patient/${id}/$everything?${q.toString()}`;
}

/** GET [base]/Patient/[id]/$everything (patient-operation-everything): a searchset, paged. */
export async function everything(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const id = checkId(req.params.id as string);
  noteAccess(res, {
    interaction: 'operation',
    operation: 'everything',
    resourceType: 'Patient',
    id,
    patients: [id],
  });
  const pairs = queryPairs(req);
  const p = parseParams(ctx, pairs);
  const policy = accessOf(res);
  policy.require('Patient', 'r');
  const cur = await ctx.store.read('Patient', id);
  const visible = restrict({ _id: id }, policy, 'Patient', 'r');
  const seen = visible && cur ? await ctx.store.count('Patient', visible) : 0;
  if (!cur || seen === 0) throw notFound(`Patient/${id} does not exist`);
  if (cur.deleted || !cur.resource) throw gone(`Patient/${id} was deleted`);
  const all = await collect(ctx, policy, cur, id, p);
  const page = all.slice(p.offset, p.offset + p.count);
  noteAccess(res, { count: page.length, query: new URLSearchParams(pairs).toString() });
  const entry: BundleEntry[] = page.map(({ doc, mode }) => {
    const r = doc.resource as Resource;
    return { fullUrl: `${ctx.config.baseUrl}/${r.resourceType}/${doc._id}`, resource: r, search: { mode } };
  });
  const link: BundleLink[] = [{ relation: 'self', url: pageLink(ctx, id, pairs, p.offset, p.count) }];
  if (p.count > 0 && p.offset + p.count < all.length)
    link.push({ relation: 'next', url: pageLink(ctx, id, pairs, p.offset + p.count, p.count) });
  if (p.offset > 0)
    link.push({
      relation: 'previous',
      url: pageLink(ctx, id, pairs, Math.max(0, p.offset - p.count), p.count),
    });
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: all.length, link };
  if (entry.length > 0) bundle.entry = entry;
  sendJson(req, res, 200, bundle);
}
