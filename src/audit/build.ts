import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding } from 'fhir/r4';
import type { Agent } from '../auth/policy';
import { immutable } from './chain';
import type { AuditNote, InteractionCode } from './note';

/**
 * AuditEvent for one access, following the IHE Basic Audit Log Patterns (BALP, RESTful
 * activity): type rest, subtype the interaction, action, outcome from the HTTP status, the
 * requestor (and the client application when it is known), this server as the destination and
 * observer, and entities for the resource (with version), each patient concerned, the query of a
 * search (base64) and the X-Request-Id. https://profiles.ihe.net/ITI/BALP/
 */
export interface AuditFacts {
  note: AuditNote;
  status: number;
  agent: Agent;
  requestId: string;
  /** ISO instant. */
  recorded: string;
  /** AUDIT_SOURCE. */
  source: string;
  /** The error message of a failed request (its OperationOutcome diagnostics). */
  outcomeText?: string;
}

const EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const SECURITY_ROLE = 'http://terminology.hl7.org/CodeSystem/extra-security-role-type';
const BALP_ENTITY = 'http://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';

/** restful-interaction has no code for compartment searches: they are type searches in a compartment. */
const SUBTYPE_CODE: Record<InteractionCode, string> = {
  read: 'read',
  vread: 'vread',
  update: 'update',
  patch: 'patch',
  delete: 'delete',
  'history-instance': 'history-instance',
  'history-type': 'history-type',
  'history-system': 'history-system',
  create: 'create',
  'search-type': 'search-type',
  'search-system': 'search-system',
  'search-compartment': 'search-type',
  capabilities: 'capabilities',
  batch: 'batch',
  transaction: 'transaction',
  operation: 'operation',
};

function coding(system: string, code: string, display?: string): Coding {
  return display === undefined ? { system, code } : { system, code, display };
}

// The codings below are the same in every AuditEvent: built once, frozen, and shared by the events,
// with their canonical JSON for the hash chain computed once (chain.ts).
const SUBTYPE = Object.fromEntries(
  Object.entries(SUBTYPE_CODE).map(([i, code]) => [i, immutable(coding(INTERACTION, code))]),
) as Record<InteractionCode, Coding>;
const REST = immutable(coding(EVENT_TYPE, 'rest', 'Restful Operation'));
const HUMAN_USER = immutable(coding(SECURITY_ROLE, 'humanuser', 'human user'));
const SOURCE_ROLE = immutable(coding(DCM, '110153', 'Source Role ID'));
const DESTINATION_ROLE = immutable(coding(DCM, '110152', 'Destination Role ID'));
const SYSTEM_OBJECT = immutable(coding(ENTITY_TYPE, '2', 'System Object'));
const PERSON = immutable(coding(ENTITY_TYPE, '1', 'Person'));
const DOMAIN_RESOURCE = immutable(coding(OBJECT_ROLE, '4', 'Domain Resource'));
const PATIENT_ROLE = immutable(coding(OBJECT_ROLE, '1', 'Patient'));
const QUERY_ROLE = immutable(coding(OBJECT_ROLE, '24', 'Query'));
const X_REQUEST_ID = immutable(coding(BALP_ENTITY, 'XrequestId', 'X-Request-Id'));

/** The parts that depend on AUDIT_SOURCE only (this server as destination and observer). */
interface SourceBlocks {
  destination: AuditEventAgent;
  source: AuditEvent['source'];
}
let bySource: { source: string; blocks: SourceBlocks } | undefined;

function sourceBlocks(source: string): SourceBlocks {
  if (bySource?.source !== source) {
    bySource = {
      source,
      blocks: {
        destination: immutable({
          type: { coding: [DESTINATION_ROLE] },
          who: { identifier: { value: source }, display: source },
          requestor: false,
          network: { address: source, type: '1' },
        }),
        source: immutable({
          site: source,
          observer: { identifier: { value: source }, display: source },
          type: [coding(SOURCE_TYPE, '4', 'Application Server')],
        }),
      },
    };
  }
  return bySource.blocks;
}

/** C R U D E (audit-event-action); searches and whole-type or system history are queries: E. */
export function actionOf(interaction: InteractionCode): NonNullable<AuditEvent['action']> {
  switch (interaction) {
    case 'create':
      return 'C';
    case 'read':
    case 'vread':
    case 'history-instance':
    case 'capabilities':
      return 'R';
    case 'update':
    case 'patch':
      return 'U';
    case 'delete':
      return 'D';
    default:
      return 'E';
  }
}

