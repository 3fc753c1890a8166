import type { Request, Response } from 'express';
import type { Bundle, BundleEntry, BundleLink, OperationOutcome, Resource } from 'fhir/r4';
import { badRequest } from '../fhir/errors';
import { checkId } from '../fhir/resource';
import { subset } from '../fhir/summary';
import { readForm } from '../http/body';
import { parsePrefer } from '../http/headers';
import { queryPairs } from '../http/query';
import { sendJson } from '../http/respond';
import { compileSearch, referencesOf } from '../search/compile';
import { parseSearchRequest } from '../search/parse';
import { includeQueries, revincludeQueries, type IncludeSource } from '../search/include';
import { DEFAULT_COUNT, type IncludeTarget, type SearchRequest } from '../search/request';
import type { Filter, Session, Sort } from '../store/backend';
import type { CurrentDoc } from '../store/documents';
import { accessOf, openAccess, restrict, type AccessPolicy } from '../auth/policy';
import { noteAccess } from '../audit/note';
import { compartmentFilter, patientsOf } from '../fhir/compartment';
import type { Features } from './capabilities';
import type { AppContext, Searcher } from './context';

export const FEATURES: Features = {
  searchParamTypes: new Set([
    'string',
    'token',
    'reference',
    'date',
    'number',
    'quantity',
    'uri',
    'composite',
    'special',
  ]),
  include: true,
  systemSearch: true,
};

/** Matches no document. */
const NOTHING: Filter = { _id: { $in: [] } };

/** Included resources per page are bounded so one search cannot pull the whole store. */
const MAX_INCLUDES = 1000;

/** The search machinery as the rest of the server sees it. */
export class SearchService implements Searcher {
  constructor(private readonly ctx: Omit<AppContext, 'searcher'>) {}

  private resolveIds = async (type: string, filter: Filter, session?: Session): Promise<string[]> => {
    const docs = await this.ctx.store.find(
      type,
      { ...filter, deleted: false },
      { projection: { _id: 1 }, session },
    );
    return docs.map((d) => d._id);
  };

  /** Compiles a parsed request to a filter over live documents, plus the sort. */
  async compile(
    request: SearchRequest,
    policy: AccessPolicy,
    session?: Session,
  ): Promise<{ filter: Filter; sort: Sort }> {
    // Chains and _has run sub-queries: they see only what the caller may see, so a chain can
    // never reveal a property of a resource outside the caller's reach.
    const visible = (type: string, filter: Filter): Filter => restrict(filter, policy, type, 's') ?? NOTHING;
    return compileSearch(request, {
      registry: this.ctx.registry,
      resolveIds: (type: string, filter: Filter) => this.resolveIds(type, visible(type, filter), session),
      resolveReferences: async (type: string, f: Filter, code: string) => {
        const filter = visible(type, f);
        const docs = await this.ctx.store.find(
          type,
          { ...filter, deleted: false },
          { projection: { [`idx.${code}`]: 1 }, session },
        );
        return docs.flatMap((d) => referencesOf(d, code));
      },
    });
  }

  async matchIds(
    type: string,
    params: Array<[string, string]>,
    limit: number,
    session?: Session,
    policy: AccessPolicy = openAccess(),
  ): Promise<string[]> {
    // Criteria of conditional interactions are always strict: an ignored parameter would widen
    // the match and update or delete the wrong resource.
    const request = parseSearchRequest(type, params, this.ctx.registry, { strict: true });
    const { filter: compiled } = await this.compile(request, policy, session);
    // Resources the caller may not see do not match (and so cannot be changed through criteria).
    const filter = restrict(compiled, policy, type, 's');
    if (!filter) return [];
    const docs = await this.ctx.store.find(type, filter, {
      projection: { _id: 1 },
      limit,
      session,
      sort: { _id: 1 },
    });
    return docs.map((d) => d._id);
  }

  /** _include and _revinclude (search.html#include), iterating where asked. */
  async includes(request: SearchRequest, matches: CurrentDoc[], policy: AccessPolicy): Promise<CurrentDoc[]> {
    const seen = new Set(matches.map((d) => `${(d.resource as Resource).resourceType}/${d._id}`));
    const out: CurrentDoc[] = [];
    let frontier = matches;
    for (let round = 0; round < 4 && frontier.length > 0 && out.length < MAX_INCLUDES; round++) {
      const next: CurrentDoc[] = [];
      const add = (d: CurrentDoc): void => {
        const key = `${(d.resource as Resource).resourceType}/${d._id}`;
        if (seen.has(key) || out.length >= MAX_INCLUDES) return;
        seen.add(key);
        out.push(d);
        next.push(d);
      };
      for (const inc of request.include) {
        if (round > 0 && !inc.iterate) continue;
        for (const d of await this.forwardIncludes(inc, frontier, policy)) add(d);
      }
      for (const inc of request.revinclude) {
        if (round > 0 && !inc.iterate) continue;
        for (const d of await this.reverseIncludes(inc, frontier, policy)) add(d);
      }
      frontier = next;
    }
    return out;
  }

