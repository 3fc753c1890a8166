import type { Resource } from 'fhir/r4';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/recorder';
import type { AccessPolicy } from '../auth/policy';
import type { Config } from '../config';
import type { DefinitionsRegistry } from '../fhir/definitions';
import type { Session } from '../store/backend';
import type { ResourceStore } from '../store/resource-store';

/** Finds resources by search parameters; search/ implements it (interactions/search.ts wires it). */
export interface Searcher {
  /**
   * Logical ids of live resources of `type` matching the parameters, at most `limit` of them.
   * Used for conditional create/update/delete and conditional references.
   */
  matchIds(
    type: string,
    params: Array<[string, string]>,
    limit: number,
    session?: Session,
    policy?: AccessPolicy,
  ): Promise<string[]>;
}

/**
 * Checks a resource before it is stored. Resolves to the resource to store (unchanged, or
 * normalised); rejects with a FhirError (400/422 with an OperationOutcome) when it is invalid.
 * validation/ implements it.
 */
export interface ResourceValidator {
  check(resource: Resource): Promise<Resource>;
}

/** Everything a handler needs, passed in (no singletons). */
export interface AppContext {
  config: Config;
  registry: DefinitionsRegistry;
  store: ResourceStore;
  searcher: Searcher;
  validator: ResourceValidator;
  /** Where every access is recorded (audit/recorder.ts): the audit log file, or AuditEvent documents. */
  audit: AuditSink;
  log: Logger;
}
