import { randomUUID } from 'node:crypto';
import type { Meta, Resource } from 'fhir/r4';
import { conflict, notFound, preconditionFailed, unavailable } from '../fhir/errors';
import {
  isDuplicateKeyError,
  StorageUnavailableError,
  WriteConflictError,
  type Backend,
  type Collection,
  type Filter,
  type FindOptions,
  type IndexSpec,
  type Session,
} from './backend';
import { HISTORY_COLLECTION, type CurrentDoc, type HistoryDoc, type HistoryMethod } from './documents';

/** Turns a resource into its normalised search values (search/extract.ts). */
export interface IndexExtractor {
  /** The index of a resource; with `only`, just those search parameters. */
  extract(resource: Resource, only?: readonly string[]): Record<string, unknown>;
  /** What a type's index is extracted from (changes when its search parameters do); undefined: not a type. */
  fingerprint?(type: string): string | undefined;
}

/** The fingerprint a type's stored indexes were extracted under (collection `index_state`). */
interface IndexState {
  _id: string;
  fingerprint: string;
}

/** Documents re-extracted per write while rebuilding a type's indexes. */
const REINDEX_BATCH = 500;

export interface StoreDeps {
  backend: Backend;
  extractor: IndexExtractor;
  now?: () => Date;
  newId?: () => string;
  /** Compound indexes for a type's hot search paths, created on MongoDB (search/indexes.ts). */
  searchIndexes?: (type: string) => IndexSpec[];
}

export interface WriteResult {
  resource: Resource;
  versionId: number;
  lastUpdated: string;
  /** True when the write created the resource (201), false when it updated one (200). */
  created: boolean;
  /** The search index extracted from the new version. */
  idx: Record<string, unknown>;
}

export interface DeleteResult {
  /** The tombstone's version, or undefined when there was nothing live to delete. */
  versionId?: number;
  /** The version that was deleted. */
  before?: CurrentDoc;
}

export interface HistoryQuery {
  type?: string;
  id?: string;
  /** Only versions with lastUpdated >= since (inclusive, as the spec says). */
  since?: string;
  /** Only versions current at this instant: lastUpdated <= at, latest per resource. */
  at?: string;
  /** A fixed upper bound that keeps paging stable while writes go on. */
  till?: string;
  count: number;
  offset: number;
}

/** Thrown inside a write when the version it was based on changed; the write is retried. */
class VersionMoved extends Error {}

const MAX_RETRIES = 20;

/**
 * The one store of FHIR resources, over the MongoDB Db/Collection API (driver or embedded engine).
 *
 * Layout: one collection per resource type holding the current version (or a tombstone), and one
 * `history` collection holding every version. Each write puts the new history version and the
 * new current document in one transaction; the current document is replaced only if its
 * versionId is still the one read (optimistic concurrency), so two writers never lose one.
 */
export class ResourceStore {
  readonly backend: Backend;
  private readonly extractor: IndexExtractor;
  private readonly now: () => Date;
  private readonly newId: () => string;
  private readonly searchIndexes: ((type: string) => IndexSpec[]) | undefined;
  private readonly history: Collection<HistoryDoc>;
  private readonly guards: Collection<{ _id: string; type: string; resourceId: string }>;
  private readonly indexedTypes = new Set<string>();
  private readonly indexState: Collection<IndexState>;

  constructor(deps: StoreDeps) {
    this.backend = deps.backend;
    this.extractor = deps.extractor;
    this.now = deps.now ?? (() => new Date());
    this.newId = deps.newId ?? randomUUID;
    this.searchIndexes = deps.searchIndexes;
    this.history = this.backend.collection<HistoryDoc>(HISTORY_COLLECTION);
    this.guards = this.backend.collection('conditional_create');
    this.indexState = this.backend.collection<IndexState>('index_state');
  }

