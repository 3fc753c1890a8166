import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Query, update as applyUpdate } from 'mingo';
import {
  DuplicateKeyError,
  StorageUnavailableError,
  WriteConflictError,
  type Backend,
  type BaseDoc,
  type Collection,
  type Filter,
  type FindOptions,
  type IndexSpec,
  type Session,
  type Sort,
  type UpdateDoc,
  type UpdateResult,
  type WriteOptions,
} from '../backend';
import { decodeShared, SharedFieldWriter } from './dedupe';
import { deepFreeze } from './freeze';
import { candidateIds, exactCandidates, SecondaryIndex } from './indexes';
import { compileMatcher } from './matcher';
import { sortByScalarKeys } from './sort';
import { JournalWriter, fsyncDir, readJournal } from './journal';
import { readSnapshot, writeSnapshot } from './snapshot';

type Doc = BaseDoc & Record<string, unknown>;

/** Below this many documents a scan is as fast as an index: do not build one. */
const AUTO_INDEX_MIN = 64;

/** One write: the collection, the id, and the document after it (null: deleted). */
interface Op {
  c: string;
  id: string;
  doc: Doc | null;
}

/** A cached answer: the matching documents, and their orders for the sorts asked so far. */
interface CachedMatch {
  docs: Doc[];
  /** Full orders by sort (undefined: a sort field holds non-scalars). */
  sorted: Map<string, Doc[] | undefined>;
  /** Sorts whose first page was selected without a full sort. */
  selected: Set<string>;
}

/** Answers kept per collection, and the largest answer kept. */
const MATCH_CACHE_ENTRIES = 16;
const MATCH_CACHE_MAX_DOCS = 100_000;

class CollectionData {
  readonly docs = new Map<string, Doc>();
  /** Bumped on every change; the cached matches are of one version. */
  version = 0;
  /** Recent answers (filter -> matches), least recently used first, all of version `cachedVersion`. */
  readonly matches = new Map<string, CachedMatch>();
  cachedVersion = 0;
  constructor(readonly name: string) {}
  readonly indexes = new Map<string, SecondaryIndex>();
  /** Single-field indexes by field, for the planner. */
  readonly byField = new Map<string, SecondaryIndex>();

  addIndex(spec: IndexSpec): void {
    const existing = this.indexes.get(spec.name);
    if (existing) {
      if (JSON.stringify(existing.spec) !== JSON.stringify(spec))
        throw new Error(`index ${spec.name} exists with different options`);
      return;
    }
    // Wildcard indexes (MongoDB's `idx.$**`) only speed up a real server; the embedded engine
    // plans by single-field indexes and scans otherwise.
    if (Object.keys(spec.key).some((k) => k.includes('$**'))) return;
    const idx = new SecondaryIndex(spec);
    for (const [id, d] of this.docs) {
      const keys = idx.keys(d);
      const other = idx.conflict(keys, id);
      if (other !== undefined) throw new DuplicateKeyError('?', spec.name);
      idx.add(keys, id);
    }
    this.indexes.set(spec.name, idx);
    if (idx.fields.length === 1 && !spec.partialFilterExpression)
      this.byField.set(idx.fields[0] as string, idx);
  }
}

