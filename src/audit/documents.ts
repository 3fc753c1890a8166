import type { CurrentDoc } from '../store/documents';

export const AUDIT_TYPE = 'AuditEvent';
/** Holds one document, `head`: the sequence and hash of the last durable AuditEvent (the anchor). */
export const CHAIN_COLLECTION = 'audit_chain';

/** An AuditEvent document: the ordinary current-version document plus its place in the chain. */
export interface AuditDoc extends CurrentDoc {
  seq: number;
}

export interface ChainHead {
  _id: 'head';
  seq: number;
  hash: string;
}
