/**
 * The slice of the MongoDB Db/Collection API that the ResourceStore uses. Two implementations:
 * the official driver (store/mongo.ts, when MONGODB_URI is set) and the embedded, journaled engine
 * (store/embedded/, the default). Filters, sorts and updates are MongoDB documents with MongoDB
 * semantics in both.
 */

export type Filter = Record<string, unknown>;
export type Sort = Record<string, 1 | -1>;
export type Projection = Record<string, 0 | 1>;
export type UpdateDoc = Record<string, Record<string, unknown>>;

export interface BaseDoc {
  _id: string;
}

/** Opaque transaction handle; pass it to every operation that belongs to the transaction. */
export interface Session {
  readonly id: string;
}

export interface FindOptions {
  sort?: Sort;
  skip?: number;
  limit?: number;
  projection?: Projection;
  session?: Session;
}

export interface WriteOptions {
  session?: Session;
}

export interface UpdateResult {
  matchedCount: number;
  modifiedCount: number;
  upsertedCount: number;
}

export interface IndexSpec {
  name: string;
  key: Record<string, 1 | -1>;
  unique?: boolean;
  /** Only documents matching this filter are indexed (MongoDB partialFilterExpression). */
  partialFilterExpression?: Filter;
}

export interface Collection<T extends BaseDoc = BaseDoc> {
  readonly name: string;
  findOne(filter: Filter, options?: FindOptions): Promise<T | null>;
  find(filter: Filter, options?: FindOptions): Promise<T[]>;
  /** Streams matches in sort order; for exports and large scans. */
  stream(filter: Filter, options?: FindOptions): AsyncIterable<T>;
  countDocuments(filter: Filter, options?: WriteOptions): Promise<number>;
  /** Rejects with a DuplicateKeyError when a unique index is violated. */
  insertOne(doc: T, options?: WriteOptions): Promise<void>;
  replaceOne(filter: Filter, doc: T, options?: WriteOptions & { upsert?: boolean }): Promise<UpdateResult>;
  updateOne(
    filter: Filter,
    update: UpdateDoc,
    options?: WriteOptions & { upsert?: boolean },
  ): Promise<UpdateResult>;
  deleteOne(filter: Filter, options?: WriteOptions): Promise<{ deletedCount: number }>;
  deleteMany(filter: Filter, options?: WriteOptions): Promise<{ deletedCount: number }>;
  createIndex(spec: IndexSpec): Promise<void>;
}

export interface Backend {
  /** 'embedded' or 'mongodb', for logs and the CapabilityStatement. */
  readonly kind: 'embedded' | 'mongodb';
  /** False on a standalone mongod: multi-document atomic writes are impossible there. */
  readonly supportsTransactions: boolean;
  collection<T extends BaseDoc>(name: string): Collection<T>;
  /** Names of collections that hold at least one document. */
  listCollections(): Promise<string[]>;
  /**
   * Runs fn in one atomic transaction: all its writes commit together or none do. fn may be retried
   * on a transient write conflict, so it must not have side effects outside the session.
   */
  withTransaction<R>(fn: (session: Session) => Promise<R>): Promise<R>;
  /** Flushes pending writes and releases resources. */
  close(): Promise<void>;
}

/** A unique index was violated (MongoDB error code 11000). */
export class DuplicateKeyError extends Error {
  readonly code = 11000;
  constructor(
    readonly collection: string,
    readonly index: string,
  ) {
    super(`E11000 duplicate key error collection: ${collection} index: ${index}`);
    this.name = 'DuplicateKeyError';
  }
}

/** Two transactions touched the same document; the later one must retry (MongoDB's TransientTransactionError). */
export class WriteConflictError extends Error {
  constructor(message = 'write conflict') {
    super(message);
    this.name = 'WriteConflictError';
  }
}

/** The storage cannot take writes (disk full, read-only, journal failure). Reads may still work. */
export class StorageUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageUnavailableError';
  }
}

export function isDuplicateKeyError(e: unknown): boolean {
  return (
    e instanceof DuplicateKeyError ||
    (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 11000)
  );
}