  /**
   * Rebuilds the stored search indexes of every type whose fingerprint differs from the one they
   * were extracted under (or was never recorded: a store from before fingerprints), then records
   * the new one. Runs at start, before requests are served; a crash part-way leaves the old
   * fingerprint, so the next start does it again. `skip`: types whose documents are not rewritten
   * (AuditEvent records). Returns what was rebuilt.
   */
  async reindexStale(skip: readonly string[] = []): Promise<Array<{ type: string; resources: number }>> {
    const fingerprint = this.extractor.fingerprint?.bind(this.extractor);
    if (!fingerprint) return [];
    const recorded = new Map((await this.indexState.find({})).map((d) => [d._id, d.fingerprint]));
    const rebuilt: Array<{ type: string; resources: number }> = [];
    for (const type of (await this.backend.listCollections()).sort()) {
      const now = skip.includes(type) ? undefined : fingerprint(type);
      if (now === undefined || recorded.get(type) === now) continue;
      let resources = 0;
      let after = '';
      for (;;) {
        const page = await this.current(type).find(
          { deleted: false, _id: { $gt: after } },
          { sort: { _id: 1 }, limit: REINDEX_BATCH },
        );
        if (page.length === 0) break;
        await this.atomically(async (s) => {
          for (const d of page) {
            if (!d.resource) continue;
            // Guarded by the version read: a document that moved meanwhile was indexed by its writer.
            await this.current(type).replaceOne(
              { _id: d._id, versionId: d.versionId },
              { ...d, idx: this.extractor.extract(d.resource) },
              { session: s },
            );
          }
        });
        resources += page.length;
        after = (page[page.length - 1] as CurrentDoc)._id;
      }
      await this.recordFingerprint(type, now);
      rebuilt.push({ type, resources });
    }
    return rebuilt;
  }

  private async recordFingerprint(type: string, fingerprint: string): Promise<void> {
    await this.indexState.replaceOne({ _id: type }, { _id: type, fingerprint }, { upsert: true });
  }

  async init(): Promise<void> {
    await this.history.createIndex({ name: 'id_1', key: { id: 1 } });
    await this.history.createIndex({ name: 'type_1', key: { type: 1 } });
    await this.history.createIndex({ name: 'lastUpdated_1', key: { lastUpdated: 1 } });
  }

  current(type: string): Collection<CurrentDoc> {
    return this.backend.collection<CurrentDoc>(type);
  }

