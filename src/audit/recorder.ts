import { randomUUID } from 'node:crypto';
import type { AuditEvent } from 'fhir/r4';
import type { Collection, Session } from '../store/backend';
import type { HistoryDoc } from '../store/documents';
import { HISTORY_COLLECTION } from '../store/documents';
import { historyId, type ResourceStore } from '../store/resource-store';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { IndexExtractor } from '../search/extract';
import { buildAuditEvent, type AuditFacts } from './build';
import { GENESIS, link, linkOf, type VerifyResult } from './chain';
import { AUDIT_TYPE, CHAIN_COLLECTION, type AuditDoc, type ChainHead } from './documents';
import type { AuditLog } from './log';
import { verifyDocuments } from './verify';

/** Where the audit middleware sends the facts of every access, and where $verify looks. */
export interface AuditSink {
  /** Resolves when every event is durable; rejects (and nothing is acknowledged) when the store fails. */
  record(facts: AuditFacts[]): Promise<void>;
  /** Walks the hash chain and reports the first break. */
  verify(): Promise<VerifyResult>;
}

/** The embedded store's recorder: every event is one line of the audit log (log.ts). */
export class AuditLogRecorder implements AuditSink {
  constructor(private readonly log: AuditLog) {}

  record(facts: AuditFacts[]): Promise<void> {
    // Appended at once, in order; the log's group commit batches the disk writes.
    return Promise.all(facts.map((f) => this.log.append(f))).then(() => undefined);
  }

  verify(): Promise<VerifyResult> {
    return this.log.verifyAnchored();
  }
}

interface Pending {
  facts: AuditFacts;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface Assigned {
  docs: AuditDoc[];
  versions: HistoryDoc[];
  head: ChainHead;
}

/** Events per batch at most. */
const MAX_BATCH = 256;

/**
 * The MongoDB store's recorder: AuditEvents as documents, hash-chained. `record` resolves once the
 * events are durable.
 *
 * Events that arrive in the same turn of the event loop form a batch. A batch is linked onto the
 * in-process chain head (sequence numbers and hashes are assigned in one place, in order) and
 * written together with the new head. What survives a crash must be a prefix of the chain, so
 * that $verify never has to tell a hole left by a crash from a deletion: concurrent MongoDB writes
 * are not ordered, so a batch is written (in one transaction when the deployment has them) only
 * after the one before it is durable. Any Backend works; the embedded store uses the log instead.
 */
export class AuditRecorder implements AuditSink {
  private queue: Pending[] = [];
  private scheduled = false;
  /** A batch is being made durable. */
  private writing = false;
  private head: { seq: number; hash: string } | undefined;
  private readonly extractor: IndexExtractor;
  private readonly events: Collection<AuditDoc>;
  private readonly history: Collection<HistoryDoc>;
  private readonly chain: Collection<ChainHead>;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly store: ResourceStore,
    registry: DefinitionsRegistry,
    private readonly newId: () => string = randomUUID,
  ) {
    // Every search parameter of AuditEvent, but no _text/_content full-text words: the audit log is
    // searched by its parameters, and the words would double the size of every record.
    this.extractor = new IndexExtractor(registry, { fullText: false });
    this.events = store.backend.collection<AuditDoc>(AUDIT_TYPE);
    this.history = store.backend.collection<HistoryDoc>(HISTORY_COLLECTION);
    this.chain = store.backend.collection<ChainHead>(CHAIN_COLLECTION);
  }

  /** Resolves when every event is durable; rejects (and nothing is acknowledged) when the store fails. */
  record(facts: AuditFacts[]): Promise<void> {
    if (facts.length === 0) return Promise.resolve();
    const done = facts.map(
      (f) =>
        new Promise<void>((resolve, reject) => {
          this.queue.push({ facts: f, resolve, reject });
        }),
    );
    this.schedule();
    return Promise.all(done).then(() => undefined);
  }

