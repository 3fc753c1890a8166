import type { Resource } from 'fhir/r4';
import type { AccessPolicy } from '../auth/policy';
import { badRequest, conflict, notFound, preconditionFailed } from '../fhir/errors';
import { isConditionalReference, isUrnReference, mapReferences, referencesIn } from '../fhir/references';
import type { Session } from '../store/backend';
import type { CurrentDoc } from '../store/documents';
import { atEntry, type ParsedEntry } from './bundle-entry';
import type { AppContext } from './context';
import { assertWritable, canonicalCriteria, patchOf } from './crud';

/** What a write entry turned out to address, once conditions are resolved. */
export interface Target {
  type: string;
  id: string;
  /** POST with ifNoneExist that matched: the existing resource, nothing is written (200). */
  existing?: CurrentDoc;
  /** A create guarded by these criteria (ifNoneExist, or a conditional PUT that matched nothing). */
  guard?: Array<[string, string]>;
  /** A conditional DELETE that matched nothing. */
  none?: boolean;
  /** POST/PUT: the resource with every Bundle-local and conditional reference resolved. */
  resource?: Resource;
}

/** The result of one write entry, for the response entry and the audit. */
export interface WriteOutcome {
  status: number;
  type: string;
  id?: string;
  versionId?: number;
  lastUpdated?: string;
  resource?: Resource;
  idx?: Record<string, unknown>;
  /** Informational text for Prefer: return=OperationOutcome and no-op entries. */
  info: string;
}

/**
 * Plans the write entries of a transaction (or one batch entry) inside `session`, before anything
 * is written (http.html#trules): resolves conditional URLs to ids, assigns the identities of
 * created resources (`newIds`, chosen once outside the session so a retried transaction keeps
 * them), maps each fullUrl to `Type/id`, refuses two entries that address the same resource, and
 * rewrites every reference to a fullUrl and every conditional reference in the resources.
 */
export async function planWrites(
  ctx: AppContext,
  entries: readonly ParsedEntry[],
  newIds: ReadonlyMap<number, string>,
  policy: AccessPolicy,
  session: Session | undefined,
): Promise<Map<number, Target>> {
  const targets = new Map<number, Target>();
  const identities = new Map<string, string>();
  const seen = new Map<string, ParsedEntry>();
  for (const e of entries) {
    let t: Target;
    try {
      t = await resolveTarget(ctx, e, newIds, policy, session);
    } catch (err) {
      throw atEntry(err, e);
    }
    targets.set(e.index, t);
    if (t.none) continue;
    const key = `${t.type}/${t.id}`;
    const other = seen.get(key);
    if (other)
      throw atEntry(
        badRequest(`${key} is also the target of Bundle.entry[${other.index}]; a resource may appear once`),
        e,
      );
    seen.set(key, e);
    if (e.fullUrl) identities.set(e.fullUrl, key);
  }

  // Conditional references resolve against what is stored before this transaction writes.
  const conditional = new Map<string, string>();
  for (const e of entries) {
    if (!e.resource) continue;
    for (const ref of referencesIn(e.resource)) {
      if (!isConditionalReference(ref) || conditional.has(ref)) continue;
      try {
        conditional.set(ref, await resolveConditionalReference(ctx, ref, policy, session));
      } catch (err) {
        throw atEntry(err, e);
      }
    }
  }
  for (const e of entries) {
    const t = targets.get(e.index);
    if (!e.resource || !t) continue;
    let failed: unknown;
    const mapped = mapReferences(e.resource, (ref, where) => {
      const local = identities.get(ref);
      if (local) return local;
      if (where === 'narrative') return undefined;
      const resolved = conditional.get(ref);
      if (resolved) return resolved;
      if (isUrnReference(ref))
        failed ??= badRequest(`Reference ${ref} is not the fullUrl of any entry of this Bundle`);
      return undefined;
    });
    if (failed) throw atEntry(failed, e);
    t.resource = { ...mapped, id: t.id } as Resource;
    // Compartment rules follow references: checked on the resource as it will be stored.
    try {
      assertWritable(policy, t.resource, e.method === 'POST' ? 'c' : 'u');
    } catch (err) {
      throw atEntry(err, e);
    }
  }
  return targets;
}