/** 0 success (2xx, 3xx), 4 minor failure (4xx: the client's), 8 serious failure (5xx: the server's). */
export function outcomeOf(status: number): NonNullable<AuditEvent['outcome']> {
  if (status >= 500) return '8';
  if (status >= 400) return '4';
  return '0';
}

function agents(a: Agent, source: string): AuditEventAgent[] {
  const user: AuditEventAgent = {
    type: {
      coding: [a.fhirUser ? HUMAN_USER : SOURCE_ROLE],
    },
    who: {
      identifier: { value: a.who },
      display: a.who,
      ...(a.fhirUser ? { reference: a.fhirUser } : {}),
    },
    name: a.who,
    requestor: true,
  };
  if (a.address) user.network = { address: a.address, type: '2' };
  const out = [user];
  if (a.clientId && a.clientId !== a.who) {
    const client: AuditEventAgent = {
      type: { coding: [SOURCE_ROLE] },
      who: { identifier: { value: a.clientId }, display: a.clientId },
      requestor: false,
    };
    if (a.address) client.network = { address: a.address, type: '2' };
    out.push(client);
  }
  out.push(sourceBlocks(source).destination);
  return out;
}

function entities(f: AuditFacts): AuditEventEntity[] {
  const n = f.note;
  const out: AuditEventEntity[] = [];
  const refs = entityReferences(n);
  if (refs.resource !== undefined) {
    out.push({
      what: { reference: refs.resource },
      type: SYSTEM_OBJECT,
      role: DOMAIN_RESOURCE,
    });
  }
  for (const reference of refs.patients) {
    out.push({
      what: { reference },
      type: PERSON,
      role: PATIENT_ROLE,
    });
  }
  // Operations that select data ($everything, ViewDefinition $run) name their query and count too.
  if (n.query && (isQuery(n.interaction) || n.interaction === 'operation')) {
    const q: AuditEventEntity = {
      type: SYSTEM_OBJECT,
      role: QUERY_ROLE,
      query: Buffer.from(n.query, 'utf8').toString('base64'),
    };
    if (n.resourceType) q.description = n.resourceType;
    if (n.count !== undefined) q.detail = [{ type: 'resultCount', valueString: String(n.count) }];
    out.push(q);
  }
  out.push({
    what: { identifier: { value: f.requestId } },
    type: X_REQUEST_ID,
  });
  return out;
}

function isQuery(i: InteractionCode): boolean {
  return (
    i.startsWith('search') || i.startsWith('history') || i === 'update' || i === 'patch' || i === 'delete'
  );
}

/** The subtype codes of an access: the interaction, and the operation (`$name`) of an operation. */
export function subtypeCodes(n: AuditNote): string[] {
  const interaction = SUBTYPE_CODE[n.interaction];
  return n.interaction === 'operation' && n.operation ? [interaction, `$${n.operation}`] : [interaction];
}

/** The literal references of the resource and the patients an access concerns, as its entities name them. */
export function entityReferences(n: AuditNote): { resource?: string; patients: string[] } {
  const patients = new Set(n.patients ?? []);
  // An attempt on a Patient record concerns that patient even when it failed (404, 403).
  if (n.resourceType === 'Patient' && n.id) patients.add(n.id);
  const out: { resource?: string; patients: string[] } = {
    patients: [...patients].map((p) => `Patient/${p}`),
  };
  if (n.resourceType && n.id)
    out.resource = `${n.resourceType}/${n.id}${n.versionId !== undefined ? `/_history/${n.versionId}` : ''}`;
  return out;
}

export function buildAuditEvent(f: AuditFacts): AuditEvent {
  const n = f.note;
  const subtype: Coding[] = [SUBTYPE[n.interaction]];
  if (n.interaction === 'operation' && n.operation) {
    subtype.push({ code: `$${n.operation}`, display: `$${n.operation}` });
  }
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    type: REST,
    subtype,
    action: actionOf(n.interaction),
    recorded: f.recorded,
    outcome: outcomeOf(f.status),
    outcomeDesc:
      f.outcomeText !== undefined ? `HTTP ${f.status}: ${f.outcomeText.slice(0, 1000)}` : `HTTP ${f.status}`,
    agent: agents(f.agent, f.source),
    source: sourceBlocks(f.source).source,
    entity: entities(f),
  };
  return event;
}
