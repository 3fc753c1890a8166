import type { Resource } from 'fhir/r4';
import { compartmentCodes, compartmentFilter, patientsOf } from '../fhir/compartment';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { FhirError, issue } from '../fhir/errors';
import { ID_PATTERN } from '../fhir/resource';
import type { Filter } from '../store/backend';
import type { CompiledQuery, GranularCompiler } from './granular';
import type { AccessPolicy, Agent, ScopeAction } from './policy';
import { parseScopes, scopeList, type ClinicalScope } from './scopes';

/** One usable permission of a token: a scope, with its patient confinement and compiled query. */
export interface Grant {
  scope: ClinicalScope;
  /** The patient (logical id) a patient/ scope is confined to. */
  patient?: string;
  query?: CompiledQuery;
}

/** What a verified token allows, independent of the request (cached with the token). */
export interface TokenGrants {
  agent: Omit<Agent, 'address'>;
  grants: Grant[];
  scopes: string[];
}

export interface PolicyDeps {
  registry: DefinitionsRegistry;
  /** Extracts the search index of an in-memory resource, or just the `only` parameters (ResourceStore.indexOf). */
  indexOf(resource: Resource, only?: readonly string[]): Record<string, unknown>;
  granular: GranularCompiler;
  /** The `realm` of WWW-Authenticate. */
  realm: string;
}

const ACTION_NAMES: Record<ScopeAction, string> = {
  c: 'create',
  r: 'read',
  u: 'update',
  d: 'delete',
  s: 'search',
};

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Verified claims -> the grants of the token. Patient/ scopes need a `patient` claim (a valid
 * logical id): without one they grant nothing. Granular scopes whose query does not compile grant
 * nothing either. Never more than the token says.
 */
export async function grantsOf(claims: Record<string, unknown>, deps: PolicyDeps): Promise<TokenGrants> {
  const scopes = scopeList(claims);
  const rawPatient = str(claims.patient);
  const patient = rawPatient && ID_PATTERN.test(rawPatient) ? rawPatient : undefined;
  const fhirUser = str(claims.fhirUser);
  const clientId = str(claims.client_id) ?? str(claims.azp);
  const sub = str(claims.sub);
  const grants: Grant[] = [];
  for (const scope of parseScopes(scopes, (t) => deps.registry.isResourceType(t))) {
    if (scope.context === 'patient' && !patient) continue;
    const g: Grant = { scope };
    if (scope.context === 'patient') g.patient = patient;
    if (scope.query) {
      const q = await deps.granular.compile(scope.type, scope.query);
      if (!q) continue;
      g.query = q;
    }
    grants.push(g);
  }
  const agent: Omit<Agent, 'address'> = { who: fhirUser ?? sub ?? clientId ?? 'unknown' };
  if (clientId) agent.clientId = clientId;
  if (fhirUser) agent.fhirUser = fhirUser;
  if (patient) agent.patient = patient;
  // The widest context among the usable grants (bulk export: a system level export needs system/).
  for (const level of ['system', 'user', 'patient'] as const)
    if (grants.some((g) => g.scope.context === level)) {
      agent.scopeLevel = level;
      break;
    }
  return { agent, grants, scopes };
}

/** The AccessPolicy of a request made with a token (see policy.ts for how handlers apply it). */
export function smartPolicy(tg: TokenGrants, deps: PolicyDeps, address?: string): AccessPolicy {
  const { registry } = deps;
  const applicable = (type: string, action: ScopeAction): Grant[] =>
    tg.grants.filter((g) => (g.scope.type === '*' || g.scope.type === type) && g.scope.actions.has(action));

  /** The Patient compartment of `patient` for `type`; undefined for types outside it. */
  const compartment = (type: string, patient: string): Filter | undefined =>
    compartmentFilter(registry, type, [patient]) ?? undefined;

  const grantFilter = (g: Grant, type: string): Filter => {
    const parts: Filter[] = [];
    if (g.patient) {
      const c = compartment(type, g.patient);
      if (c) parts.push(c);
    }
    if (g.query) parts.push(g.query.filter);
    if (parts.length === 0) return {};
    return parts.length === 1 ? (parts[0] as Filter) : { $and: parts };
  };

  /** Whether a resource passes a grant; `strict` (writes): every patient it names is the token's. */
  const passes = (
    g: Grant,
    resource: Resource,
    idx: () => Record<string, unknown>,
    strict: boolean,
  ): boolean => {
    const type = resource.resourceType;
    if (g.patient) {
      if (type === 'Patient') {
        if (resource.id !== g.patient) return false;
      } else if (compartmentCodes(registry, type).length > 0) {
        const patients = patientsOf(registry, type, resource.id, idx());
        if (!patients.includes(g.patient)) return false;
        if (strict && patients.some((p) => p !== g.patient)) return false;
      }
    }
    if (g.query) {
      const doc = { _id: resource.id, resource, idx: idx(), deleted: false };
      if (!g.query.test(doc)) return false;
    }
    return true;
  };

  const check = (resource: Resource, action: ScopeAction, strict: boolean): boolean => {
    const grants = applicable(resource.resourceType, action);
    // A patient confinement reads only the compartment's references; a granular query the whole index.
    const only = grants.some((g) => g.query) ? undefined : compartmentCodes(registry, resource.resourceType);
    let cached: Record<string, unknown> | undefined;
    const idx = (): Record<string, unknown> => (cached ??= deps.indexOf(resource, only));
    return grants.some((g) => passes(g, resource, idx, strict));
  };

  return {
    agent: { ...tg.agent, address },
    require(type, action) {
      if (applicable(type, action).length > 0) return;
      const wanted = `${type}.${action}`;
      throw new FhirError(
        403,
        [issue('forbidden', `The token's scopes do not permit ${ACTION_NAMES[action]} on ${type}`)],
        {
          'WWW-Authenticate': `Bearer realm="${deps.realm}", error="insufficient_scope", error_description="${wanted} is not granted"`,
        },
      );
    },
    visible(type, action) {
      const filters = applicable(type, action).map((g) => grantFilter(g, type));
      if (filters.length === 0) return null;
      if (filters.some((f) => Object.keys(f).length === 0)) return {};
      return filters.length === 1 ? (filters[0] as Filter) : { $or: filters };
    },
    canSee: (resource, action) => check(resource, action, false),
    canWrite: (resource, action) => check(resource, action, true),
  };
}

/** Denies everything: set before a token is verified, so nothing downstream can run open. */
export function denyAll(address?: string): AccessPolicy {
  return {
    agent: { who: 'unauthenticated', address },
    require: (type) => {
      throw new FhirError(403, [issue('forbidden', `No access to ${type}`)]);
    },
    visible: () => null,
    canSee: () => false,
    canWrite: () => false,
  };
}