  /** The chain head as anchored in the store (sequence 0 and the genesis hash for an empty log). */
  async durableHead(): Promise<{ seq: number; hash: string }> {
    const h = await this.chain.findOne({ _id: 'head' });
    return h ? { seq: h.seq, hash: h.hash } : { seq: 0, hash: GENESIS };
  }

  async verify(): Promise<VerifyResult> {
    return verifyDocuments(this.events, await this.durableHead());
  }

  private init(): Promise<void> {
    return (this.ready ??= (async () => {
      // The same indexes the ResourceStore gives every type, plus the chain order.
      await this.store.ensureIndexes(AUDIT_TYPE);
      await this.events.createIndex({ name: 'seq_1', key: { seq: 1 } });
      const anchored = await this.durableHead();
      // Events after the anchored head are durable but were never acknowledged (a crash before the
      // head was written): the chain goes on after them.
      const [last] = await this.events.find({}, { sort: { seq: -1 }, limit: 1 });
      const link = last?.resource ? linkOf(last.resource as AuditEvent) : undefined;
      this.head = link && last && last.seq > anchored.seq ? { seq: last.seq, hash: link.hash } : anchored;
    })().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    }));
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.writing) return;
    this.scheduled = true;
    // One turn of the event loop lets the requests finishing together share a batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (!this.head) {
      try {
        await this.init();
      } catch (e) {
        for (const p of this.queue.splice(0)) p.reject(e);
        return;
      }
    }
    if (this.writing) return;
    const batch = this.queue.splice(0, MAX_BATCH);
    if (batch.length === 0) return;
    this.writing = true;
    let durable: Promise<void>;
    try {
      const assigned = this.assign(batch);
      durable = this.write(assigned);
    } catch (e) {
      durable = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    durable
      .then(
        () => {
          for (const p of batch) p.resolve();
        },
        (e: unknown) => {
          // Nothing of this batch (nor of any assigned after it) is durable: start again from
          // what the store holds.
          this.head = undefined;
          this.ready = undefined;
          for (const p of batch) p.reject(e);
        },
      )
      .finally(() => {
        this.writing = false;
        this.schedule();
      });
  }

  /** Links the batch onto the chain head and builds its documents (synchronously). */
  private assign(batch: Pending[]): Assigned {
    const start = this.head ?? { seq: 0, hash: GENESIS };
    let { seq, hash } = start;
    const docs: AuditDoc[] = [];
    const versions: HistoryDoc[] = [];
    for (const p of batch) {
      seq += 1;
      const id = this.newId();
      const lastUpdated = new Date().toISOString();
      const linked = link({ ...buildAuditEvent(p.facts), id }, seq, hash);
      hash = linked.hash;
      const { resourceType, ...rest } = linked.event;
      const resource: AuditEvent = { resourceType, id, meta: { versionId: '1', lastUpdated }, ...rest };
      const idx = this.extractor.extract(resource);
      docs.push({ _id: id, versionId: 1, lastUpdated, deleted: false, resource, idx, seq });
      versions.push({
        _id: historyId(AUDIT_TYPE, id, 1),
        type: AUDIT_TYPE,
        id,
        versionId: 1,
        lastUpdated,
        deleted: false,
        method: 'POST',
        resource,
      });
    }
    this.head = { seq, hash };
    return { docs, versions, head: { _id: 'head', seq, hash } };
  }

  private async write(a: Assigned): Promise<void> {
    const write = async (session?: Session): Promise<void> => {
      for (let i = 0; i < a.docs.length; i++) {
        await this.history.insertOne(a.versions[i] as HistoryDoc, { session });
        await this.events.insertOne(a.docs[i] as AuditDoc, { session });
      }
      // Without transactions the head goes last: a crash before it leaves events after the
      // anchored head, which init() continues from.
      await this.chain.replaceOne({ _id: 'head' }, a.head, { upsert: true, session });
    };
    if (this.store.backend.supportsTransactions) await this.store.backend.withTransaction(write);
    else await write();
  }
}

export { AUDIT_TYPE, CHAIN_COLLECTION };
export type { AuditDoc, ChainHead };