async function resolveTarget(
  ctx: AppContext,
  e: ParsedEntry,
  newIds: ReadonlyMap<number, string>,
  policy: AccessPolicy,
  session: Session | undefined,
): Promise<Target> {
  const type = e.type as string;
  const fresh = (): string => {
    const id = newIds.get(e.index);
    if (!id) throw new Error(`no id assigned to entry ${e.index}`);
    return id;
  };
  const match = async (params: Array<[string, string]>): Promise<string[]> =>
    ctx.searcher.matchIds(type, params, 2, session, policy);
  if (e.method === 'POST') {
    if (!e.ifNoneExist) return { type, id: fresh() };
    const ids = await match(e.ifNoneExist);
    if (ids.length > 1)
      throw preconditionFailed(`ifNoneExist matches ${ids.length} or more resources; expected at most one`);
    if (ids.length === 1) {
      const existing = await ctx.store.read(type, ids[0] as string, session);
      if (existing && !existing.deleted) return { type, id: existing._id, existing };
    }
    return { type, id: fresh(), guard: e.ifNoneExist };
  }
  if (e.id) return { type, id: e.id };
  const ids = await match(e.params);
  if (ids.length > 1)
    throw preconditionFailed(`The criteria match ${ids.length} or more resources; expected at most one`);
  const found = ids[0];
  if (e.method === 'DELETE') return found ? { type, id: found } : { type, id: '', none: true };
  if (e.method === 'PATCH') {
    if (!found) throw notFound('No resource matches the criteria');
    return { type, id: found };
  }
  // Conditional PUT (http.html#cond-update).
  const bodyId = e.resource?.id;
  if (found) {
    if (bodyId !== undefined && bodyId !== found)
      throw badRequest(`Resource.id "${bodyId}" is not the id of the matching resource (${found})`);
    return { type, id: found };
  }
  if (bodyId !== undefined) return { type, id: bodyId };
  return { type, id: fresh(), guard: e.params };
}

/** `Patient?identifier=a|b` -> `Patient/<id>`; no match is 400, several are 412. */
async function resolveConditionalReference(
  ctx: AppContext,
  ref: string,
  policy: AccessPolicy,
  session: Session | undefined,
): Promise<string> {
  const q = ref.indexOf('?');
  const type = ref.slice(0, q);
  if (!ctx.registry.isResourceType(type))
    throw badRequest(`Conditional reference ${ref.slice(0, 200)} names an unknown resource type`);
  const params = [...new URLSearchParams(ref.slice(q + 1))];
  if (params.length === 0) throw badRequest(`Conditional reference ${ref.slice(0, 200)} has no criteria`);
  const ids = await ctx.searcher.matchIds(type, params, 2, session, policy);
  if (ids.length === 0)
    throw badRequest(`Conditional reference ${ref.slice(0, 200)} matches no resource`, 'not-found');
  if (ids.length > 1)
    throw preconditionFailed(`Conditional reference ${ref.slice(0, 200)} matches more than one resource`);
  return `${type}/${ids[0] as string}`;
}

/** Writes one planned entry in `session` with the single-resource interactions' semantics. */
export async function executeWrite(
  ctx: AppContext,
  e: ParsedEntry,
  t: Target,
  policy: AccessPolicy,
  session: Session | undefined,
): Promise<WriteOutcome> {
  const { type, id } = t;
  const store = ctx.store;
  if (e.method === 'DELETE') {
    if (t.none) return { status: 204, type, info: 'No resource matched the criteria; nothing was deleted' };
    const r = await store.delete(
      type,
      id,
      { ifMatch: e.ifMatch, canDelete: (cur) => policy.canSee(cur, 'd') },
      session,
    );
    const out: WriteOutcome = { status: 204, type, id, info: `Deleted ${type}/${id}` };
    if (r.versionId !== undefined) out.versionId = r.versionId;
    if (r.before) out.idx = r.before.idx;
    return out;
  }
  if (t.existing) {
    const d = t.existing;
    return {
      status: 200,
      type,
      id,
      versionId: d.versionId,
      lastUpdated: d.lastUpdated,
      resource: d.resource as Resource,
      idx: d.idx,
      info: `ifNoneExist matched ${type}/${id}; nothing was created`,
    };
  }
  if (e.method === 'PATCH') {
    const w = await store.modify(
      type,
      id,
      patchOf(ctx, policy, type, id, e.patch),
      { ifMatch: e.ifMatch, method: 'PATCH' },
      session,
    );
    return written(w, type);
  }
  const resource = t.resource as Resource;
  if (t.guard) {
    const params = t.guard;
    const r = await store.createIfNoneExist(
      type,
      resource,
      canonicalCriteria(params),
      (s) => ctx.searcher.matchIds(type, params, 2, s, policy),
      session,
      id,
    );
    // The plan saw no match in this same session: a match now means a concurrent writer won.
    if ('existing' in r) throw conflict('A matching resource was created concurrently; retry');
    return written(r, type);
  }
  if (e.method === 'POST')
    return written(await store.update(type, id, resource, { method: 'POST' }, session), type);
  const w = await store.update(
    type,
    id,
    resource,
    { ifMatch: e.ifMatch, canReplace: (cur) => policy.canSee(cur, 'u') },
    session,
  );
  return written(w, type);
}

function written(
  w: {
    resource: Resource;
    versionId: number;
    lastUpdated: string;
    created: boolean;
    idx: Record<string, unknown>;
  },
  type: string,
): WriteOutcome {
  const id = w.resource.id as string;
  return {
    status: w.created ? 201 : 200,
    type,
    id,
    versionId: w.versionId,
    lastUpdated: w.lastUpdated,
    resource: w.resource,
    idx: w.idx,
    info: `${w.created ? 'Created' : 'Updated'} ${type}/${id} version ${w.versionId}`,
  };
}
