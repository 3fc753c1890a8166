import type { AuditEvent, Reference } from 'fhir/r4';
import { str } from '../search/types/common';
import { entriesOfString, indexReference, type ReferenceEntry } from '../search/types/reference';
import { actionOf, entityReferences, outcomeOf, subtypeCodes, type AuditFacts } from './build';

/**
 * The search values of an AuditEvent that the embedded audit log keeps lookups for (posting lists,
 * store/embedded/record-log.ts), so that the searches auditors run (a patient's accesses, one
 * user's, one resource's, failures, deletes) read only the records they find.
 *
 * They are the values the search index (search/extract.ts) holds at these paths, computed without
 * FHIRPath from the elements the R4 SearchParameters select, with the same reference encoding
 * (types/reference.ts): from an AuditEvent (`auditPostings`), or, for the events this server
 * records, straight from the facts that build.ts renders into those elements (`factPostings`, on
 * every request). test/audit/postings.test.ts checks both against the extractor:
 * - patient: AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is Patient)
 * - entity: AuditEvent.entity.what;  agent: AuditEvent.agent.who
 * - action, outcome (code), subtype (Coding): their codes
 */
export const POSTED_PATHS: ReadonlySet<string> = new Set([
  'idx.patient.r',
  'idx.patient.i',
  'idx.entity.r',
  'idx.entity.i',
  'idx.agent.r',
  'idx.agent.i',
  'idx.agent.idf.v',
  'idx.action.c',
  'idx.outcome.c',
  'idx.subtype.c',
]);

export function postingKey(path: string, value: string): string {
  return `${path}\u0000${value}`;
}

function references(values: Array<Reference | undefined>): Array<{ type: string; data: unknown }> {
  const out: Array<{ type: string; data: unknown }> = [];
  for (const v of values) if (v !== undefined) out.push({ type: 'Reference', data: v });
  return out;
}

/** The posting keys of an AuditEvent (each once). */
export function auditPostings(event: AuditEvent, isResourceType: (t: string) => boolean): string[] {
  const keys = new Set<string>();
  const add = (code: string, entries: ReferenceEntry[], idf: boolean): void => {
    for (const e of entries) {
      if (e.r !== undefined) keys.add(postingKey(`idx.${code}.r`, e.r));
      if (e.i !== undefined) keys.add(postingKey(`idx.${code}.i`, e.i));
      if (idf && e.idf?.v !== undefined) keys.add(postingKey(`idx.${code}.idf.v`, e.idf.v));
    }
  };
  const who = references((event.agent ?? []).map((a) => a.who));
  const what = references((event.entity ?? []).map((e) => e.what));
  add('agent', indexReference(who, isResourceType), true);
  add('entity', indexReference(what, isResourceType), false);
  add('patient', indexReference([...who, ...what], isResourceType, 'Patient'), false);
  if (event.action !== undefined) keys.add(postingKey('idx.action.c', event.action));
  if (event.outcome !== undefined) keys.add(postingKey('idx.outcome.c', event.outcome));
  for (const c of event.subtype ?? [])
    if (c.code !== undefined) keys.add(postingKey('idx.subtype.c', c.code));
  return [...keys];
}

/**
 * The posting keys of the AuditEvent that build.ts makes of `f`, without making it: the agents'
 * `who` (the user's identifier and fhirUser reference, the client application's identifier, this
 * server's identifier), the entities' `what` (the resource and the patients), and the codes.
 */
export function factPostings(f: AuditFacts, isResourceType: (t: string) => boolean): string[] {
  const keys = new Set<string>();
  const identifier = (v: string | undefined): void => {
    const value = str(v);
    if (value !== undefined) keys.add(postingKey('idx.agent.idf.v', value));
  };
  const literal = (code: 'agent' | 'entity', reference: string): void => {
    for (const e of entriesOfString(reference, isResourceType)) {
      if (e.r === undefined || e.i === undefined) continue;
      keys.add(postingKey(`idx.${code}.r`, e.r));
      keys.add(postingKey(`idx.${code}.i`, e.i));
      if (e.t === 'Patient') {
        keys.add(postingKey('idx.patient.r', e.r));
        keys.add(postingKey('idx.patient.i', e.i));
      }
    }
  };
  const a = f.agent;
  identifier(a.who);
  if (a.fhirUser) literal('agent', a.fhirUser);
  if (a.clientId && a.clientId !== a.who) identifier(a.clientId);
  identifier(f.source);
  const refs = entityReferences(f.note);
  if (refs.resource !== undefined) literal('entity', refs.resource);
  for (const p of refs.patients) literal('entity', p);
  keys.add(postingKey('idx.action.c', actionOf(f.note.interaction)));
  keys.add(postingKey('idx.outcome.c', outcomeOf(f.status)));
  for (const c of subtypeCodes(f.note)) keys.add(postingKey('idx.subtype.c', c));
  return [...keys];
}
