import type { Response } from 'express';
import type { Resource } from 'fhir/r4';
import { FhirError } from '../fhir/errors';
import type { Filter } from '../store/backend';

/** SMART scope actions (v2 letters; v1 read = rs, write = cud). */
export type ScopeAction = 'c' | 'r' | 'u' | 'd' | 's';

/** Who is asking, as the AuditEvent agent will name them. */
export interface Agent {
  /** Stable identifier of the user or client (token `sub`, or 'anonymous'). */
  who: string;
  clientId?: string;
  fhirUser?: string;
  /** The patient in context (patient/ scopes), a logical id. */
  patient?: string;
  /** The client's network address. */
  address?: string;
  /**
   * The level of the token's scopes (SMART `patient/`, `user/`, `system/`); undefined when no
   * token is involved (AUTH=none). Bulk export at system level needs 'system' when set.
   */
  scopeLevel?: 'patient' | 'user' | 'system';
}

/**
 * What the caller may see and do. Every handler consults it: `require` before an interaction,
 * `visible` in every query of current documents (AND'ed in, so no search, include, chain or _has
 * can reach past it), `canSee` for versions read from history, `canWrite` before a write commits.
 * auth/ builds one per request from the bearer token; with AUTH=none the open policy applies.
 */
export interface AccessPolicy {
  readonly agent: Agent;
  /** Throws 403 (FhirError) when the interaction is not permitted on the type at all. */
  require(type: string, action: ScopeAction): void;
  /** A filter over current documents of `type` the caller may see; `{}` for all, null for none. */
  visible(type: string, action: ScopeAction): Filter | null;
  /** Whether the caller may see this resource (for history entries and single reads). */
  canSee(resource: Resource, action: ScopeAction): boolean;
  /** Whether the caller may write this resource (e.g. within its patient compartment). */
  canWrite(resource: Resource, action: ScopeAction): boolean;
}

/** AUTH=none: everything is permitted; the agent is anonymous. */
export function openAccess(address?: string): AccessPolicy {
  return {
    agent: { who: 'anonymous', address },
    require: () => undefined,
    visible: () => ({}),
    canSee: () => true,
    canWrite: () => true,
  };
}

/** The request's policy (set by the auth middleware), or the open policy. */
export function accessOf(res: Response): AccessPolicy {
  return (res.locals.access as AccessPolicy | undefined) ?? openAccess(res.req?.socket.remoteAddress);
}

/** `filter` restricted to what the policy lets the caller see; null when nothing is visible. */
export function restrict(
  filter: Filter,
  policy: AccessPolicy,
  type: string,
  action: ScopeAction,
): Filter | null {
  const v = policy.visible(type, action);
  if (v === null) return null;
  return Object.keys(v).length === 0 ? filter : { $and: [filter, v] };
}

/** Whether the policy lets the caller see every resource of `type` (no filter applies). */
export function seesEverything(policy: AccessPolicy, type: string, action: ScopeAction): boolean {
  const v = policy.visible(type, action);
  return v !== null && Object.keys(v).length === 0;
}

/** Whether `require(type, action)` passes, without throwing: for operations that skip what the token may not see. */
export function permits(policy: AccessPolicy, type: string, action: ScopeAction): boolean {
  try {
    policy.require(type, action);
    return true;
  } catch (e) {
    if (e instanceof FhirError) return false;
    throw e;
  }
}
