import { randomUUID } from 'node:crypto';
import type { AuditEvent } from 'fhir/r4';
import type { Collection, Session } from '../store/backend';
import type { CurrentDoc, HistoryDoc } from '../store/documents';
import { HISTORY_COLLECTION } from '../store/documents';
import { historyId, type ResourceStore } from '../store/resource-store';
import { GENESIS, link } from './chain';

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

/** Events per write: one transaction, one journal record, one fsync. */
const MAX_BATCH = 256;

/**
 * The durable, hash-chained audit log. `record` resolves once the events are durable.
 *
 * Events are written in batches, one batch at a time: while a batch is being made durable, new
 * events queue; when it is, the queue becomes the next batch. Each batch is linked onto the chain
 * head (sequence numbers and hashes assigned in one place, in order) and written in one
 * transaction together with the new head. Because a batch starts only after the one before it is
 * durable, what survives a crash is always a prefix of the chain: there are never holes that
 * $verify would have to tell apart from deletions. Concurrent requests share the write (and its
 * fsync), so the cost per request shrinks as load grows.
 */
export class AuditRecorder {
  private queue: Pending[] = [];
  private writing = false;
  private head: { seq: number; hash: string } | undefined;
  private readonly events: Collection<AuditDoc>;
  private readonly history: Collection<HistoryDoc>;
  private readonly chain: Collection<ChainHead>;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly store: ResourceStore,
    private readonly newId: () => string = randomUUID,
  ) {
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
    this.pump();
    return Promise.all(done).then(() => undefined);
  }

  /** The durable chain head (sequence 0 and the genesis hash for an empty log). */
  async durableHead(): Promise<{ seq: number; hash: string }> {
    const h = await this.chain.findOne({ _id: 'head' });
    return h ? { seq: h.seq, hash: h.hash } : { seq: 0, hash: GENESIS };
  }

  private init(): Promise<void> {
    return (this.ready ??= (async () => {
      // The same indexes the ResourceStore gives every type, plus the chain order.
      await this.events.createIndex({ name: 'idx_wildcard', key: { 'idx.$**': 1 } });
      await this.events.createIndex({ name: 'lastUpdated_1', key: { lastUpdated: 1 } });
      await this.events.createIndex({ name: 'seq_1', key: { seq: 1 } });
      this.head = await this.durableHead();
    })().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    }));
  }

  private pump(): void {
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    const batch = this.queue.splice(0, MAX_BATCH);
    this.writeBatch(batch)
      .then(
        () => {
          for (const p of batch) p.resolve();
        },
        (e: unknown) => {
          for (const p of batch) p.reject(e);
        },
      )
      .finally(() => {
        this.writing = false;
        this.pump();
      });
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    await this.init();
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
      const idx = this.store.indexOf(resource);
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
    const head: ChainHead = { _id: 'head', seq, hash };
    const write = async (session?: Session): Promise<void> => {
      for (let i = 0; i < docs.length; i++) {
        await this.history.insertOne(versions[i] as HistoryDoc, { session });
        await this.events.insertOne(docs[i] as AuditDoc, { session });
      }
      // On a deployment without transactions the head goes last: a crash before it leaves events
      // after the head, which $verify reports as unanchored rather than silently accepting.
      await this.chain.replaceOne({ _id: 'head' }, head, { upsert: true, session });
    };
    if (this.store.backend.supportsTransactions) await this.store.backend.withTransaction(write);
    else await write();
    this.head = { seq, hash };
  }
}
