import type { Request, Response } from 'express';
import type { Resource } from 'fhir/r4';
import {
  badRequest,
  FhirError,
  gone,
  issue,
  notFound,
  preconditionFailed,
  unprocessable,
} from '../fhir/errors';
import { applyJsonPatch } from '../fhir/json-patch';
import { asResource, checkId, checkType, checkVersionId } from '../fhir/resource';
import { parseSummary, subset } from '../fhir/summary';
import { readJson } from '../http/body';
import { etag, parseETag, parseHttpDate, parsePrefer } from '../http/headers';
import { queryPairs, queryParam } from '../http/query';
import { outcome, sendJson, sendResource } from '../http/respond';
import type { CurrentDoc, HistoryDoc } from '../store/documents';
import type { WriteResult } from '../store/resource-store';
import { accessOf, seesEverything, type AccessPolicy, type ScopeAction } from '../auth/policy';
import { noteAccess } from '../audit/note';
import { compartmentCodes, patientsOf } from '../fhir/compartment';
import type { AppContext } from './context';

/** Parameters that shape the answer rather than select resources. */
const RESULT_PARAMS = new Set(['_format', '_pretty', '_summary', '_elements']);

function criteria(req: Request): Array<[string, string]> {
  return queryPairs(req).filter(([k]) => !RESULT_PARAMS.has(k));
}

function httpDate(iso: string): string {
  return new Date(iso).toUTCString();
}

function setVersionHeaders(res: Response, versionId: number, lastUpdated: string): void {
  res.set('ETag', etag(versionId));
  res.set('Last-Modified', httpDate(lastUpdated));
}

function ifMatch(req: Request): number | undefined {
  const v = req.get('if-match');
  return v === undefined ? undefined : parseETag(v, 'If-Match');
}

/** The body of a write answer, per Prefer: return= (http.html#ops). */
function sendWriteResult(ctx: AppContext, req: Request, res: Response, type: string, w: WriteResult): void {
  const status = w.created ? 201 : 200;
  noteAccess(res, {
    resourceType: type,
    id: w.resource.id,
    versionId: w.versionId,
    patients: patientsOf(ctx.registry, type, w.resource.id, w.idx),
  });
  setVersionHeaders(res, w.versionId, w.lastUpdated);
  const id = w.resource.id as string;
  res.set('Location', `${ctx.config.baseUrl}/${type}/${id}/_history/${w.versionId}`);
  const prefer = parsePrefer(req).return ?? 'representation';
  if (prefer === 'minimal') {
    res.status(status).end();
  } else if (prefer === 'OperationOutcome') {
    sendJson(
      req,
      res,
      status,
      outcome(
        'information',
        'informational',
        `${w.created ? 'Created' : 'Updated'} ${type}/${id} version ${w.versionId}`,
      ),
    );
  } else {
    sendResource(req, res, status, w.resource);
  }
}

function sendCurrent(ctx: AppContext, req: Request, res: Response, doc: CurrentDoc, status = 200): void {
  const resource = doc.resource as Resource;
  noteAccess(res, {
    resourceType: resource.resourceType,
    id: doc._id,
    versionId: doc.versionId,
    patients: patientsOf(ctx.registry, resource.resourceType, doc._id, doc.idx),
  });
  setVersionHeaders(res, doc.versionId, doc.lastUpdated);
  const summary = parseSummary(queryParam(req, '_summary'));
  if (summary === 'count') throw badRequest('_summary=count applies to searches, not reads');
  const elements = queryParam(req, '_elements')?.split(',');
  sendResource(req, res, status, subset(resource, ctx.registry, summary, elements));
}

/**
 * Whether the caller may learn that a deleted resource existed: they could see its last live
 * version. Otherwise a tombstone answers 404, exactly like an id that was never used.
 */
export async function tombstoneVisible(
  ctx: AppContext,
  policy: AccessPolicy,
  type: string,
  id: string,
  versionId: number,
): Promise<boolean> {
  if (seesEverything(policy, type, 'r')) return true;
  const before = await ctx.store.lastLiveVersion(type, id, versionId);
  return before !== undefined && policy.canSee(before, 'r');
}

// ---- read / vread ---------------------------------------------------------------------------

export async function read(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const id = checkId(req.params.id as string);
  noteAccess(res, { interaction: 'read', resourceType: type, id });
  const policy = accessOf(res);
  policy.require(type, 'r');
  const doc = await readableCurrent(ctx, policy, type, id);
  if (notModified(doc.versionId, doc.lastUpdated, req.get('if-none-match'), req.get('if-modified-since'))) {
    setVersionHeaders(res, doc.versionId, doc.lastUpdated);
    res.status(304).end();
    return;
  }
  sendCurrent(ctx, req, res, doc);
}

