import type { Binary, Resource } from 'fhir/r4';
import { badRequest, FhirError, notSupported } from '../fhir/errors';
import { asResource, checkId, checkType, checkVersionId } from '../fhir/resource';
import { parseETag } from '../http/headers';
import { isRecord } from '../search/types/common';
import { assertNotAuditWrite } from '../audit/guard';
import type { AccessPolicy } from '../auth/policy';
import type { AppContext } from './context';
import { parseCriteria } from './crud';

export type EntryMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One Bundle.entry, checked and parsed; nothing resolved yet (bundle-plan.ts does that). */
export interface ParsedEntry {
  index: number;
  fullUrl?: string;
  method: EntryMethod;
  /** request.url as given (for messages). */
  url: string;
  /** Undefined only for a system-level search (GET ?_type=...). */
  type?: string;
  id?: string;
  /** vread: GET Type/id/_history/vid. */
  versionId?: number;
  /** Search parameters of a search, or the criteria of a conditional update/patch/delete. */
  params: Array<[string, string]>;
  /** POST/PUT: the validated resource. */
  resource?: Resource;
  /** PATCH: the JSON Patch document. */
  patch?: unknown;
  ifMatch?: number;
  ifNoneExist?: Array<[string, string]>;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
}

const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** Processing order of a transaction (http.html#trules): DELETE, POST, PUT/PATCH, GET/HEAD. */
export function methodRank(m: EntryMethod): number {
  return m === 'DELETE' ? 0 : m === 'POST' ? 1 : m === 'PUT' || m === 'PATCH' ? 2 : 3;
}

export function isWrite(m: EntryMethod): boolean {
  return methodRank(m) < 3;
}

/** "Bundle.entry[3] (urn:uuid:...)": how errors name an entry. */
function entryLabel(e: { index: number; fullUrl?: string }): string {
  return `Bundle.entry[${e.index}]${e.fullUrl ? ` (${e.fullUrl})` : ''}`;
}

/** The same error, its issues saying which entry caused it. */
export function atEntry(err: unknown, e: { index: number; fullUrl?: string }): unknown {
  if (!(err instanceof FhirError)) return err;
  const label = entryLabel(e);
  return new FhirError(
    err.status,
    err.issues.map((i) => ({
      ...i,
      diagnostics: `${label}: ${i.diagnostics ?? i.code}`,
      expression: [`Bundle.entry[${e.index}]`, ...(i.expression ?? [])],
    })),
    err.headers,
  );
}

function optionalString(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(`${where}.${key} must be a string`, 'structure');
  return v;
}

/** request.url relative to the base: an absolute URL on this server's base is accepted too. */
function relativeUrl(ctx: AppContext, url: string): string {
  const base = ctx.config.baseUrl.replace(/\/$/, '');
  if (url.startsWith(`${base}/`) || url.startsWith(`${base}?`)) return url.slice(base.length + 1);
  if (/^[a-z][a-z0-9+.-]*:/i.test(url))
    throw badRequest(`request.url ${url.slice(0, 200)} is not on this server (${base})`);
  return url.replace(/^\//, '');
}

/**
 * Parses and checks one entry: method and URL, the resource (validated, of the URL's type),
 * the conditional headers, and the caller's permission for the interaction on the type. Whether
 * the caller may write this very resource is checked once its references are resolved
 * (bundle-plan.ts), since compartment membership follows them.
 */
export async function parseEntry(
  ctx: AppContext,
  raw: unknown,
  index: number,
  policy: AccessPolicy,
): Promise<ParsedEntry> {
  if (!isRecord(raw)) throw badRequest('A Bundle entry must be an object', 'structure');
  const fullUrl = optionalString(raw, 'fullUrl', 'entry');
  const request = raw.request;
  if (!isRecord(request))
    throw badRequest('Every entry of a batch or transaction needs a request', 'required', ['request']);
  const method = optionalString(request, 'method', 'request');
  if (!method || !METHODS.has(method))
    throw badRequest(`request.method must be one of ${[...METHODS].join(', ')}`, 'value');
  const rawUrl = optionalString(request, 'url', 'request');
  if (!rawUrl) throw badRequest('request.url is required', 'required', ['request.url']);
  const url = relativeUrl(ctx, rawUrl.trim());
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const params = q === -1 ? [] : [...new URLSearchParams(url.slice(q + 1))];
  const segs = path === '' ? [] : path.split('/');
  const e: ParsedEntry = { index, method: method as EntryMethod, url: rawUrl, params };
  if (fullUrl !== undefined) e.fullUrl = fullUrl;
  const etagOf = (k: string): number | undefined => {
    const v = optionalString(request, k, 'request');
    return v === undefined ? undefined : parseETag(v, `request.${k}`);
  };
  e.ifMatch = etagOf('ifMatch');
  e.ifNoneMatch = optionalString(request, 'ifNoneMatch', 'request');
  e.ifModifiedSince = optionalString(request, 'ifModifiedSince', 'request');
  const ine = optionalString(request, 'ifNoneExist', 'request');

  if (segs.length > 0) e.type = checkType(ctx.registry, segs[0] as string);
  if (e.method === 'GET' || e.method === 'HEAD') {
    if (segs.length === 2) e.id = checkId(segs[1] as string);
    else if (segs.length === 4 && segs[2] === '_history') {
      e.id = checkId(segs[1] as string);
      e.versionId = checkVersionId(segs[3] as string);
    } else if (segs.length > 1)
      throw notSupported(`GET ${path} is not supported inside a Bundle (read, vread and search are)`);
    else if (segs.length === 0 && params.length === 0)
      throw badRequest('A system search needs parameters, e.g. ?_type=Patient');
    if (e.type) policy.require(e.type, e.id ? 'r' : 's');
    return e;
  }
  if (!e.type) throw badRequest(`${method} needs a resource type in request.url`);
  // The audit log is read-only through Bundles too (the router guard covers the plain API).
  assertNotAuditWrite(e.type, e.method);
  if (segs.length > 2) throw badRequest(`request.url ${rawUrl.slice(0, 200)} is not a ${method} URL`);
  if (segs.length === 2) e.id = checkId(segs[1] as string);
  if (segs.length === 2 && params.length > 0)
    throw badRequest('request.url has both an id and search criteria');
  const type = e.type;

  if (e.method === 'DELETE') {
    policy.require(type, 'd');
    if (!e.id && params.length === 0) throw badRequest('DELETE needs an id or search criteria');
    return e;
  }
  if (e.method === 'PATCH') {
    policy.require(type, 'u');
    if (!e.id && params.length === 0) throw badRequest('PATCH needs an id or search criteria');
    e.patch = patchDocument(raw.resource);
    return e;
  }
  // POST, PUT: a resource of the URL's type, validated as a single create or update would be.
  if (raw.resource === undefined)
    throw badRequest(`${method} needs entry.resource`, 'required', ['resource']);
  const resource = await ctx.validator.check(asResource(raw.resource, type));
  if (e.method === 'POST') {
    policy.require(type, 'c');
    if (segs.length !== 1 || params.length > 0)
      throw badRequest('POST request.url must be the resource type alone (conditions go in ifNoneExist)');
    if (ine !== undefined) e.ifNoneExist = parseCriteria(ine, 'request.ifNoneExist');
  } else {
    policy.require(type, 'u');
    if (e.id) {
      if (resource.id === undefined)
        throw badRequest('The resource must carry its id on update', 'required', [`${type}.id`]);
      if (resource.id !== e.id)
        throw badRequest(`Resource.id "${resource.id}" does not match request.url's id "${e.id}"`);
    } else if (params.length === 0) throw badRequest('PUT needs an id or search criteria');
  }
  e.resource = resource;
  return e;
}

/** PATCH bodies in a Bundle: a Binary holding JSON Patch (http.html#patch), or the operations as such. */
function patchDocument(body: unknown): unknown {
  if (Array.isArray(body)) return body;
  if (isRecord(body) && body.resourceType === 'Binary') {
    const b = body as unknown as Binary;
    const ct = b.contentType?.split(';')[0]?.trim().toLowerCase();
    if (ct !== 'application/json-patch+json')
      throw notSupported(
        `PATCH with a Binary of ${ct ?? 'no contentType'}: only application/json-patch+json`,
      );
    if (typeof b.data !== 'string') throw badRequest('The PATCH Binary has no data', 'required');
    try {
      return JSON.parse(Buffer.from(b.data, 'base64').toString('utf8')) as unknown;
    } catch {
      throw badRequest('The PATCH Binary data is not base64-encoded JSON');
    }
  }
  if (isRecord(body) && body.resourceType === 'Parameters')
    throw notSupported('FHIRPath Patch is not supported; use JSON Patch in a Binary');
  throw badRequest('PATCH needs entry.resource: a Binary with application/json-patch+json', 'required');
}

/** The entries of a Bundle as given (an absent entry list is an empty Bundle). */
export function entriesOf(bundle: Record<string, unknown>): unknown[] {
  const entry = bundle.entry;
  if (entry === undefined) return [];
  if (!Array.isArray(entry)) throw badRequest('Bundle.entry must be an array', 'structure');
  return entry;
}
