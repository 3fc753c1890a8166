import type { CapabilityStatementRestResource, CapabilityStatementRestResourceOperation } from 'fhir/r4';

/** The audit operations, for the CapabilityStatement. */
export function auditOperations(type: string): CapabilityStatementRestResourceOperation[] {
  if (type === 'AuditEvent')
    return [
      {
        name: 'verify',
        definition: 'urn:fhir-r4-server:OperationDefinition/AuditEvent-verify',
        documentation:
          'GET or POST [base]/AuditEvent/$verify: walks the hash chain of the audit log and returns a Parameters ' +
          'resource with result, checked, head (sequence, hash) and the first break (sequence, id, reason).',
      },
    ];
  if (type === 'Patient')
    return [
      {
        name: 'access-report',
        definition: 'urn:fhir-r4-server:OperationDefinition/Patient-access-report',
        documentation:
          "GET [base]/Patient/[id]/$access-report?start=&end=: who accessed the patient's records, when and how, " +
          'from the audit log; a searchset Bundle of AuditEvents, or CSV with _format=csv or Accept: text/csv.',
      },
    ];
  return [];
}

/** AuditEvent is read-only over the API: read, vread, history and search, no writes. */
export function restrictAuditResource(r: CapabilityStatementRestResource): CapabilityStatementRestResource {
  if (r.type !== 'AuditEvent') return r;
  const writes = new Set(['create', 'update', 'patch', 'delete']);
  return {
    ...r,
    interaction: (r.interaction ?? []).filter((i) => !writes.has(i.code)),
    updateCreate: false,
    conditionalCreate: false,
    conditionalUpdate: false,
    conditionalDelete: 'not-supported',
    documentation:
      'The audit log (IHE BALP): one AuditEvent per interaction, hash-chained; written by the server only (405 for writes).',
  };
}
