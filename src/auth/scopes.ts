import type { ScopeAction } from './policy';

/**
 * SMART clinical scopes, v1 and v2 (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
 *
 *   patient/Observation.read    v1: read = r + s, write = c + u + d, * = all
 *   user/*.cruds                v2: any non-empty subset of c, r, u, d, s, in that order
 *   patient/Observation.rs?category=laboratory    v2 granular: only resources matching the query
 *
 * Anything else (openid, fhirUser, launch, launch/patient, offline_access, malformed or unknown
 * scopes) grants no access to data and is ignored here.
 */
export type ScopeContext = 'patient' | 'user' | 'system';

export interface ClinicalScope {
  /** The scope as the token had it. */
  text: string;
  context: ScopeContext;
  /** A resource type or `*`. */
  type: string;
  actions: ReadonlySet<ScopeAction>;
  /** Granular (v2) restriction: search parameters a resource must match, or undefined. */
  query?: Array<[string, string]>;
}

const ALL: ScopeAction[] = ['c', 'r', 'u', 'd', 's'];
const V1: Record<string, ScopeAction[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ALL };
const SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]{0,63})\.(read|write|\*|c?r?u?d?s?)(?:\?(.*))?$/;

/**
 * One scope string -> a clinical scope, or undefined when it is not one (or is malformed: a v2
 * action string out of order, empty, or a query on a v1 scope or on `*`).
 */
export function parseScope(text: string, isResourceType: (t: string) => boolean): ClinicalScope | undefined {
  const m = SCOPE.exec(text);
  if (!m) return undefined;
  const [, context, type, perm, query] = m as unknown as [string, ScopeContext, string, string, string?];
  if (perm === '') return undefined;
  if (type !== '*' && !isResourceType(type)) return undefined;
  const v1 = V1[perm];
  const actions = new Set<ScopeAction>(v1 ?? ([...perm] as ScopeAction[]));
  const scope: ClinicalScope = { text, context, type, actions };
  if (query !== undefined) {
    // Granular scopes are a v2 feature, defined per resource type.
    if (v1 || type === '*' || query === '') return undefined;
    const pairs = [...new URLSearchParams(query)];
    if (pairs.length === 0) return undefined;
    scope.query = pairs;
  }
  return scope;
}

/** The `scope` claim (space-separated string, or an array as some servers send `scp`). */
export function scopeList(claims: Record<string, unknown>): string[] {
  const raw = claims.scope ?? claims.scp;
  if (typeof raw === 'string') return raw.split(/\s+/).filter((s) => s !== '');
  if (Array.isArray(raw)) return raw.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

export function parseScopes(texts: string[], isResourceType: (t: string) => boolean): ClinicalScope[] {
  const out: ClinicalScope[] = [];
  for (const t of texts) {
    const s = parseScope(t, isResourceType);
    if (s) out.push(s);
  }
  return out;
}