  private async forwardIncludes(
    inc: IncludeTarget,
    sources: CurrentDoc[],
    policy: AccessPolicy,
  ): Promise<CurrentDoc[]> {
    const out: CurrentDoc[] = [];
    const queries = includeQueries([inc], sources.map(includeSource), this.ctx.registry);
    for (const q of queries) {
      if (!this.ctx.registry.isResourceType(q.type)) continue;
      const filter = restrict(q.filter, policy, q.type, 'r');
      if (filter) out.push(...(await this.ctx.store.find(q.type, filter, { limit: MAX_INCLUDES })));
    }
    return out;
  }

  private async reverseIncludes(
    inc: IncludeTarget,
    targets: CurrentDoc[],
    policy: AccessPolicy,
  ): Promise<CurrentDoc[]> {
    const out: CurrentDoc[] = [];
    for (const q of revincludeQueries([inc], targets.map(includeSource), this.ctx.registry)) {
      const filter = restrict(q.filter, policy, q.type, 's');
      if (filter) out.push(...(await this.ctx.store.find(q.type, filter, { limit: MAX_INCLUDES })));
    }
    return out;
  }
}

function includeSource(d: CurrentDoc): IncludeSource {
  return { type: (d.resource as Resource).resourceType, id: d._id, idx: d.idx };
}

function searcherOf(ctx: AppContext): SearchService {
  if (!(ctx.searcher instanceof SearchService)) throw new Error('search needs the SearchService');
  return ctx.searcher;
}

interface Page {
  type: string;
  docs: CurrentDoc[];
}

function selfLink(
  ctx: AppContext,
  path: string,
  params: Array<[string, string]>,
  offset: number,
  count: number,
): string {
  const q = new URLSearchParams(params.filter(([k]) => k !== '_offset' && k !== '_count'));
  q.set('_count', String(count));
  q.set('_offset', String(offset));
  return `${ctx.config.baseUrl}${path}?${q.toString()}`;
}

async function runSearch(
  ctx: AppContext,
  req: Request,
  res: Response,
  path: string,
  types: string[] | undefined,
  params: Array<[string, string]>,
  extraFilter?: (type: string) => Filter | undefined,
): Promise<void> {
  const strict = parsePrefer(req).handling === 'strict';
  const r = await searchBundle(ctx, accessOf(res), strict, path, types, params, extraFilter);
  noteAccess(res, { count: r.count, patients: r.patients });
  sendJson(req, res, 200, r.bundle);
}

/**
 * A search as a searchset Bundle, without HTTP: the handlers above and GET entries of batch and
 * transaction Bundles (interactions/bundle.ts) share it.
 */
