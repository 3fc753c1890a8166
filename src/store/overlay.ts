import { Query } from 'mingo';
import type {
  Backend,
  BaseDoc,
  Collection,
  Filter,
  FindOptions,
  IndexSpec,
  Session,
  UpdateDoc,
  UpdateResult,
  WriteOptions,
} from './backend';
import { sortByScalarKeys } from './embedded/sort';

type Doc = Record<string, unknown>;

export interface Overlay {
  /** Collections served by these instead of the backend's own (e.g. read-only views of a log). */
  replace: Readonly<Record<string, Collection>>;
  /** Collections whose reads also cover a second, read-only source; writes still go to the backend. */
  extend: Readonly<Record<string, Collection>>;
  /** Names of replaced collections that hold documents (for listCollections). */
  nonEmpty(): string[];
  /** Called once the backend is closed. */
  close(): Promise<void>;
}

/**
 * A backend with some collections served from elsewhere: the embedded store keeps its audit log in
 * an append-only file (audit/log.ts), and the AuditEvent collection and the AuditEvent part of the
 * history are views of that file, beside the engine's own collections. Transactions are the
 * backend's: the overlaid sources are read-only and outside them.
 */
export class OverlayBackend implements Backend {
  readonly kind: Backend['kind'];
  readonly supportsTransactions: boolean;

  constructor(
    /** The backend underneath (the engine). */
    readonly base: Backend,
    private readonly overlay: Overlay,
  ) {
    this.kind = base.kind;
    this.supportsTransactions = base.supportsTransactions;
  }

  collection<T extends BaseDoc>(name: string): Collection<T> {
    if (Object.prototype.hasOwnProperty.call(this.overlay.replace, name))
      return this.overlay.replace[name] as unknown as Collection<T>;
    const own = this.base.collection<T>(name);
    if (Object.prototype.hasOwnProperty.call(this.overlay.extend, name))
      return new UnionCollection<T>(own, this.overlay.extend[name] as unknown as Collection<T>);
    return own;
  }

  async listCollections(): Promise<string[]> {
    const names = new Set(await this.base.listCollections());
    for (const n of this.overlay.nonEmpty()) names.add(n);
    return [...names];
  }

  withTransaction<R>(fn: (session: Session) => Promise<R>): Promise<R> {
    return this.base.withTransaction(fn);
  }

  /** The overlay first: it may still write to the backend (the audit log anchors its chain head). */
  async close(): Promise<void> {
    await this.overlay.close();
    await this.base.close();
  }
}

/**
 * Reads of two collections as one (a page of the union in the requested order); writes go to the
 * first. Both sources answer `skip + limit` documents in order, and the page is cut from their merge.
 */
class UnionCollection<T extends BaseDoc> implements Collection<T> {
  readonly name: string;

  constructor(
    private readonly own: Collection<T>,
    private readonly extra: Collection<T>,
  ) {
    this.name = own.name;
  }

  async findOne(filter: Filter, options?: FindOptions): Promise<T | null> {
    return (await this.find(filter, { ...options, limit: 1 }))[0] ?? null;
  }

  async find(filter: Filter, options?: FindOptions): Promise<T[]> {
    const skip = options?.skip ?? 0;
    const limit = options?.limit && options.limit > 0 ? options.limit : undefined;
    const each: FindOptions = { sort: options?.sort, session: options?.session };
    if (limit !== undefined) each.limit = skip + limit;
    const [a, b] = await Promise.all([this.own.find(filter, each), this.extra.find(filter, each)]);
    let all = [...a, ...b] as unknown as Doc[];
    const sort = options?.sort && Object.keys(options.sort).length > 0 ? options.sort : undefined;
    if (sort && a.length > 0 && b.length > 0)
      all = sortByScalarKeys(all, sort) ?? new Query({}, {}).find<Doc>(all).sort(sort).all();
    let page = all.slice(skip, limit === undefined ? undefined : skip + limit);
    if (options?.projection && Object.keys(options.projection).length > 0)
      page = new Query({}, {}).find<Doc>(page, options.projection).all();
    return page as unknown as T[];
  }

  async *stream(filter: Filter, options?: FindOptions): AsyncIterable<T> {
    if (!options?.sort || Object.keys(options.sort).length === 0) {
      yield* this.own.stream(filter, options);
      yield* this.extra.stream(filter, options);
      return;
    }
    yield* await this.find(filter, options);
  }

  async countDocuments(filter: Filter, options?: WriteOptions): Promise<number> {
    const [a, b] = await Promise.all([
      this.own.countDocuments(filter, options),
      this.extra.countDocuments(filter, options),
    ]);
    return a + b;
  }

  insertOne(doc: T, options?: WriteOptions): Promise<void> {
    return this.own.insertOne(doc, options);
  }

  replaceOne(filter: Filter, doc: T, options?: WriteOptions & { upsert?: boolean }): Promise<UpdateResult> {
    return this.own.replaceOne(filter, doc, options);
  }

  updateOne(
    filter: Filter,
    update: UpdateDoc,
    options?: WriteOptions & { upsert?: boolean },
  ): Promise<UpdateResult> {
    return this.own.updateOne(filter, update, options);
  }

  deleteOne(filter: Filter, options?: WriteOptions): Promise<{ deletedCount: number }> {
    return this.own.deleteOne(filter, options);
  }

  deleteMany(filter: Filter, options?: WriteOptions): Promise<{ deletedCount: number }> {
    return this.own.deleteMany(filter, options);
  }

  createIndex(spec: IndexSpec): Promise<void> {
    return this.own.createIndex(spec);
  }
}
