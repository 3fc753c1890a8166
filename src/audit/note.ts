import type { Response } from 'express';

/** The FHIR RESTful interaction codes (http://hl7.org/fhir/restful-interaction) plus operations. */
export type InteractionCode =
  | 'read'
  | 'vread'
  | 'update'
  | 'patch'
  | 'delete'
  | 'history-instance'
  | 'history-type'
  | 'history-system'
  | 'create'
  | 'search-type'
  | 'search-system'
  | 'search-compartment'
  | 'capabilities'
  | 'batch'
  | 'transaction'
  | 'operation';

/**
 * What a handler tells the audit recorder about the access it served: the interaction, the
 * resource (with version) or the query, and the patients whose records were touched. The audit
 * middleware turns it, the status and the agent into an AuditEvent before the response leaves.
 */
export interface AuditNote {
  interaction: InteractionCode;
  /** For interaction 'operation': the operation name without $, e.g. 'validate'. */
  operation?: string;
  resourceType?: string;
  id?: string;
  versionId?: number;
  /** The query string of a search or history (without the leading ?). */
  query?: string;
  /** Logical ids of the Patients whose compartment the accessed resources belong to. */
  patients?: string[];
  /** Number of resources returned (searches, history). */
  count?: number;
}

export function noteAccess(res: Response, note: Partial<AuditNote>): void {
  const prev = res.locals.audit as AuditNote | undefined;
  res.locals.audit = { ...(prev ?? { interaction: 'operation' }), ...note };
}

export function auditNoteOf(res: Response): AuditNote | undefined {
  return res.locals.audit as AuditNote | undefined;
}

/** One entry of a batch/transaction Bundle, as the Bundle handler notes it on res.locals.auditEntries. */
export interface AuditEntryNote extends Omit<AuditNote, 'count'> {
  status: number;
}