export async function searchBundle(
  ctx: AppContext,
  policy: AccessPolicy,
  strict: boolean,
  path: string,
  types: string[] | undefined,
  params: Array<[string, string]>,
  extraFilter?: (type: string) => Filter | undefined,
): Promise<{ bundle: Bundle; count: number; patients: string[] }> {
  const svc = searcherOf(ctx);
  const request = parseSearchRequest(types?.length === 1 ? types[0] : undefined, params, ctx.registry, {
    strict,
  });
  const searchTypes = types ?? request.types ?? (await liveTypes(ctx));
  const count = request.count ?? DEFAULT_COUNT;
  const offset = request.offset ?? 0;
  const wantTotal = request.total !== 'none' || request.summary === 'count';
  let total = 0;
  let remainingSkip = offset;
  let remaining = request.summary === 'count' ? 0 : count;
  const pages: Page[] = [];
  for (const type of searchTypes) policy.require(type, 's');
  for (const type of searchTypes) {
    const { filter: compiled, sort } = await svc.compile({ ...request, resourceType: type }, policy);
    const extra = extraFilter?.(type);
    if (extraFilter && !extra) continue;
    // What the token may not see is not found: the search answers as if it did not exist.
    const filter = restrict(extra ? { $and: [compiled, extra] } : compiled, policy, type, 's');
    if (!filter) continue;
    const n = wantTotal || searchTypes.length > 1 ? await ctx.store.count(type, filter) : undefined;
    if (n !== undefined) total += n;
    if (remaining > 0 && (n === undefined || remainingSkip < n)) {
      const docs = await ctx.store.find(type, filter, { sort, skip: remainingSkip, limit: remaining });
      pages.push({ type, docs });
      remaining -= docs.length;
      remainingSkip = 0;
    } else if (n !== undefined) {
      remainingSkip = Math.max(0, remainingSkip - n);
    }
  }
  const matches = pages.flatMap((p) => p.docs);
  const included =
    request.include.length + request.revinclude.length > 0
      ? await svc.includes(request, matches, policy)
      : [];
  const patients = new Set<string>();
  for (const d of [...matches, ...included]) {
    const r = d.resource as Resource;
    for (const p of patientsOf(ctx.registry, r.resourceType, d._id, d.idx)) patients.add(p);
  }
  const entry: BundleEntry[] = [];
  const shape = (r: Resource): Resource => subset(r, ctx.registry, request.summary, request.elements);
  for (const d of matches) {
    const r = d.resource as Resource;
    entry.push({
      fullUrl: `${ctx.config.baseUrl}/${r.resourceType}/${d._id}`,
      resource: shape(r),
      search: { mode: 'match' },
    });
  }
  for (const d of included) {
    const r = d.resource as Resource;
    entry.push({
      fullUrl: `${ctx.config.baseUrl}/${r.resourceType}/${d._id}`,
      resource: shape(r),
      search: { mode: 'include' },
    });
  }
  const links: BundleLink[] = [{ relation: 'self', url: selfLink(ctx, path, params, offset, count) }];
  const more =
    wantTotal || searchTypes.length > 1 ? offset + matches.length < total : matches.length === count;
  if (request.summary !== 'count' && count > 0 && more)
    links.push({ relation: 'next', url: selfLink(ctx, path, params, offset + count, count) });
  if (offset > 0)
    links.push({
      relation: 'previous',
      url: selfLink(ctx, path, params, Math.max(0, offset - count), count),
    });
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset' };
  if (wantTotal) bundle.total = total;
  bundle.link = links;
  if (request.ignored.length > 0) {
    entry.push({
      resource: <OperationOutcome>{
        resourceType: 'OperationOutcome',
        issue: [
          {
            severity: 'warning',
            code: 'not-supported',
            diagnostics: `Ignored unknown search parameters: ${request.ignored.join(', ')}`,
          },
        ],
      },
      search: { mode: 'outcome' },
    });
  }
  if (entry.length > 0) bundle.entry = entry;
  return { bundle, count: matches.length + included.length, patients: [...patients] };
}

async function liveTypes(ctx: AppContext): Promise<string[]> {
  const names = new Set(await ctx.store.backend.listCollections());
  return ctx.registry.resourceTypes.filter((t) => names.has(t));
}

function typeParam(ctx: AppContext, req: Request): string {
  return knownType(ctx, req.params.type as string);
}

function knownType(ctx: AppContext, type: string): string {
  if (!ctx.registry.isResourceType(type))
    throw badRequest(`Unknown resource type "${type.slice(0, 80)}"`, 'not-found');
  return type;
}

/** GET [base]/[type]?... */
export async function typeSearch(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = typeParam(ctx, req);
  const params = queryPairs(req);
  noteAccess(res, {
    interaction: 'search-type',
    resourceType: type,
    query: new URLSearchParams(params).toString(),
  });
  await runSearch(ctx, req, res, `/${type}`, [type], params);
}

/** POST [base]/[type]/_search with form parameters (and any in the URL). */
export async function typeSearchPost(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = typeParam(ctx, req);
  noteAccess(res, { interaction: 'search-type', resourceType: type });
  const params = [...queryPairs(req), ...(await readForm(req, ctx.config))];
  noteAccess(res, { query: new URLSearchParams(params).toString() });
  await runSearch(ctx, req, res, `/${type}`, [type], params);
}

/** GET [base]?_type=...: all types, or those named by _type. */
export async function systemSearch(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const params = queryPairs(req);
  if (params.length === 0)
    throw badRequest('A system search needs parameters, e.g. ?_type=Patient&_lastUpdated=ge2024');
  await runSearch(ctx, req, res, '', undefined, params);
}

/** GET [base]/Patient/[id]/[type]?...: the Patient compartment (compartmentdefinition-patient). */
export async function compartmentSearch(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const id = checkId(req.params.id as string);
  const target = req.params.compartmentType as string;
  noteAccess(res, {
    interaction: 'search-compartment',
    resourceType: target,
    query: new URLSearchParams(queryPairs(req)).toString(),
    patients: [id],
  });
  const types = target === '*' ? [...ctx.registry.patientCompartment.keys()] : [knownType(ctx, target)];
  const extra = (type: string): Filter | undefined =>
    compartmentFilter(ctx.registry, type, [id]) ?? undefined;
  if (types.length === 1 && !extra(types[0] as string))
    throw badRequest(`${target} is not in the Patient compartment`, 'not-found');
  await runSearch(ctx, req, res, `/Patient/${id}/${target}`, types, queryPairs(req), extra);
}
