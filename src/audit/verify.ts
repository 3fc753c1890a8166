import type { Request, Response } from 'express';
import type { AuditEvent, Parameters, ParametersParameter } from 'fhir/r4';
import { accessOf } from '../auth/policy';
import { sendJson } from '../http/respond';
import type { Collection } from '../store/backend';
import { GENESIS, hashOf, linkOf, type ChainBreak, type VerifyResult } from './chain';
import { AUDIT_TYPE, type AuditDoc } from './documents';
import { noteAccess } from './note';

export type { ChainBreak, VerifyResult };

/**
 * Walks AuditEvent documents (the MongoDB store's audit log) in chain order, from the first event
 * to the last, and reports the first place where it does not hold: an event whose content no
 * longer matches its hash, one that does not link to its predecessor, a missing (deleted) sequence
 * number, or a log that ends before the anchored head (events removed from the tail). Events after
 * the anchored head are the newest ones, written before the head was moved past them.
 */
export async function verifyDocuments(
  events: Collection<AuditDoc>,
  head: { seq: number; hash: string },
): Promise<VerifyResult> {
  const docs = events.stream({}, { sort: { seq: 1 } });
  let expected = 1;
  let previous = GENESIS;
  let checked = 0;
  const fail = (b: ChainBreak): VerifyResult => ({ ok: false, checked, head, break: b });
  for await (const doc of docs) {
    if (typeof doc.seq !== 'number' || doc.seq !== expected) {
      // A lower or repeated number is a copy or a renumbered event; a higher one means events are missing.
      return fail(
        typeof doc.seq === 'number' && doc.seq > expected
          ? { sequence: expected, reason: `AuditEvent number ${expected} is missing (deleted from the log)` }
          : { sequence: expected, id: doc._id, reason: `AuditEvent ${doc._id} is out of place in the chain` },
      );
    }
    const event = doc.resource as AuditEvent | null;
    if (doc.deleted || !event || event.resourceType !== AUDIT_TYPE)
      return fail({ sequence: expected, id: doc._id, reason: `AuditEvent ${doc._id} was deleted` });
    const link = linkOf(event);
    if (!link || link.sequence !== expected)
      return fail({ sequence: expected, id: doc._id, reason: `AuditEvent ${doc._id} lost its chain link` });
    if (link.previous !== previous)
      return fail({
        sequence: expected,
        id: doc._id,
        reason: `AuditEvent ${doc._id} does not link to the event before it`,
      });
    if (hashOf(event, expected, previous) !== link.hash)
      return fail({
        sequence: expected,
        id: doc._id,
        reason: `AuditEvent ${doc._id} was altered: its content does not match its hash`,
      });
    if (expected === head.seq && link.hash !== head.hash)
      return fail({
        sequence: expected,
        id: doc._id,
        reason: `AuditEvent ${doc._id} does not match the anchored chain head`,
      });
    previous = link.hash;
    expected += 1;
    checked += 1;
  }
  if (checked < head.seq)
    return fail({ sequence: expected, reason: `AuditEvents ${expected} to ${head.seq} are missing` });
  return { ok: true, checked, head };
}

export function verifyResultParameters(r: VerifyResult): Parameters {
  const parameter: ParametersParameter[] = [
    { name: 'result', valueBoolean: r.ok },
    { name: 'checked', valueInteger: r.checked },
    {
      name: 'head',
      part: [
        { name: 'sequence', valueString: String(r.head.seq) },
        { name: 'hash', valueString: r.head.hash },
      ],
    },
  ];
  if (r.break) {
    const part: ParametersParameter[] = [{ name: 'sequence', valueString: String(r.break.sequence) }];
    if (r.break.id) part.push({ name: 'id', valueId: r.break.id });
    part.push({ name: 'reason', valueString: r.break.reason });
    parameter.push({ name: 'break', part });
  }
  return { resourceType: 'Parameters', parameter };
}

/** GET or POST [base]/AuditEvent/$verify: a Parameters resource with result, checked, head and the first break. */
export function verifyHandler(audit: { verify(): Promise<VerifyResult> }) {
  return async (req: Request, res: Response): Promise<void> => {
    noteAccess(res, { interaction: 'operation', operation: 'verify', resourceType: AUDIT_TYPE });
    accessOf(res).require(AUDIT_TYPE, 'r');
    const r = await audit.verify();
    sendJson(req, res, 200, verifyResultParameters(r));
  };
}