  /** The indexes every resource type's collection has (search, _lastUpdated, MongoDB hot paths). */
  async ensureIndexes(type: string): Promise<void> {
    if (this.indexedTypes.has(type)) return;
    const c = this.current(type);
    await c.createIndex({ name: 'idx_wildcard', key: { 'idx.$**': 1 } });
    await c.createIndex({ name: 'lastUpdated_1', key: { lastUpdated: 1 } });
    // The embedded engine builds its own single-field indexes on first use; compound ones would only
    // cost it writes.
    if (this.backend.kind === 'mongodb')
      for (const spec of this.searchIndexes?.(type) ?? []) await c.createIndex(spec);
    // A type first written now is indexed under today's fingerprint (reindexStale ran at start).
    const fingerprint = this.extractor.fingerprint?.(type);
    if (fingerprint !== undefined && !(await this.indexState.findOne({ _id: type })))
      await this.recordFingerprint(type, fingerprint);
    this.indexedTypes.add(type);
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** The current document, a tombstone, or null when the id was never used. */
  async read(type: string, id: string, session?: Session): Promise<CurrentDoc | null> {
    return this.current(type).findOne({ _id: id }, { session });
  }

  async vread(type: string, id: string, versionId: number): Promise<HistoryDoc | null> {
    return this.history.findOne({ _id: historyId(type, id, versionId) });
  }

  /**
   * The resource as it was before it was deleted: the newest live version older than `versionId`.
   * Access checks on a tombstone use it (a tombstone has no content to check).
   */
  async lastLiveVersion(type: string, id: string, versionId: number): Promise<Resource | undefined> {
    const [h] = await this.history.find(
      { id, type, versionId: { $lt: versionId }, deleted: false },
      { sort: { versionId: -1 }, limit: 1 },
    );
    return h?.resource;
  }

  /** The search index of a resource (e.g. a history version, whose index is not stored). */
  indexOf(resource: Resource, only?: readonly string[]): Record<string, unknown> {
    return this.extractor.extract(resource, only);
  }

  async find(type: string, filter: Filter, options?: FindOptions): Promise<CurrentDoc[]> {
    return this.current(type).find(filter, options);
  }

  async count(type: string, filter: Filter, session?: Session): Promise<number> {
    return this.current(type).countDocuments(filter, { session });
  }

  /** Versions newest first, with the total for the Bundle. */
  async historyOf(q: HistoryQuery): Promise<{ entries: HistoryDoc[]; total: number }> {
    const filter: Filter = {};
    if (q.type) filter.type = q.type;
    if (q.id) filter.id = q.id;
    const lu: Record<string, string> = {};
    if (q.since) lu.$gte = q.since;
    if (q.till) lu.$lte = q.till;
    if (Object.keys(lu).length > 0) filter.lastUpdated = lu;
    if (q.at) {
      // The version of each resource that was current at `at`: the newest one not after it.
      const upTo = await this.history.find(
        { ...filter, lastUpdated: { ...lu, $lte: minIso(q.at, q.till) } },
        { sort: { type: 1, id: 1, versionId: -1 } },
      );
      const seen = new Set<string>();
      const picked = upTo.filter((h) => {
        const key = `${h.type}/${h.id}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      picked.sort(newestFirst);
      return { entries: picked.slice(q.offset, q.offset + q.count), total: picked.length };
    }
    const [entries, total] = await Promise.all([
      this.history.find(filter, { sort: { lastUpdated: -1, _id: -1 }, skip: q.offset, limit: q.count }),
      this.history.countDocuments(filter),
    ]);
    return { entries, total };
  }

  // ---- writes ---------------------------------------------------------------------------------

  /**
   * Runs `fn` atomically: inside the caller's session, in a new transaction, or, on a MongoDB
   * deployment without transactions, as ordered single-document writes (history first, then the
   * current document guarded by its version, so a crash in between leaves no visible change).
   */
  async atomically<R>(fn: (session?: Session) => Promise<R>, session?: Session): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      try {
        if (session) return await fn(session);
        if (this.backend.supportsTransactions) return await this.backend.withTransaction((s) => fn(s));
        return await fn(undefined);
      } catch (e) {
        const retryable = e instanceof VersionMoved || e instanceof WriteConflictError;
        if (retryable && !session && attempt < MAX_RETRIES) continue;
        if (retryable) throw conflict('The resource was changed concurrently; retry the request');
        if (e instanceof StorageUnavailableError) throw unavailable(e.message);
        throw e;
      }
    }
  }

  /** create: a new resource with a server-assigned id. */
  async create(type: string, resource: Resource, session?: Session): Promise<WriteResult> {
    const id = this.newId();
    await this.ensureIndexes(type);
    return this.atomically((s) => this.put(type, id, resource, 'POST', null, s), session);
  }

  /**
   * Conditional create: `criteria` finds the existing resources (search/ runs it). None: create
   * and remember the criteria in a guard document, so a concurrent create with the same criteria
   * conflicts at commit and, on retry, finds this one instead of creating a duplicate.
   */
  async createIfNoneExist(
    type: string,
    resource: Resource,
    guardKey: string,
    findMatches: (session?: Session) => Promise<string[]>,
    session?: Session,
    /** The id to create under (a transaction assigns ids before it writes); a new one by default. */
    newId?: string,
  ): Promise<WriteResult | { existing: CurrentDoc }> {
    await this.ensureIndexes(type);
    const key = `${type}?${guardKey}`;
    return this.atomically(async (s) => {
      const ids = await findMatches(s);
      if (ids.length > 1)
        throw preconditionFailed(
          `If-None-Exist criteria match ${ids.length} resources; expected at most one`,
        );
      if (ids.length === 1) {
        const existing = await this.read(type, ids[0] as string, s);
        if (existing && !existing.deleted) return { existing };
      }
      const id = newId ?? this.newId();
      const guard = { _id: key, type, resourceId: id };
      const old = await this.guards.findOne({ _id: key }, { session: s });
      try {
        if (old) {
          const r = await this.guards.replaceOne({ _id: key, resourceId: old.resourceId }, guard, {
            session: s,
          });
          if (r.matchedCount === 0) throw new VersionMoved();
        } else {
          await this.guards.insertOne(guard, { session: s });
        }
      } catch (e) {
        if (isDuplicateKeyError(e)) throw new VersionMoved();
        throw e;
      }
      return this.put(type, id, resource, 'POST', null, s);
    }, session);
  }

  /**
   * update (PUT): replaces the resource, creating it with the client's id when it does not exist.
   * `ifMatch` is the version the client based its change on (If-Match); a mismatch is 412.
   */
  async update(
    type: string,
    id: string,
    resource: Resource,
    options: { ifMatch?: number; method?: HistoryMethod; canReplace?: (current: Resource) => boolean } = {},
    session?: Session,
  ): Promise<WriteResult> {
    await this.ensureIndexes(type);
    return this.atomically(async (s) => {
      const cur = await this.read(type, id, s);
      // The caller may not see the current version: it must look as if it did not exist, and
      // must not be overwritten through update-as-create.
      if (cur?.resource && options.canReplace && !options.canReplace(cur.resource))
        throw notFound(`${type}/${id} does not exist`);
      if (options.ifMatch !== undefined) {
        if (!cur || cur.deleted) throw preconditionFailed(`If-Match given but ${type}/${id} does not exist`);
        if (cur.versionId !== options.ifMatch)
          throw preconditionFailed(
            `Version conflict: ${type}/${id} is at version ${cur.versionId}, If-Match says ${options.ifMatch}`,
          );
      }
      return this.put(type, id, resource, options.method ?? 'PUT', cur, s);
    }, session);
  }

  /**
   * A read-modify-write (patch): `change` gets the current resource and returns the new one. The
   * read and the write are one atomic unit; a concurrent writer makes it re-run on fresh data.
   */
  async modify(
    type: string,
    id: string,
    change: (current: Resource) => Resource | Promise<Resource>,
    options: { ifMatch?: number; method?: HistoryMethod } = {},
    session?: Session,
  ): Promise<WriteResult> {
    await this.ensureIndexes(type);
    return this.atomically(async (s) => {
      const cur = await this.read(type, id, s);
      if (!cur || cur.deleted || !cur.resource) throw notFound(`${type}/${id} does not exist`);
      if (options.ifMatch !== undefined && cur.versionId !== options.ifMatch)
        throw preconditionFailed(
          `Version conflict: ${type}/${id} is at version ${cur.versionId}, If-Match says ${options.ifMatch}`,
        );
      return this.put(type, id, await change(cur.resource), options.method ?? 'PATCH', cur, s);
    }, session);
  }

  /** delete: a tombstone version; later reads answer 410. Deleting nothing is a no-op. */
  async delete(
    type: string,
    id: string,
    options: { ifMatch?: number; canDelete?: (current: Resource) => boolean } = {},
    session?: Session,
  ): Promise<DeleteResult> {
    return this.atomically(async (s) => {
      const found = await this.read(type, id, s);
      // What the caller may not see is treated exactly like what does not exist: no version, no
      // error that would tell them it is there.
      const cur = found?.resource && options.canDelete && !options.canDelete(found.resource) ? null : found;
      if (options.ifMatch !== undefined && (!cur || cur.deleted || cur.versionId !== options.ifMatch)) {
        throw preconditionFailed(
          `Version conflict: If-Match does not name the current version of ${type}/${id}`,
        );
      }
      if (!cur || cur.deleted) return {};
      const versionId = cur.versionId + 1;
      const lastUpdated = this.timestamp(cur.lastUpdated);
      await this.writeVersion(
        type,
        { _id: id, versionId, lastUpdated, deleted: true, resource: null, idx: {} },
        {
          _id: historyId(type, id, versionId),
          type,
          id,
          versionId,
          lastUpdated,
          deleted: true,
          method: 'DELETE',
        },
        cur,
        s,
      );
      return { versionId, before: cur };
    }, session);
  }

  private async put(
    type: string,
    id: string,
    resource: Resource,
    method: HistoryMethod,
    cur: CurrentDoc | null,
    session: Session | undefined,
  ): Promise<WriteResult> {
    const versionId = (cur?.versionId ?? 0) + 1;
    const lastUpdated = this.timestamp(cur?.lastUpdated);
    const meta: Meta = { ...(resource.meta ?? {}), versionId: String(versionId), lastUpdated };
    const stored = { ...resource, id, meta } as Resource;
    const idx = this.extractor.extract(stored);
    await this.writeVersion(
      type,
      { _id: id, versionId, lastUpdated, deleted: false, resource: stored, idx },
      {
        _id: historyId(type, id, versionId),
        type,
        id,
        versionId,
        lastUpdated,
        deleted: false,
        method,
        resource: stored,
      },
      cur,
      session,
    );
    return { resource: stored, versionId, lastUpdated, created: !cur || cur.deleted, idx };
  }

  private async writeVersion(
    type: string,
    doc: CurrentDoc,
    version: HistoryDoc,
    cur: CurrentDoc | null,
    session: Session | undefined,
  ): Promise<void> {
    try {
      await this.history.insertOne(version, { session });
      if (cur) {
        const r = await this.current(type).replaceOne({ _id: doc._id, versionId: cur.versionId }, doc, {
          session,
        });
        if (r.matchedCount === 0) {
          if (!session) await this.history.deleteOne({ _id: version._id, lastUpdated: version.lastUpdated });
          throw new VersionMoved();
        }
      } else {
        await this.current(type).insertOne(doc, { session });
      }
    } catch (e) {
      if (isDuplicateKeyError(e)) throw new VersionMoved();
      throw e;
    }
  }

  /** Now, but never earlier than the previous version (clocks step back; history must not). */
  private timestamp(previous?: string): string {
    const now = this.now().toISOString();
    return previous && previous >= now ? new Date(Date.parse(previous) + 1).toISOString() : now;
  }
}

export function historyId(type: string, id: string, versionId: number): string {
  return `${type}/${id}/${versionId}`;
}

function newestFirst(a: HistoryDoc, b: HistoryDoc): number {
  return a.lastUpdated < b.lastUpdated ? 1 : a.lastUpdated > b.lastUpdated ? -1 : a._id < b._id ? 1 : -1;
}

function minIso(a: string, b?: string): string {
  return b !== undefined && b < a ? b : a;
}