export interface EmbeddedOptions {
  dataDir: string;
  /**
   * Deep-freeze stored documents so that a caller mutating one fails loudly instead of silently
   * diverging from the journal. Costs a walk of every document written (about 5% of ingest time);
   * on by default, off when NODE_ENV=production (main.ts), like a development-mode assertion.
   */
  freeze?: boolean;
  /**
   * Paths with this prefix get a single-field index built the first time a query could use one
   * (equality, $in, or $elemMatch equality) on a collection of at least AUTO_INDEX_MIN documents.
   * The ResourceStore passes 'idx.' so token and reference searches never scan a whole type.
   */
  autoIndexPrefix?: string;
  /** Compact when the journal passes this many bytes (and is larger than the last snapshot). */
  compactBytes?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

class EmbeddedSession implements Session {
  readonly id = randomUUID();
  /** collection -> id -> document as this session sees it (null: deleted in the session). */
  readonly writes = new Map<string, Map<string, Doc | null>>();
  /** collection -> id -> the committed document the session's view was based on. */
  readonly base = new Map<string, Map<string, Doc | undefined>>();
  order: Array<[string, string]> = [];
}

/**
 * The default store: an in-process engine with the MongoDB Collection semantics the ResourceStore
 * uses (filters, sorts and updates evaluated by mingo), made durable by an fsync'd journal with
 * group commit, and kept fast to start by periodic snapshots (compaction).
 *
 * Writes apply to memory synchronously, then their journal record is queued; the caller's promise
 * resolves only when the record is on disk. If the disk refuses, every write not yet durable is
 * undone (newest first) and rejected, so memory never holds what the journal does not.
 */
export class EmbeddedBackend implements Backend {
  readonly kind = 'embedded' as const;
  readonly supportsTransactions = true;
  private readonly data = new Map<string, CollectionData>();
  private journal!: JournalWriter;
  private generation = 0;
  private compacting: Promise<void> | undefined;
  private readonly compactBytes: number;
  private readonly autoIndexPrefix: string | undefined;
  private readonly freeze: <T>(doc: T) => T;
  private readonly log: (msg: string, fields?: Record<string, unknown>) => void;
  private lockFile: string;
  private closed = false;

  private constructor(
    readonly dataDir: string,
    options: EmbeddedOptions,
  ) {
    this.compactBytes = options.compactBytes ?? 64 * 1024 * 1024;
    this.autoIndexPrefix = options.autoIndexPrefix;
    this.freeze = options.freeze === false ? (d) => d : deepFreeze;
    this.log = options.log ?? (() => undefined);
    this.lockFile = path.join(dataDir, 'LOCK');
  }

  static async open(options: EmbeddedOptions): Promise<EmbeddedBackend> {
    const b = new EmbeddedBackend(options.dataDir, options);
    await b.recover();
    return b;
  }

  // ---- recovery -------------------------------------------------------------------------------

