import { hash as digest } from 'node:crypto';
import type { AuditEvent } from 'fhir/r4';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { IndexExtractor } from '../search/extract';
import type { Backend, Collection } from '../store/backend';
import type { HistoryDoc } from '../store/documents';
import { HISTORY_COLLECTION } from '../store/documents';
import { LogCollection, type LogView } from '../store/embedded/log-collection';
import { RecordLog } from '../store/embedded/record-log';
import type { Overlay } from '../store/overlay';
import { historyId } from '../store/resource-store';
import { buildAuditEvent, type AuditFacts } from './build';
import { chainExtension, GENESIS, withoutChain, type VerifyResult } from './chain';
import { AUDIT_TYPE, CHAIN_COLLECTION, type AuditDoc, type ChainHead } from './documents';
import { auditPostings, factPostings, POSTED_PATHS, postingKey } from './postings';

/**
 * One line of the audit log. The hash chain is over the lines themselves: `hash` is the SHA-256 of
 * the line up to it (the JSON of the other fields, in this order, closed with `}`), and `prev` is
 * the hash of the line before. What an auditor reads (the AuditEvent) is rendered from the line.
 */
export interface AuditRecord {
  seq: number;
  id: string;
  /** meta.lastUpdated: when the event was logged (never earlier than the event before it). */
  at: string;
  prev: string;
  /** An event of this server: buildAuditEvent renders it from these. */
  facts?: AuditFacts;
  /** An event moved from the document store of an earlier version, as it was stored there. */
  event?: AuditEvent;
  hash: string;
}

/** `,"hash":"<64 hex>"}` closes every line. */
const HASH_TAIL = 75;
const HASH_AT_END = /,"hash":"([0-9a-f]{64})"\}$/;
/** Ids of this log's events: the sequence number, zero-padded, so that id order is log order. */
const ID_DIGITS = 16;
const OWN_ID = /^\d{16}$/;

function sha256(s: string): string {
  return digest('sha256', s, 'hex');
}

/** How long the anchored chain head may lag behind the durable events (it is written once per period). */
const ANCHOR_MS = 100;

/** Only what an AuditEvent shows of the agent is kept (not the token's patient or scope level). */
function storedFacts(f: AuditFacts): AuditFacts {
  const { who, clientId, fhirUser, address } = f.agent;
  const agent: AuditFacts['agent'] = { who };
  if (clientId !== undefined) agent.clientId = clientId;
  if (fhirUser !== undefined) agent.fhirUser = fhirUser;
  if (address !== undefined) agent.address = address;
  const stored = { ...f, agent };
  // The AuditEvent shows the first 1000 characters of an error message (build.ts): keep no more.
  if (f.outcomeText !== undefined) stored.outcomeText = f.outcomeText.slice(0, 1000);
  return stored;
}

/** The AuditEvent a record stands for, with its chain link. */
export function renderRecord(r: AuditRecord): AuditEvent {
  const source = r.event ?? (r.facts ? buildAuditEvent(r.facts) : undefined);
  if (!source) throw new Error(`audit record ${r.seq} has neither facts nor an event`);
  const { resourceType: _t, id: _id, extension, ...rest } = withoutChain(source);
  return {
    resourceType: 'AuditEvent',
    id: r.id,
    meta: { versionId: '1', lastUpdated: r.at },
    ...rest,
    extension: [...(extension ?? []), chainExtension(r.seq, r.prev, r.hash)],
  };
}

/**
 * The audit log of the embedded store: an append-only, hash-chained file (DATA_DIR/audit.log) of
 * compact records, beside the engine rather than in it. Every request appends one line (a few
 * hundred bytes: the facts of the access, its posting keys and its link), made durable by group
 * commit, instead of an AuditEvent document with its search index, history copy, snapshot rewrites
 * and a place in memory for as long as the server runs. The AuditEvent collection and the
 * AuditEvent part of the history are read-only views of the file (`overlay`): AuditEvents are
 * read, searched, included and exported like any resource, materialized from their lines when asked
 * for; the searches auditors run are planned by posting lists kept in memory (about 200 bytes per event).
 */