/**
 * The current version the caller may read (read, and GET entries of Bundles). A resource the
 * caller may not see answers exactly like one that does not exist, also once deleted; a visible
 * deletion is 410 with the tombstone's ETag.
 */
export async function readableCurrent(
  ctx: AppContext,
  policy: AccessPolicy,
  type: string,
  id: string,
): Promise<CurrentDoc & { resource: Resource }> {
  const doc = await ctx.store.read(type, id);
  if (!doc || (doc.resource && !policy.canSee(doc.resource, 'r')))
    throw notFound(`${type}/${id} does not exist`);
  if (doc.deleted || !doc.resource) {
    if (!(await tombstoneVisible(ctx, policy, type, id, doc.versionId)))
      throw notFound(`${type}/${id} does not exist`);
    throw versioned(
      gone(`${type}/${id} was deleted (version ${doc.versionId})`),
      doc.versionId,
      doc.lastUpdated,
    );
  }
  return doc as CurrentDoc & { resource: Resource };
}

/** A version the caller may read (vread, and GET entries of Bundles), with the same rules. */
export async function readableVersion(
  ctx: AppContext,
  policy: AccessPolicy,
  type: string,
  id: string,
  versionId: number,
): Promise<HistoryDoc & { resource: Resource }> {
  const h = await ctx.store.vread(type, id, versionId);
  if (!h || (h.resource && !policy.canSee(h.resource, 'r')))
    throw notFound(`${type}/${id}/_history/${versionId} does not exist`);
  if (h.deleted || !h.resource) {
    if (!(await tombstoneVisible(ctx, policy, type, id, h.versionId)))
      throw notFound(`${type}/${id}/_history/${versionId} does not exist`);
    throw versioned(gone(`${type}/${id} version ${versionId} is a deletion`), h.versionId, h.lastUpdated);
  }
  return h as HistoryDoc & { resource: Resource };
}

/** `e` with the version's ETag and Last-Modified, as every answer about a version carries them. */
function versioned(e: FhirError, versionId: number, lastUpdated: string): FhirError {
  return new FhirError(e.status, e.issues, { ETag: etag(versionId), 'Last-Modified': httpDate(lastUpdated) });
}

