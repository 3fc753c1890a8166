import { randomUUID } from 'node:crypto';
import type { AuditEvent } from 'fhir/r4';
import type { Collection, Session } from '../store/backend';
import type { CurrentDoc, HistoryDoc } from '../store/documents';
import { HISTORY_COLLECTION } from '../store/documents';
import { historyId, type ResourceStore } from '../store/resource-store';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { IndexExtractor } from '../search/extract';
import { GENESIS, link, linkOf } from './chain';

export const AUDIT_TYPE = 'AuditEvent';
/** Holds one document, `head`: the sequence and hash of the last durable AuditEvent. */
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

interface Pending {
  event: AuditEvent;
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
 * The durable, hash-chained audit log. `record` resolves once the events are durable.
 *
 * Events that arrive in the same turn of the event loop form a batch. A batch is linked onto the
 * in-process chain head (sequence numbers and hashes are assigned in one place, in order) and
 * written together with the new head. What survives a crash must be a prefix of the chain, so
 * that $verify never has to tell a hole left by a crash from a deletion:
 * - on the embedded engine every write is applied and queued on its journal synchronously, in
 *   call order, and the journal is append-only with group commit, so batches are written as soon
 *   as they are assigned (the durable writes of several batches overlap and share fsyncs);
 * - on MongoDB, where concurrent writes are not ordered, a batch is written (in one transaction
 *   when the deployment has them) only after the one before it is durable.
 */
export class AuditRecorder {
  private queue: Pending[] = [];
  private scheduled = false;
  /** Serial mode (MongoDB): a batch is being made durable. */
  private writing = false;
  private head: { seq: number; hash: string } | undefined;
  private readonly ordered: boolean;
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
    this.ordered = store.backend.kind === 'embedded';
    this.events = store.backend.collection<AuditDoc>(AUDIT_TYPE);
    this.history = store.backend.collection<HistoryDoc>(HISTORY_COLLECTION);
    this.chain = store.backend.collection<ChainHead>(CHAIN_COLLECTION);
  }

  /** Resolves when every event is durable; rejects (and nothing is acknowledged) when the store fails. */
  record(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const done = events.map(
      (event) =>
        new Promise<void>((resolve, reject) => {
          this.queue.push({ event, resolve, reject });
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
    if (this.scheduled || this.queue.length === 0 || (!this.ordered && this.writing)) return;
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
    if (!this.ordered && this.writing) return;
    const batch = this.queue.splice(0, MAX_BATCH);
    if (batch.length === 0) return;
    this.writing = true;
    let durable: Promise<void>;
    try {
      const assigned = this.assign(batch);
      durable = this.ordered ? this.writeOrdered(assigned) : this.writeSerial(assigned);
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
    if (this.ordered) this.schedule();
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
      const linked = link({ ...p.event, id }, seq, hash);
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

  /**
   * Embedded engine: the batch is one transaction, so one journal record (in which the history copy
   * of each event is a back-reference to its current document) and one commit. The engine stages
   * session writes synchronously and the commit runs in the microtasks right after, before any
   * later batch is flushed (flushes run from setImmediate), so journal order is chain order.
   */
  private writeOrdered(a: Assigned): Promise<void> {
    return this.store.backend.withTransaction(async (session) => {
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < a.docs.length; i++) {
        writes.push(this.events.insertOne(a.docs[i] as AuditDoc, { session }));
        writes.push(this.history.insertOne(a.versions[i] as HistoryDoc, { session }));
      }
      writes.push(this.chain.replaceOne({ _id: 'head' }, a.head, { upsert: true, session }));
      await Promise.all(writes);
    });
  }

  private async writeSerial(a: Assigned): Promise<void> {
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

const recorders = new WeakMap<ResourceStore, AuditRecorder>();

/** The one recorder of a store: two would each keep a chain head and fork the chain. */
export function recorderFor(store: ResourceStore, registry: DefinitionsRegistry): AuditRecorder {
  let r = recorders.get(store);
  if (!r) {
    r = new AuditRecorder(store, registry);
    recorders.set(store, r);
  }
  return r;
}