export class AuditLog {
  /** The last event appended (durable or on its way). */
  private head = { seq: 0, hash: GENESIS, at: '' };
  /** The last event on disk. */
  private durable = { seq: 0, hash: GENESIS };
  /** Where the chain head is anchored (the engine's audit_chain), and what was written there last. */
  private anchors: Collection<ChainHead> | undefined;
  private anchored = 0;
  private anchorTimer: NodeJS.Timeout | undefined;
  private onAnchorError: (e: unknown) => void = () => undefined;
  /** Events moved from an earlier version's document store keep their ids. */
  private readonly legacy = new Map<string, number>();
  private readonly extractor: IndexExtractor;
  private readonly isResourceType: (t: string) => boolean;
  readonly events: LogCollection<AuditDoc>;
  readonly versions: LogCollection<HistoryDoc>;

  private constructor(
    private readonly log: RecordLog,
    registry: DefinitionsRegistry,
    private readonly now: () => Date,
  ) {
    // Every search parameter of AuditEvent, but no _text/_content full-text words.
    this.extractor = new IndexExtractor(registry, { fullText: false });
    this.isResourceType = (t) => registry.isResourceType(t);
    const recordOf = (id: string): number | undefined => (OWN_ID.test(id) ? Number(id) : this.legacy.get(id));
    const lastUpdated = {
      name: 'lastUpdated',
      toOrder: (v: unknown): number | undefined => {
        if (typeof v !== 'string') return undefined;
        const ms = Date.parse(v);
        // Only canonical instants compare as their times do (lastUpdated is always one).
        return Number.isFinite(ms) && new Date(ms).toISOString() === v ? ms : undefined;
      },
    };
    const posted = (path: string, value: string | number | boolean): string | undefined =>
      POSTED_PATHS.has(path) && typeof value === 'string' ? postingKey(path, value) : undefined;
    const events: LogView<AuditDoc> = {
      log,
      materialize: (json) => {
        const r = JSON.parse(json) as AuditRecord;
        const resource = renderRecord(r);
        return {
          _id: r.id,
          versionId: 1,
          lastUpdated: r.at,
          deleted: false,
          resource,
          idx: this.extractor.extract(resource),
          seq: r.seq,
        };
      },
      keyFields: { _id: recordOf },
      constants: { deleted: false, versionId: 1 },
      // No full-text words (fullText: false), and no meta.tag/security/profile/source on AuditEvents
      // of this server (nor on the ones an earlier version kept): a system-wide search for them
      // (GET [base]?_tag=...) does not read the whole log to find none.
      absent: ['idx._content', 'idx._text', 'idx._tag', 'idx._security', 'idx._profile', 'idx._source'],
      orderedFields: () =>
        new Map<string, 'unique' | 'ties'>([
          ['seq', 'unique'],
          ['lastUpdated', 'ties'],
          ...(this.legacy.size === 0 ? ([['_id', 'unique']] as const) : []),
        ]),
      orderField: lastUpdated,
      postingKey: posted,
    };
    const prefix = `${AUDIT_TYPE}/`;
    const versions: LogView<HistoryDoc> = {
      log,
      materialize: (json) => {
        const r = JSON.parse(json) as AuditRecord;
        return {
          _id: historyId(AUDIT_TYPE, r.id, 1),
          type: AUDIT_TYPE,
          id: r.id,
          versionId: 1,
          lastUpdated: r.at,
          deleted: false,
          method: 'POST',
          resource: renderRecord(r),
        };
      },
      keyFields: {
        _id: (v) =>
          v.startsWith(prefix) && v.endsWith('/1') ? recordOf(v.slice(prefix.length, -2)) : undefined,
        id: recordOf,
      },
      constants: { deleted: false, versionId: 1, type: AUDIT_TYPE, method: 'POST' },
      orderedFields: () =>
        new Map<string, 'unique' | 'ties'>([
          ['lastUpdated', 'ties'],
          ...(this.legacy.size === 0
            ? ([
                ['_id', 'unique'],
                ['id', 'unique'],
              ] as const)
            : []),
        ]),
      orderField: lastUpdated,
      postingKey: () => undefined,
    };
    this.events = new LogCollection(AUDIT_TYPE, events);
    this.versions = new LogCollection(HISTORY_COLLECTION, versions);
  }

  static async open(
    file: string,
    registry: DefinitionsRegistry,
    now: () => Date = () => new Date(),
  ): Promise<{ auditLog: AuditLog; tornTail: boolean }> {
    const found: Array<{ n: number; id: string; legacy: boolean }> = [];
    let head = { seq: 0, hash: GENESIS, at: '' };
    const isResourceType = (t: string): boolean => registry.isResourceType(t);
    const { log, tornTail } = await RecordLog.open(file, (json, n) => {
      const r = JSON.parse(json) as AuditRecord;
      found.push({ n, id: r.id, legacy: r.event !== undefined });
      head = { seq: r.seq, hash: r.hash, at: r.at };
      // Posting keys are not stored: they come from the facts (or the moved event), as when appended.
      const keys = r.facts
        ? factPostings(r.facts, isResourceType)
        : r.event
          ? auditPostings(r.event, isResourceType)
          : [];
      return { order: Date.parse(r.at), keys };
    });
    const self = new AuditLog(log, registry, now);
    self.head = head;
    self.durable = { seq: head.seq, hash: head.hash };
    for (const f of found) if (f.legacy) self.legacy.set(f.id, f.n);
    return { auditLog: self, tornTail };
  }