  private takeLock(): void {
    fs.mkdirSync(this.dataDir, { recursive: true });
    try {
      fs.writeFileSync(this.lockFile, String(process.pid), { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(fs.readFileSync(this.lockFile, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new Error(`DATA_DIR ${this.dataDir} is in use by process ${pid}`);
      }
      fs.writeFileSync(this.lockFile, String(process.pid));
    }
  }

  private async recover(): Promise<void> {
    const started = Date.now();
    this.takeLock();
    const files = fs.readdirSync(this.dataDir);
    const gens = (prefix: string, suffix: string): number[] =>
      files
        .filter((f) => f.startsWith(prefix) && f.endsWith(suffix))
        .map((f) => Number(f.slice(prefix.length, f.length - suffix.length)))
        .filter((n) => Number.isInteger(n) && n >= 0)
        .sort((a, b) => a - b);
    // The newest complete snapshot wins; incomplete ones (a crash while writing) are removed.
    let snapGen = 0;
    let loadedDocs = 0;
    for (const g of gens('snapshot-', '.jsonl').reverse()) {
      const file = path.join(this.dataDir, `snapshot-${g}.jsonl`);
      const snap = readSnapshot(file);
      if (snap && snapGen === 0) {
        snapGen = g;
        // The size the next compaction is measured against (a restart must not compact at once).
        this.snapshotBytes = fs.statSync(file).size;
        for (const [c, doc] of snap) {
          this.coll(c).docs.set(doc._id, this.freeze(doc));
          loadedDocs++;
        }
      } else {
        fs.rmSync(file);
      }
    }
    for (const f of files) if (f.endsWith('.tmp')) fs.rmSync(path.join(this.dataDir, f), { force: true });
    const journals = gens('journal-', '.log');
    let replayed = 0;
    let torn = false;
    for (const g of journals) {
      const file = path.join(this.dataDir, `journal-${g}.log`);
      if (g < snapGen) {
        fs.rmSync(file);
        continue;
      }
      const j = readJournal(file, true);
      torn ||= j.torn;
      for (const rec of j.records) {
        const ops = JSON.parse(rec) as Array<[string, string, Doc | null]>;
        const docs: Array<Doc | null> = [];
        for (const [c, id, raw] of ops) {
          const doc = raw && this.freeze(decodeShared(raw, docs));
          docs.push(doc);
          if (doc) this.coll(c).docs.set(id, doc);
          else this.coll(c).docs.delete(id);
        }
        replayed++;
      }
    }
    this.generation = Math.max(snapGen, journals.length > 0 ? (journals[journals.length - 1] as number) : 0);
    this.journal = await JournalWriter.open(path.join(this.dataDir, `journal-${this.generation}.log`));
    await fsyncDir(this.dataDir);
    this.log('embedded store recovered', {
      dataDir: this.dataDir,
      snapshotDocs: loadedDocs,
      journalRecords: replayed,
      tornTailDropped: torn,
      ms: Date.now() - started,
    });
  }

  private coll(name: string): CollectionData {
    let c = this.data.get(name);
    if (!c) {
      c = new CollectionData(name);
      this.data.set(name, c);
    }
    return c;
  }

  // ---- Backend --------------------------------------------------------------------------------

  collection<T extends BaseDoc>(name: string): Collection<T> {
    return new EmbeddedCollection<T>(this, name);
  }

  async listCollections(): Promise<string[]> {
    return [...this.data.entries()].filter(([, c]) => c.docs.size > 0).map(([n]) => n);
  }

  async withTransaction<R>(fn: (session: Session) => Promise<R>): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const s = new EmbeddedSession();
      const result = await fn(s);
      try {
        await this.commit(s);
        return result;
      } catch (e) {
        if (e instanceof WriteConflictError && attempt < 20) continue;
        throw e;
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.compacting;
    await this.journal.close();
    fs.rmSync(this.lockFile, { force: true });
  }

  /** Waits for pending journal writes and any running compaction (tests, shutdown). */
  async flush(): Promise<void> {
    await this.journal.drain();
    await this.compacting;
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** The document `id` as the session (or the committed state) sees it. */
  getDoc(c: string, id: string, session?: Session): Doc | undefined {
    const s = session as EmbeddedSession | undefined;
    const w = s?.writes.get(c);
    if (w?.has(id)) return w.get(id) ?? undefined;
    const d = this.data.get(c)?.docs.get(id);
    if (s) {
      let b = s.base.get(c);
      if (!b) {
        b = new Map();
        s.base.set(c, b);
      }
      if (!b.has(id)) b.set(id, d);
    }
    return d;
  }

  matching(c: string, filter: Filter, session?: Session): Doc[] {
    const cd = this.data.get(c);
    const s = session as EmbeddedSession | undefined;
    const w = s?.writes.get(c);
    if (!w && cd) return this.cachedMatch(cd, filter).docs;
    return this.scan(cd, filter, w);
  }

  /**
   * The matches of `filter` in `sort` order (undefined when a sort field holds non-scalars), for
   * the first `keep` of them at least.
   */
  sortedMatching(c: string, filter: Filter, sort: Sort, keep: number, session?: Session): Doc[] | undefined {
    const cd = this.data.get(c);
    const w = (session as EmbeddedSession | undefined)?.writes.get(c);
    if (w || !cd) return sortByScalarKeys(this.scan(cd, filter, w), sort, keep);
    const hit = this.cachedMatch(cd, filter);
    const sortKey = JSON.stringify(sort);
    if (hit.sorted.has(sortKey)) return hit.sorted.get(sortKey);
    // A first page of a large answer is selected without sorting it all; an answer that is paged
    // further (asked again with the same sort) is sorted once and kept sorted.
    if (keep * 4 < hit.docs.length && !hit.selected.has(sortKey)) {
      hit.selected.add(sortKey);
      return sortByScalarKeys(hit.docs, sort, keep);
    }
    const sorted = sortByScalarKeys(hit.docs, sort);
    hit.sorted.set(sortKey, sorted);
    return sorted;
  }

  /**
   * Outside sessions, recent answers per collection are kept until the collection changes: a search
   * asks for the count and then a page with the same filter, clients page through an answer, and
   * the same searches come again (a ward's list, a dashboard). Any write to the collection drops
   * them all, so a cached answer is always the current one.
   */
  private cachedMatch(cd: CollectionData, filter: Filter): CachedMatch {
    if (cd.cachedVersion !== cd.version) {
      cd.matches.clear();
      cd.cachedVersion = cd.version;
    }
    const key = JSON.stringify(filter);
    const hit = cd.matches.get(key);
    if (hit) {
      cd.matches.delete(key);
      cd.matches.set(key, hit);
      return hit;
    }
    const entry: CachedMatch = {
      docs: this.scan(cd, filter, undefined),
      sorted: new Map(),
      selected: new Set(),
    };
    if (entry.docs.length <= MATCH_CACHE_MAX_DOCS) {
      if (cd.matches.size >= MATCH_CACHE_ENTRIES) cd.matches.delete(cd.matches.keys().next().value as string);
      cd.matches.set(key, entry);
    }
    return entry;
  }

  /** Compiled filters, most recently used last: compiling a mingo Query costs more than testing a few documents. */
  private readonly queries = new Map<string, { test(doc: Doc): boolean }>();

  /** A fast compiled predicate (matcher.ts) where the filter allows, mingo otherwise. */
  private compiled(filter: Filter): { test(doc: Doc): boolean } {
    const key = JSON.stringify(filter);
    let q = this.queries.get(key);
    if (q) {
      this.queries.delete(key);
    } else {
      const fast = compileMatcher(filter);
      q = fast ? { test: fast } : new Query(filter, {});
      if (this.queries.size >= 500) this.queries.delete(this.queries.keys().next().value as string);
    }
    this.queries.set(key, q);
    return q;
  }

  private scan(
    cd: CollectionData | undefined,
    filter: Filter,
    w: Map<string, Doc | null> | undefined,
  ): Doc[] {
    const q = this.compiled(filter);
    const out: Doc[] = [];
    const exact = cd ? exactCandidates(filter, (f) => this.indexFor(cd, f)) : undefined;
    if (exact && cd) {
      // The index decided one conjunct; the candidates need to pass only the others.
      const rest = exact.residual ? this.compiled(exact.residual) : undefined;
      for (const id of exact.ids) {
        if (w?.has(id)) continue;
        const d = cd.docs.get(id);
        if (d && (!rest || rest.test(d))) out.push(d);
      }
      if (w) for (const d of w.values()) if (d && q.test(d)) out.push(d);
      return out;
    }
    const cand = cd ? candidateIds(filter, (f) => this.indexFor(cd, f)) : undefined;
    if (cand) {
      for (const id of cand) {
        if (w?.has(id)) continue;
        const d = cd?.docs.get(id);
        if (d && q.test(d)) out.push(d);
      }
    } else if (cd) {
      for (const [id, d] of cd.docs) if (!w?.has(id) && q.test(d)) out.push(d);
    }
    if (w) for (const d of w.values()) if (d && q.test(d)) out.push(d);
    return out;
  }

  private indexFor(cd: CollectionData, field: string): SecondaryIndex | undefined {
    const existing = cd.byField.get(field);
    if (existing) return existing;
    if (!this.autoIndexPrefix || !field.startsWith(this.autoIndexPrefix) || cd.docs.size < AUTO_INDEX_MIN)
      return undefined;
    cd.addIndex({ name: `auto_${field}`, key: { [field]: 1 } });
    this.log('embedded store built an index', { collection: cd.name, field, docs: cd.docs.size });
    return cd.byField.get(field);
  }

  // ---- writes ---------------------------------------------------------------------------------

  /** Stages a write in the session, or commits it on its own. */
  async write(op: Op, session?: Session): Promise<void> {
    if (op.doc) this.freeze(op.doc);
    if (session) {
      const s = session as EmbeddedSession;
      this.getDoc(op.c, op.id, s); // records the base version for conflict detection
      let w = s.writes.get(op.c);
      if (!w) {
        w = new Map();
        s.writes.set(op.c, w);
      }
      if (!w.has(op.id)) s.order.push([op.c, op.id]);
      w.set(op.id, op.doc);
      // Unique indexes are checked now against committed data (a friendly early error) and again
      // at commit, when it counts.
      if (op.doc) this.checkUnique(op.c, op.doc, s);
      return;
    }
    const s = new EmbeddedSession();
    s.writes.set(op.c, new Map([[op.id, op.doc]]));
    s.base.set(op.c, new Map([[op.id, this.data.get(op.c)?.docs.get(op.id)]]));
    s.order.push([op.c, op.id]);
    await this.commit(s);
  }

  private checkUnique(c: string, doc: Doc, s: EmbeddedSession): void {
    const cd = this.data.get(c);
    if (!cd) return;
    for (const idx of cd.indexes.values()) {
      if (!idx.spec.unique) continue;
      const keys = idx.keys(doc);
      const other = idx.conflict(keys, doc._id);
      // A conflicting committed doc that the session itself rewrote or deleted does not count.
      if (other !== undefined && !s.writes.get(c)?.has(other)) throw new DuplicateKeyError(c, idx.spec.name);
    }
    const w = s.writes.get(c);
    if (w) {
      for (const idx of cd.indexes.values()) {
        if (!idx.spec.unique) continue;
        const keys = new Set(idx.keys(doc));
        for (const [id, d] of w) {
          if (id === doc._id || !d) continue;
          if (idx.keys(d).some((k) => keys.has(k))) throw new DuplicateKeyError(c, idx.spec.name);
        }
      }
    }
  }

  /**
   * Applies a session's writes atomically (synchronously, so nothing interleaves), then waits for
   * its single journal record to be durable.
   */
  private commit(s: EmbeddedSession): Promise<void> {
    if (this.closed) return Promise.reject(new StorageUnavailableError('store is closed'));
    if (s.order.length === 0) return Promise.resolve();
    // First committer wins: a document changed since the session first saw it is a conflict.
    for (const [c, id] of s.order) {
      const seen = s.base.get(c)?.get(id);
      if (this.data.get(c)?.docs.get(id) !== seen) return Promise.reject(new WriteConflictError());
    }
    const applied: Array<{ c: string; id: string; before: Doc | undefined }> = [];
    try {
      for (const [c, id] of s.order) {
        const doc = s.writes.get(c)?.get(id) ?? null;
        applied.push({ c, id, before: this.data.get(c)?.docs.get(id) });
        this.applyOne(c, id, doc);
      }
    } catch (e) {
      for (let i = applied.length - 1; i >= 0; i--) {
        const a = applied[i];
        if (a) this.applyOne(a.c, a.id, a.before ?? null);
      }
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const shared = new SharedFieldWriter();
    const record = JSON.stringify(
      s.order.map(([c, id], n) => {
        const doc = s.writes.get(c)?.get(id) ?? null;
        return [c, id, doc && shared.encode(n, doc)];
      }),
    );
    const undo = (): void => {
      for (let i = applied.length - 1; i >= 0; i--) {
        const a = applied[i];
        if (a) this.applyOne(a.c, a.id, a.before ?? null);
      }
    };
    return this.journal.append(record, undo).then(
      () => this.maybeCompact(),
      (e: unknown) => {
        const msg = e instanceof Error ? e.message : String(e);
        throw new StorageUnavailableError(`the store could not make the write durable: ${msg}`);
      },
    );
  }

  /** Puts (or deletes) one document and maintains indexes; throws DuplicateKeyError untouched. */
  private applyOne(c: string, id: string, doc: Doc | null): void {
    const cd = this.coll(c);
    const before = cd.docs.get(id);
    const beforeKeys = new Map<SecondaryIndex, string[]>();
    const afterKeys = new Map<SecondaryIndex, string[]>();
    for (const idx of cd.indexes.values()) {
      beforeKeys.set(idx, before ? idx.keys(before) : []);
      const keys = doc ? idx.keys(doc) : [];
      afterKeys.set(idx, keys);
      if (doc && idx.conflict(keys, id) !== undefined) throw new DuplicateKeyError(c, idx.spec.name);
    }
    for (const idx of cd.indexes.values()) {
      idx.remove(beforeKeys.get(idx) ?? [], id);
      idx.add(afterKeys.get(idx) ?? [], id);
    }
    if (doc) cd.docs.set(id, doc);
    else cd.docs.delete(id);
    cd.version++;
  }

  createIndex(c: string, spec: IndexSpec): void {
    this.coll(c).addIndex(spec);
  }

  // ---- compaction -----------------------------------------------------------------------------

  private snapshotBytes = 0;

  private maybeCompact(): void {
    if (this.compacting || this.closed) return;
    // Every version is kept (history), so the journal is mostly live data and a snapshot is about as
    // large as what it replaces: compacting at twice the last snapshot halves the rewriting (a
    // restart then reads at most three times the data, not twice).
    if (this.journal.bytes < Math.max(this.compactBytes, 2 * this.snapshotBytes)) return;
    this.compacting = this.compact()
      .catch((e: unknown) => this.log('compaction failed; will retry', { err: String(e) }))
      .finally(() => {
        this.compacting = undefined;
      });
  }

  /**
   * Rotates to a new journal, writes the state as of the rotation to a snapshot, then drops the
   * older files. Documents are immutable, so the copied maps are a consistent point in time.
   */
  async compact(): Promise<void> {
    const old = this.journal;
    const gen = this.generation + 1;
    const next = await JournalWriter.open(path.join(this.dataDir, `journal-${gen}.log`));
    await fsyncDir(this.dataDir);
    // From here on new records go to the next journal; the old one still finishes its queue.
    this.journal = next;
    this.generation = gen;
    const state: Array<[string, Doc[]]> = [...this.data.entries()].map(([c, cd]) => [
      c,
      [...cd.docs.values()],
    ]);
    await old.close();
    const file = path.join(this.dataDir, `snapshot-${gen}.jsonl`);
    this.snapshotBytes = await writeSnapshot(file, state);
    await fsyncDir(this.dataDir);
    for (const f of await fsp.readdir(this.dataDir)) {
      const m = /^(journal|snapshot)-(\d+)\.(log|jsonl)$/.exec(f);
      if (m && Number(m[2]) < gen) await fsp.rm(path.join(this.dataDir, f), { force: true });
    }
    this.log('embedded store compacted', { generation: gen, snapshotBytes: this.snapshotBytes });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `matching` is asked only when the order does not come from `sortedScalars` (no sort, or a sort
 * field holding non-scalars): a sorted find looks its matches up once.
 */
function sortAndPage<T>(
  matching: () => Doc[],
  options: FindOptions | undefined,
  sortedScalars: (sort: Sort, keep: number) => Doc[] | undefined,
): T[] {
  const sort = options?.sort && Object.keys(options.sort).length > 0 ? options.sort : undefined;
  // Scalar sort keys (ids, instants, precomputed search sort keys) are sorted by the engine, each
  // key computed once; anything else goes through mingo's cursor.
  const from = options?.skip ?? 0;
  const keep = options?.limit ? from + options.limit : Infinity;
  const sorted = sort ? sortedScalars(sort, keep) : matching();
  let out: Doc[];
  if (sorted) {
    out = sorted.slice(from, options?.limit ? from + options.limit : undefined);
  } else {
    let cursor = new Query({}, {}).find<Doc>(matching());
    if (sort) cursor = cursor.sort(sort);
    if (options?.skip) cursor = cursor.skip(options.skip);
    if (options?.limit) cursor = cursor.limit(options.limit);
    out = cursor.all();
  }
  if (options?.projection && Object.keys(options.projection).length > 0) {
    out = new Query({}, {}).find<Doc>(out, options.projection).all();
  }
  return out as unknown as T[];
}

class EmbeddedCollection<T extends BaseDoc> implements Collection<T> {
  constructor(
    private readonly engine: EmbeddedBackend,
    readonly name: string,
  ) {}

  private one(filter: Filter, session?: Session): Doc | undefined {
    const keys = Object.keys(filter);
    if (keys.length === 1 && keys[0] === '_id' && typeof filter._id === 'string') {
      return this.engine.getDoc(this.name, filter._id, session);
    }
    if (typeof filter._id === 'string') {
      const d = this.engine.getDoc(this.name, filter._id, session);
      return d && new Query(filter, {}).test(d) ? d : undefined;
    }
    const all = this.engine.matching(this.name, filter, session);
    for (const d of all) if (session) this.engine.getDoc(this.name, d._id, session);
    return all[0];
  }

  async findOne(filter: Filter, options?: FindOptions): Promise<T | null> {
    if (options?.sort || options?.projection || options?.skip) {
      const r = await this.find(filter, { ...options, limit: 1 });
      return r[0] ?? null;
    }
    return (this.one(filter, options?.session) as T | undefined) ?? null;
  }

  async find(filter: Filter, options?: FindOptions): Promise<T[]> {
    const session = options?.session;
    return sortAndPage<T>(
      () => this.engine.matching(this.name, filter, session),
      options,
      (sort, keep) => this.engine.sortedMatching(this.name, filter, sort, keep, session),
    );
  }

  async *stream(filter: Filter, options?: FindOptions): AsyncIterable<T> {
    const all = await this.find(filter, options);
    for (let i = 0; i < all.length; i++) {
      yield all[i] as T;
      if (i % 1000 === 999) await new Promise<void>((r) => setImmediate(r));
    }
  }

  async countDocuments(filter: Filter, options?: WriteOptions): Promise<number> {
    return this.engine.matching(this.name, filter, options?.session).length;
  }

  async insertOne(doc: T, options?: WriteOptions): Promise<void> {
    if (this.engine.getDoc(this.name, doc._id, options?.session))
      throw new DuplicateKeyError(this.name, '_id_');
    await this.engine.write({ c: this.name, id: doc._id, doc: doc as unknown as Doc }, options?.session);
  }

  async replaceOne(
    filter: Filter,
    doc: T,
    options?: WriteOptions & { upsert?: boolean },
  ): Promise<UpdateResult> {
    const cur = this.one(filter, options?.session);
    if (!cur) {
      if (!options?.upsert) return { matchedCount: 0, modifiedCount: 0, upsertedCount: 0 };
      await this.insertOne(doc, options);
      return { matchedCount: 0, modifiedCount: 0, upsertedCount: 1 };
    }
    if (doc._id !== cur._id) throw new Error('replaceOne cannot change _id');
    await this.engine.write({ c: this.name, id: cur._id, doc: doc as unknown as Doc }, options?.session);
    return { matchedCount: 1, modifiedCount: 1, upsertedCount: 0 };
  }

  async updateOne(
    filter: Filter,
    upd: UpdateDoc,
    options?: WriteOptions & { upsert?: boolean },
  ): Promise<UpdateResult> {
    const cur = this.one(filter, options?.session);
    let doc: Doc;
    if (cur) {
      doc = structuredClone(cur) as Doc;
    } else {
      if (!options?.upsert) return { matchedCount: 0, modifiedCount: 0, upsertedCount: 0 };
      doc = Object.fromEntries(
        Object.entries(filter).filter(
          ([k, v]) => !k.startsWith('$') && (v === null || typeof v !== 'object'),
        ),
      ) as Doc;
      if (typeof doc._id !== 'string') doc._id = randomUUID();
    }
    const { $setOnInsert, ...rest } = upd;
    if (Object.keys(rest).length > 0) applyUpdate(doc, rest);
    if (!cur && $setOnInsert) Object.assign(doc, $setOnInsert);
    await this.engine.write({ c: this.name, id: doc._id, doc }, options?.session);
    return cur
      ? { matchedCount: 1, modifiedCount: 1, upsertedCount: 0 }
      : { matchedCount: 0, modifiedCount: 0, upsertedCount: 1 };
  }

  async deleteOne(filter: Filter, options?: WriteOptions): Promise<{ deletedCount: number }> {
    const cur = this.one(filter, options?.session);
    if (!cur) return { deletedCount: 0 };
    await this.engine.write({ c: this.name, id: cur._id, doc: null }, options?.session);
    return { deletedCount: 1 };
  }

  async deleteMany(filter: Filter, options?: WriteOptions): Promise<{ deletedCount: number }> {
    const all = this.engine.matching(this.name, filter, options?.session);
    if (options?.session) {
      for (const d of all) await this.engine.write({ c: this.name, id: d._id, doc: null }, options.session);
    } else {
      await Promise.all(all.map((d) => this.engine.write({ c: this.name, id: d._id, doc: null })));
    }
    return { deletedCount: all.length };
  }

  async createIndex(spec: IndexSpec): Promise<void> {
    this.engine.createIndex(this.name, spec);
  }
}
