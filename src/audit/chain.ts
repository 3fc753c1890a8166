import { createHash } from 'node:crypto';
import type { AuditEvent, Extension } from 'fhir/r4';

/**
 * Tamper evidence: every AuditEvent carries this extension with its place in the log (`sequence`,
 * 1, 2, 3, ...), the hash of the event before it (`previous`; 64 zeros for the first) and its own
 * `hash`: SHA-256 over the canonical JSON of the event (without `meta` and without the `hash`
 * sub-extension itself). Editing, removing or reordering a stored event breaks the chain at that
 * point; $verify walks it in sequence order and reports the first break.
 */
export const CHAIN_URL = 'urn:fhir-r4-server:audit-hash-chain';
export const GENESIS = '0'.repeat(64);

export interface ChainBreak {
  /** The sequence number where the chain stops holding. */
  sequence: number;
  /** The AuditEvent found there, when there is one. */
  id?: string;
  reason: string;
}

/** What $verify found: whether the chain holds, how many events it checked, and the anchored head. */
export interface VerifyResult {
  ok: boolean;
  checked: number;
  head: { seq: number; hash: string };
  break?: ChainBreak;
}

export interface ChainLink {
  sequence: number;
  previous: string;
  hash: string;
}

/** Canonical JSON of values that cannot change (see `immutable`), computed once. */
const canonicalOfImmutable = new WeakMap<object, string>();

/**
 * `value`, deep-frozen, with its canonical JSON remembered: the parts that are the same in every
 * AuditEvent (codings, this server's blocks) are serialised once, not for every event hashed.
 */
export function immutable<T extends object>(value: T): T {
  const freeze = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || Object.isFrozen(v)) return;
    for (const child of Object.values(v)) freeze(child);
    Object.freeze(v);
  };
  freeze(value);
  canonicalOfImmutable.set(value, canonicalJson(value));
  return value;
}

/** JSON with object keys sorted, so that the same content always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const known = canonicalOfImmutable.get(value);
  if (known !== undefined) return known;
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** The chain extension of an event: its sequence, the previous hash and (once known) its own. */
export function chainExtension(sequence: number, previous: string, hash?: string): Extension {
  const extension: Extension[] = [
    { url: 'sequence', valueString: String(sequence) },
    { url: 'previous', valueString: previous },
  ];
  if (hash !== undefined) extension.push({ url: 'hash', valueString: hash });
  return { url: CHAIN_URL, extension };
}

/** `event` without `meta` and without its chain extension. */
export function withoutChain(event: AuditEvent): AuditEvent {
  const { meta: _meta, extension, ...rest } = event;
  const others = (extension ?? []).filter((e) => e.url !== CHAIN_URL);
  return (others.length > 0 ? { ...rest, extension: others } : rest) as AuditEvent;
}

/** SHA-256 of `base` (an event without its chain link) carrying `chain` (the link without its hash). */
function digest(base: AuditEvent, chain: Extension): string {
  const content = { ...base, extension: [...(base.extension ?? []), chain] };
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/** The hash of `event` at `sequence` after `previous` (any chain extension it has is replaced). */
export function hashOf(event: AuditEvent, sequence: number, previous: string): string {
  return digest(withoutChain(event), chainExtension(sequence, previous));
}

/** `event` linked after `previous`: a copy carrying the chain extension with its hash. */
export function link(
  event: AuditEvent,
  sequence: number,
  previous: string,
): { event: AuditEvent; hash: string } {
  const base = withoutChain(event);
  const chain = chainExtension(sequence, previous);
  const hash = digest(base, chain);
  chain.extension?.push({ url: 'hash', valueString: hash });
  return { event: { ...base, extension: [...(base.extension ?? []), chain] }, hash };
}

/** The chain link an event claims to have, or undefined when it carries none (or a malformed one). */
export function linkOf(event: AuditEvent): ChainLink | undefined {
  const ext = event.extension?.find((e) => e.url === CHAIN_URL);
  if (!ext) return undefined;
  const part = (name: string): string | undefined => ext.extension?.find((e) => e.url === name)?.valueString;
  const sequence = Number(part('sequence'));
  const previous = part('previous');
  const hash = part('hash');
  if (!Number.isSafeInteger(sequence) || previous === undefined || hash === undefined) return undefined;
  return { sequence, previous, hash };
}