  /** Events in the log (durable ones). */
  get size(): number {
    return this.log.size;
  }

  /** The last event's place in the chain (including events on their way to the disk). */
  get chainHead(): { seq: number; hash: string } {
    return { seq: this.head.seq, hash: this.head.hash };
  }

  /**
   * Appends one event; resolves once it is durable. Sequence, id and hash are assigned now, in call
   * order, which is the order of the lines in the file.
   */
  append(facts: AuditFacts): Promise<{ seq: number; hash: string }> {
    const stored = storedFacts(facts);
    return this.appendRecord({ facts: stored }, factPostings(stored, this.isResourceType));
  }

  private appendRecord(
    content: { facts?: AuditFacts; event?: AuditEvent; id?: string; at?: string },
    k: string[],
  ): Promise<{ seq: number; hash: string }> {
    const seq = this.head.seq + 1;
    const id = content.id ?? String(seq).padStart(ID_DIGITS, '0');
    const now = content.at ?? this.now().toISOString();
    // Never earlier than the event before it: the log's order is its time order.
    const at = now < this.head.at ? this.head.at : now;
    const fields: Omit<AuditRecord, 'hash'> = {
      seq,
      id,
      at,
      prev: this.head.hash,
      ...(content.facts ? { facts: content.facts } : {}),
      ...(content.event ? { event: content.event } : {}),
    };
    const body = JSON.stringify(fields);
    const hash = sha256(body);
    const line = `${body.slice(0, -1)},"hash":"${hash}"}`;
    const previous = this.head;
    this.head = { seq, hash, at };
    if (content.event) this.legacy.set(id, seq);
    return this.log.append(line, { order: Date.parse(at), keys: k }).then(
      () => {
        if (seq > this.durable.seq) {
          this.durable = { seq, hash };
          this.scheduleAnchor();
        }
        return { seq, hash };
      },
      (e: unknown) => {
        // Nothing from this event on is on disk: the chain goes on from the last durable one.
        if (this.head.seq >= seq) this.head = previous;
        if (content.event) this.legacy.delete(id);
        throw e;
      },
    );
  }

  /** The read-only views of the log that the embedded backend serves (store/overlay.ts). */
  overlay(): Overlay {
    return {
      replace: { [AUDIT_TYPE]: this.events },
      extend: { [HISTORY_COLLECTION]: this.versions },
      nonEmpty: () => (this.log.size > 0 ? [AUDIT_TYPE] : []),
      close: () => this.close(),
    };
  }

  /**
   * Anchors the chain head in `anchors` (the engine's audit_chain collection) from now on: at most
   * once per ANCHOR_MS while events are logged, and at close. The anchor is a lower bound of the
   * log's length that lives in another file: lines cut from the end of the log are found missing.
   */
  anchorIn(anchors: Collection<ChainHead>, onError: (e: unknown) => void): void {
    this.anchors = anchors;
    this.onAnchorError = onError;
  }

  private scheduleAnchor(): void {
    if (!this.anchors || this.anchorTimer) return;
    this.anchorTimer = setTimeout(() => {
      this.anchorTimer = undefined;
      this.writeAnchor().catch(this.onAnchorError);
    }, ANCHOR_MS);
    this.anchorTimer.unref();
  }

  private async writeAnchor(): Promise<void> {
    const head = this.durable;
    if (!this.anchors || head.seq <= this.anchored) return;
    await this.anchors.replaceOne({ _id: 'head' }, { _id: 'head', ...head }, { upsert: true });
    this.anchored = Math.max(this.anchored, head.seq);
  }

  /** $verify against the later of the stored anchor and what this process knows is durable. */
  async verifyAnchored(): Promise<VerifyResult> {
    const stored = this.anchors ? await this.anchors.findOne({ _id: 'head' }) : null;
    const anchor = stored && stored.seq > this.durable.seq ? stored : this.durable;
    return this.verify({ seq: anchor.seq, hash: anchor.hash });
  }