/** If-None-Match (wins when present) and If-Modified-Since (whole seconds, as HTTP dates have). */
export function notModified(
  versionId: number,
  lastUpdated: string,
  ifNoneMatch: string | undefined,
  ifModifiedSince: string | undefined,
): boolean {
  if (ifNoneMatch !== undefined)
    return ifNoneMatch
      .split(',')
      .some((t) => t.trim() === '*' || t.trim().replace(/^W\//, '') === `"${versionId}"`);
  const ims = parseHttpDate(ifModifiedSince);
  return ims !== undefined && Math.floor(Date.parse(lastUpdated) / 1000) * 1000 <= ims;
}

export async function vread(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const id = checkId(req.params.id as string);
  const versionId = checkVersionId(req.params.vid as string);
  noteAccess(res, { interaction: 'vread', resourceType: type, id, versionId });
  const policy = accessOf(res);
  policy.require(type, 'r');
  const h = await readableVersion(ctx, policy, type, id, versionId);
  setVersionHeaders(res, h.versionId, h.lastUpdated);
  const summary = parseSummary(queryParam(req, '_summary'));
  const elements = queryParam(req, '_elements')?.split(',');
  // A version's index is not stored: evaluate the compartment's parameters only.
  const idx = ctx.store.indexOf(h.resource, compartmentCodes(ctx.registry, type));
  noteAccess(res, { patients: patientsOf(ctx.registry, type, id, idx) });
  sendResource(req, res, 200, subset(h.resource, ctx.registry, summary, elements));
}

// ---- create ---------------------------------------------------------------------------------

export async function create(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  noteAccess(res, { interaction: 'create', resourceType: type });
  const policy = accessOf(res);
  policy.require(type, 'c');
  const { value } = await readJson(req, ctx.config, ['resource']);
  const resource = await ctx.validator.check(asResource(value, type));
  // The server assigns the id of a created resource; a client id in the body is ignored (http.html#create).
  const { id: _ignored, ...body } = resource as Resource & { id?: string };
  assertWritable(policy, body as Resource, 'c');
  const ine = req.get('if-none-exist');
  if (ine === undefined) {
    sendWriteResult(ctx, req, res, type, await ctx.store.create(type, body as Resource));
    return;
  }
  const params = parseCriteria(ine, 'If-None-Exist');
  const r = await ctx.store.createIfNoneExist(type, body as Resource, canonicalCriteria(params), (s) =>
    ctx.searcher.matchIds(type, params, 2, s, policy),
  );
  if ('existing' in r) {
    res.set('Location', `${ctx.config.baseUrl}/${type}/${r.existing._id}/_history/${r.existing.versionId}`);
    sendCurrent(ctx, req, res, r.existing, 200);
    return;
  }
  sendWriteResult(ctx, req, res, type, r);
}

/** `identifier=a|b&name=x` from a header: plain string pairs, never objects. */
export function parseCriteria(raw: string, what: string): Array<[string, string]> {
  const q = raw.trim().replace(/^.*\?/, '');
  const pairs = [...new URLSearchParams(q)].filter(([k]) => !RESULT_PARAMS.has(k));
  if (pairs.length === 0)
    throw badRequest(`${what} must hold search parameters, e.g. identifier=system|value`);
  return pairs;
}

/** The same criteria in any order give the same key (the conditional-create guard). */
export function canonicalCriteria(params: Array<[string, string]>): string {
  return [...params]
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

// ---- update ---------------------------------------------------------------------------------

export async function update(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const id = checkId(req.params.id as string);
  noteAccess(res, { interaction: 'update', resourceType: type, id });
  const policy = accessOf(res);
  policy.require(type, 'u');
  const { value } = await readJson(req, ctx.config, ['resource']);
  const resource = await ctx.validator.check(asResource(value, type));
  if (resource.id === undefined)
    throw badRequest('The resource must carry its id on update', 'required', [`${type}.id`]);
  if (resource.id !== id)
    throw badRequest(`Resource.id "${resource.id}" does not match the URL's id "${id}"`, 'invalid', [
      `${type}.id`,
    ]);
  assertWritable(policy, resource, 'u');
  const w = await ctx.store.update(type, id, resource, {
    ifMatch: ifMatch(req),
    canReplace: (cur) => policy.canSee(cur, 'u'),
  });
  sendWriteResult(ctx, req, res, type, w);
}

/** PUT [base]/[type]?criteria (http.html#cond-update). */
export async function conditionalUpdate(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const params = criteria(req);
  noteAccess(res, { interaction: 'update', resourceType: type, query: canonicalCriteria(params) });
  const policy = accessOf(res);
  policy.require(type, 'u');
  if (params.length === 0) throw badRequest('Conditional update needs search parameters in the URL');
  const { value } = await readJson(req, ctx.config, ['resource']);
  const resource = await ctx.validator.check(asResource(value, type));
  assertWritable(policy, resource, 'u');
  /** An update (or update-as-create) that must not overwrite what the caller cannot see. */
  const replace = async (id: string, body: Resource, ifMatchHeader: number | undefined): Promise<void> => {
    const w = await ctx.store.update(type, id, body, {
      ifMatch: ifMatchHeader,
      canReplace: (cur) => policy.canSee(cur, 'u'),
    });
    sendWriteResult(ctx, req, res, type, w);
  };
  const ids = await ctx.searcher.matchIds(type, params, 2, undefined, policy);
  if (ids.length > 1)
    throw preconditionFailed(`The criteria match ${ids.length} or more resources; expected at most one`);
  if (ids.length === 1) {
    const id = ids[0] as string;
    if (resource.id !== undefined && resource.id !== id)
      throw badRequest(`Resource.id "${resource.id}" is not the id of the matching resource (${id})`);
    await replace(id, { ...resource, id } as Resource, ifMatch(req));
    return;
  }
  // No match, but an id: update-as-create.
  if (resource.id !== undefined) {
    await replace(resource.id, resource, ifMatch(req));
    return;
  }
  // No match and no id: a create, guarded like If-None-Exist so concurrent ones make one resource.
  const r = await ctx.store.createIfNoneExist(type, resource, canonicalCriteria(params), (s) =>
    ctx.searcher.matchIds(type, params, 2, s, policy),
  );
  if ('existing' in r) {
    await replace(r.existing._id, { ...resource, id: r.existing._id } as Resource, undefined);
    return;
  }
  sendWriteResult(ctx, req, res, type, r);
}

// ---- patch ----------------------------------------------------------------------------------

/**
 * A PATCH as a store modifier, for the PATCH interaction and PATCH entries of Bundles alike: the
 * current version must be visible, the patched resource is validated and must stay writable.
 */
export function patchOf(
  ctx: AppContext,
  policy: AccessPolicy,
  type: string,
  id: string,
  patch: unknown,
): (current: Resource) => Promise<Resource> {
  return async (current) => {
    // Another patient's resource answers exactly like a missing one.
    if (!policy.canSee(current, 'u')) throw notFound(`${type}/${id} does not exist`);
    const patched = await ctx.validator.check(asResourceAfterPatch(applyJsonPatch(current, patch), type, id));
    assertWritable(policy, patched, 'u');
    return patched;
  };
}

async function patchById(
  ctx: AppContext,
  req: Request,
  res: Response,
  type: string,
  id: string,
  patch: unknown,
): Promise<void> {
  const w = await ctx.store.modify(type, id, patchOf(ctx, accessOf(res), type, id, patch), {
    ifMatch: ifMatch(req),
    method: 'PATCH',
  });
  sendWriteResult(ctx, req, res, type, w);
}

export function asResourceAfterPatch(patched: unknown, type: string, id: string): Resource {
  if (patched === null || typeof patched !== 'object' || Array.isArray(patched))
    throw unprocessable('The patch does not leave a resource');
  const p = patched as { resourceType?: unknown; id?: unknown };
  if (p.resourceType !== type)
    throw unprocessable('The patch must not change resourceType', ['resourceType']);
  if (p.id !== id) throw unprocessable('The patch must not change the id', [`${type}.id`]);
  return asResource(patched, type);
}

export async function patch(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const id = checkId(req.params.id as string);
  noteAccess(res, { interaction: 'patch', resourceType: type, id });
  accessOf(res).require(type, 'u');
  const { value } = await readJson(req, ctx.config, ['json-patch']);
  await patchById(ctx, req, res, type, id, value);
}

export async function conditionalPatch(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const params = criteria(req);
  if (params.length === 0) throw badRequest('Conditional patch needs search parameters in the URL');
  noteAccess(res, { interaction: 'patch', resourceType: type, query: canonicalCriteria(params) });
  const policy = accessOf(res);
  policy.require(type, 'u');
  const { value } = await readJson(req, ctx.config, ['json-patch']);
  const ids = await ctx.searcher.matchIds(type, params, 2, undefined, policy);
  if (ids.length === 0) throw notFound('No resource matches the criteria');
  if (ids.length > 1) throw preconditionFailed('The criteria match more than one resource');
  await patchById(ctx, req, res, type, ids[0] as string, value);
}

// ---- delete ---------------------------------------------------------------------------------

export async function remove(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const id = checkId(req.params.id as string);
  noteAccess(res, { interaction: 'delete', resourceType: type, id });
  const policy = accessOf(res);
  policy.require(type, 'd');
  await deleteById(ctx, req, res, policy, type, id);
}

/** The delete itself, shared by DELETE by id and by criteria: 204, the tombstone's ETag, the audit note. */
async function deleteById(
  ctx: AppContext,
  req: Request,
  res: Response,
  policy: AccessPolicy,
  type: string,
  id: string,
): Promise<void> {
  const r = await ctx.store.delete(type, id, {
    ifMatch: ifMatch(req),
    canDelete: (cur) => policy.canSee(cur, 'd'),
  });
  if (r.versionId !== undefined) {
    res.set('ETag', etag(r.versionId));
    noteAccess(res, {
      id,
      versionId: r.versionId,
      patients: r.before ? patientsOf(ctx.registry, type, id, r.before.idx) : [],
    });
  }
  res.status(204).end();
}

export function assertWritable(policy: AccessPolicy, resource: Resource, action: ScopeAction): void {
  if (!policy.canWrite(resource, action))
    throw new FhirError(403, [issue('forbidden', `This token may not write this ${resource.resourceType}`)]);
}

/** DELETE [base]/[type]?criteria, single-match semantics (CapabilityStatement: conditionalDelete single). */
export async function conditionalDelete(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const params = criteria(req);
  if (params.length === 0) throw badRequest('Conditional delete needs search parameters in the URL');
  noteAccess(res, { interaction: 'delete', resourceType: type, query: canonicalCriteria(params) });
  const policy = accessOf(res);
  policy.require(type, 'd');
  const ids = await ctx.searcher.matchIds(type, params, 2, undefined, policy);
  if (ids.length > 1)
    throw preconditionFailed('The criteria match more than one resource; this server deletes one at a time');
  if (ids.length === 0) {
    sendJson(
      req,
      res,
      200,
      outcome('information', 'not-found', 'No resource matched the criteria; nothing was deleted'),
    );
    return;
  }
  await deleteById(ctx, req, res, policy, type, ids[0] as string);
}