  /** Waits for the events on their way, anchors the head, and closes the file. */
  async close(): Promise<void> {
    if (this.anchorTimer) clearTimeout(this.anchorTimer);
    this.anchorTimer = undefined;
    await this.log.drain();
    await this.writeAnchor().catch(this.onAnchorError);
    await this.log.close();
  }

  /** Waits until every appended event is durable (or failed). */
  drain(): Promise<void> {
    return this.log.drain();
  }

  /**
   * Walks the file as it is on disk, from the first line to the last, and reports the first place
   * where the chain does not hold: a damaged line, a line edited (its hash no longer matches), a
   * line that does not link to the one before, a missing or repeated sequence number, or a log
   * that ends before the anchored head (lines removed from the end).
   */
  async verify(anchor: { seq: number; hash: string } | undefined): Promise<VerifyResult> {
    const head = anchor ?? { seq: 0, hash: GENESIS };
    let expected = 1;
    let previous = GENESIS;
    let checked = 0;
    let found: VerifyResult['break'];
    await this.log.walkFile((payload) => {
      const fail = (reason: string, id?: string): boolean => {
        found = id === undefined ? { sequence: expected, reason } : { sequence: expected, id, reason };
        return false;
      };
      if (payload === undefined)
        return fail(`AuditEvent number ${expected} is damaged (its line fails its checksum)`);
      const tail = HASH_AT_END.exec(payload);
      let r: AuditRecord;
      try {
        r = JSON.parse(payload) as AuditRecord;
      } catch {
        return fail(`AuditEvent number ${expected} is damaged (its line is not JSON)`);
      }
      if (typeof r.seq !== 'number' || r.seq !== expected)
        return typeof r.seq === 'number' && r.seq > expected
          ? fail(`AuditEvent number ${expected} is missing (deleted from the log)`)
          : fail(`AuditEvent ${String(r.id)} is out of place in the chain`, r.id);
      if (!tail) return fail(`AuditEvent ${r.id} lost its chain link`, r.id);
      if (r.prev !== previous) return fail(`AuditEvent ${r.id} does not link to the event before it`, r.id);
      const body = `${payload.slice(0, payload.length - HASH_TAIL)}}`;
      if (sha256(body) !== tail[1])
        return fail(`AuditEvent ${r.id} was altered: its content does not match its hash`, r.id);
      if (expected === head.seq && tail[1] !== head.hash)
        return fail(`AuditEvent ${r.id} does not match the anchored chain head`, r.id);
      previous = tail[1] as string;
      expected += 1;
      checked += 1;
      return true;
    });
    if (found) return { ok: false, checked, head, break: found };
    if (checked < head.seq)
      return {
        ok: false,
        checked,
        head,
        break: { sequence: expected, reason: `AuditEvents ${expected} to ${head.seq} are missing` },
      };
    return { ok: true, checked, head };
  }

  /**
   * Moves the AuditEvents an earlier version kept as documents in the engine into the log, oldest
   * first, as they were stored (ids kept; chained anew), then removes the documents, their history
   * copies and the old chain head in one transaction. A crash in between is resumed: events already
   * in the log are not added twice. Returns how many were moved.
   */
  async migrateFrom(engine: Backend): Promise<number> {
    const old = engine.collection<AuditDoc>(AUDIT_TYPE);
    const docs = await old.find({}, { sort: { seq: 1 } });
    if (docs.length === 0) return 0;
    let moved = 0;
    for (const d of docs) {
      if (this.legacy.has(d._id) || !d.resource) continue;
      const event = d.resource as AuditEvent;
      void this.appendRecord(
        { event, id: d._id, at: d.lastUpdated },
        auditPostings(event, this.isResourceType),
      ).catch(() => undefined);
      moved++;
    }
    await this.log.drain();
    if (docs.some((d) => d.resource && !this.legacy.has(d._id)))
      throw new Error('the audit log could not take the AuditEvents of the document store');
    const history = engine.collection<HistoryDoc>(HISTORY_COLLECTION);
    const chain = engine.collection<ChainHead>(CHAIN_COLLECTION);
    await engine.withTransaction(async (session) => {
      for (const d of docs) {
        await old.deleteOne({ _id: d._id }, { session });
        await history.deleteOne({ _id: historyId(AUDIT_TYPE, d._id, 1) }, { session });
      }
      await chain.replaceOne({ _id: 'head' }, { _id: 'head', ...this.chainHead }, { upsert: true, session });
    });
    return moved;
  }
}
