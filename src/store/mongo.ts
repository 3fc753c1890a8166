/**
 * The MongoDB backend: a thin adapter from the `Backend` contract (store/backend.ts) to the official
 * `mongodb` driver (v7). Filters, sorts, projections and update documents are already MongoDB
 * documents, so they pass through unchanged; this file only maps sessions, options and errors.
 *
 * Durability: every write is acknowledged with `{ w: 'majority', journal: true }` (set on the client,
 * so the driver also applies it to operations that take no write-concern option, and omits it, as it
 * must, inside a transaction, where the commit carries the transaction's write concern instead).
 */

import { randomUUID } from 'node:crypto';
import {
  MongoClient,
  MongoClientClosedError,
  MongoError,
  MongoErrorLabel,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerClosedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoWriteConcernError,
  type ClientSession,
  type Collection as DriverCollection,
  type Db,
  type Document,
  type FindCursor,
  type FindOptions as DriverFindOptions,
  type UpdateResult as DriverUpdateResult,
  type WriteConcernSettings,
} from 'mongodb';
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
  type UpdateDoc,
  type UpdateResult,
  type WriteOptions,
} from './backend';

/** An acknowledged write is on a majority of nodes and in their journals. */
const DURABLE: WriteConcernSettings = { w: 'majority', journal: true };

const SERVER_SELECTION_TIMEOUT_MS = 10_000;

/** Server error codes meaning "this node cannot take the write now" (or the connection was lost). */
const UNAVAILABLE_CODES = new Set<number>([
  6, // HostUnreachable
  7, // HostNotFound
  64, // WriteConcernFailed (wtimeout)
  89, // NetworkTimeout
  91, // ShutdownInProgress
  100, // UnsatisfiableWriteConcern
  189, // PrimarySteppedDown
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
  14031, // OutOfDiskSpace
]);

const WRITE_CONFLICT = 112;
const INDEX_OPTIONS_CONFLICT = 85;
const INDEX_KEY_SPECS_CONFLICT = 86;
const INDEX_ALREADY_EXISTS = 68;

/** Opaque handle given to callers; the driver session stays private (in the backend's WeakMap). */
class MongoSessionHandle implements Session {
  readonly id = randomUUID();
}

interface SessionState {
  readonly clientSession: ClientSession;
  /** Tail of the operation chain: the driver does not allow concurrent operations in one transaction. */
  tail: Promise<unknown>;
}

/*
 * Adapter casts. Our documents are plain objects whose `_id` is a string; the driver types them as
 * `Document` (`{ [key: string]: any }`). These two functions are the only places where the types are
 * bridged, and they change nothing at run time.
 */
function toDriverDoc(doc: BaseDoc): Document {
  return doc as unknown as Document;
}
function fromDriverDoc<T extends BaseDoc>(doc: Document): T {
  return doc as T;
}

function isNetworkish(e: unknown): boolean {
  return (
    e instanceof MongoNetworkError ||
    e instanceof MongoServerSelectionError ||
    e instanceof MongoTopologyClosedError ||
    e instanceof MongoNotConnectedError ||
    e instanceof MongoClientClosedError ||
    e instanceof MongoServerClosedError ||
    (e instanceof MongoServerError && typeof e.code === 'number' && UNAVAILABLE_CODES.has(e.code))
  );
}

/** Extracts the index name from "E11000 duplicate key error collection: db.c index: name dup key: {...}". */
function duplicateIndexName(e: MongoServerError): string {
  const fromMessage = /index: (\S+)/.exec(e.message)?.[1];
  if (fromMessage !== undefined) return fromMessage;
  const keyPattern: unknown = e.keyPattern;
  if (typeof keyPattern === 'object' && keyPattern !== null) {
    return Object.entries(keyPattern)
      .map(([k, v]) => `${k}_${String(v)}`)
      .join('_');
  }
  return 'unknown';
}

/** Maps a driver error to the contract's error classes; anything else is returned unchanged. */
function mapError(e: unknown, collection: string | undefined): unknown {
  if (
    e instanceof DuplicateKeyError ||
    e instanceof WriteConflictError ||
    e instanceof StorageUnavailableError ||
    !(e instanceof MongoError)
  ) {
    return e;
  }
  if (e instanceof MongoServerError && e.code === 11000) {
    return withCause(new DuplicateKeyError(collection ?? 'unknown', duplicateIndexName(e)), e);
  }
  if (e instanceof MongoWriteConcernError) {
    return withCause(
      new StorageUnavailableError(
        `MongoDB did not acknowledge the write durably (majority, journaled): ${e.message}`,
      ),
      e,
    );
  }
  if (isNetworkish(e)) {
    return withCause(new StorageUnavailableError(`MongoDB unavailable: ${e.message}`), e);
  }
  if (e instanceof MongoServerError && e.code === WRITE_CONFLICT) {
    return withCause(new WriteConflictError(`write conflict: ${e.message}`), e);
  }
  return e;
}

function withCause<E extends Error>(err: E, cause: unknown): E {
  err.cause = cause;
  return err;
}

function toUpdateResult(r: DriverUpdateResult): UpdateResult {
  return { matchedCount: r.matchedCount, modifiedCount: r.modifiedCount, upsertedCount: r.upsertedCount };
}

/** Describes a URI for logs without credentials or query options. */
function describeUri(uri: string): string {
  const m = /^(mongodb(?:\+srv)?:\/\/)(?:[^@/]*@)?([^/?]*)/.exec(uri);
  return m ? `${m[1] ?? ''}${m[2] ?? ''}` : 'mongodb';
}

export async function connectMongo(
  uri: string,
  dbName: string,
  log: (msg: string) => void,
): Promise<Backend> {
  const client = new MongoClient(uri, {
    appName: 'fhir-r4-server',
    serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS,
    retryWrites: true,
    retryReads: true,
    writeConcern: DURABLE,
  });

  let supportsTransactions: boolean;
  let db: Db;
  try {
    await client.connect();
    db = client.db(dbName, { writeConcern: DURABLE });
    await db.command({ ping: 1 });
    const hello = await db.command({ hello: 1 });
    const setName: unknown = hello.setName;
    const isMongos = hello.msg === 'isdbgrid';
    supportsTransactions = (typeof setName === 'string' && setName !== '') || isMongos;
    const topology = isMongos
      ? 'mongos'
      : supportsTransactions
        ? `replica set ${String(setName)}`
        : 'standalone';
    log(`MongoDB connected: ${describeUri(uri)} database ${dbName} (${topology})`);
    if (!supportsTransactions) {
      log(
        'MongoDB: standalone mongod: transaction Bundles will be refused (transactions need a replica set)',
      );
    }
  } catch (e) {
    await client.close().catch(() => undefined);
    const reason = e instanceof Error ? e.message : String(e);
    throw withCause(
      new StorageUnavailableError(`cannot connect to MongoDB at ${describeUri(uri)}: ${reason}`),
      e,
    );
  }

  /** Live transaction sessions of this backend; a handle from elsewhere (or a finished one) is rejected. */
  const sessions = new WeakMap<Session, SessionState>();

  function sessionState(session: Session | undefined): SessionState | undefined {
    if (session === undefined) return undefined;
    const state = sessions.get(session);
    if (state === undefined) {
      throw new Error(
        `session ${session.id} does not belong to this MongoDB backend or its transaction has already ended`,
      );
    }
    return state;
  }

  /**
   * Runs one driver operation: serialised per session (the driver forbids concurrent operations in a
   * transaction), with errors mapped. Inside a transaction, errors labelled TransientTransactionError or
   * UnknownTransactionCommitResult are rethrown unchanged so that the driver's withTransaction can see
   * the label and retry; withTransaction maps them if the retries are exhausted.
   */
  function run<R>(
    collection: string,
    session: Session | undefined,
    op: (clientSession: ClientSession | undefined) => Promise<R>,
  ): Promise<R> {
    const state = sessionState(session);
    const exec = async (): Promise<R> => {
      try {
        return await op(state?.clientSession);
      } catch (e) {
        if (state !== undefined && e instanceof MongoError && isRetryableInTransaction(e)) throw e;
        throw mapError(e, collection);
      }
    };
    if (state === undefined) return exec();
    const result = state.tail.then(exec, exec);
    state.tail = result.catch(() => undefined);
    return result;
  }

  function findOptions(
    options: FindOptions | undefined,
    clientSession: ClientSession | undefined,
  ): DriverFindOptions {
    const o: DriverFindOptions = {};
    if (options?.sort !== undefined) o.sort = options.sort;
    if (options?.skip !== undefined) o.skip = options.skip;
    if (options?.limit !== undefined) o.limit = options.limit;
    if (options?.projection !== undefined) o.projection = options.projection;
    if (clientSession !== undefined) o.session = clientSession;
    return o;
  }

  function wrapCollection<T extends BaseDoc>(name: string): Collection<T> {
    const coll: DriverCollection<Document> = db.collection<Document>(name);
    return {
      name,

      findOne(filter: Filter, options?: FindOptions): Promise<T | null> {
        return run(name, options?.session, async (s) => {
          const doc = await coll.findOne(filter, findOptions(options, s));
          return doc === null ? null : fromDriverDoc<T>(doc);
        });
      },

      find(filter: Filter, options?: FindOptions): Promise<T[]> {
        return run(name, options?.session, async (s) => {
          const docs = await coll.find(filter, findOptions(options, s)).toArray();
          return docs.map((d) => fromDriverDoc<T>(d));
        });
      },

      stream(filter: Filter, options?: FindOptions): AsyncIterable<T> {
        // Not serialised with the session's other operations: the cursor's getMore calls run as
        // the caller iterates. Don't interleave other writes of the same transaction with a stream.
        const state = sessionState(options?.session);
        return {
          [Symbol.asyncIterator]: async function* (): AsyncGenerator<T, void, undefined> {
            const cursor: FindCursor<Document> = coll.find(
              filter,
              findOptions(options, state?.clientSession),
            );
            try {
              for await (const doc of cursor) yield fromDriverDoc<T>(doc);
            } catch (e) {
              if (state !== undefined && e instanceof MongoError && isRetryableInTransaction(e)) throw e;
              throw mapError(e, name);
            } finally {
              // Runs on exhaustion, error and early `break`; closing an exhausted cursor is a no-op.
              await cursor.close().catch(() => undefined);
            }
          },
        };
      },

      countDocuments(filter: Filter, options?: WriteOptions): Promise<number> {
        return run(name, options?.session, (s) => coll.countDocuments(filter, s ? { session: s } : {}));
      },

      insertOne(doc: T, options?: WriteOptions): Promise<void> {
        return run(name, options?.session, async (s) => {
          await coll.insertOne(toDriverDoc(doc), s ? { session: s } : {});
        });
      },

      replaceOne(
        filter: Filter,
        doc: T,
        options?: WriteOptions & { upsert?: boolean },
      ): Promise<UpdateResult> {
        return run(name, options?.session, async (s) =>
          toUpdateResult(
            await coll.replaceOne(filter, toDriverDoc(doc), {
              upsert: options?.upsert ?? false,
              ...(s ? { session: s } : {}),
            }),
          ),
        );
      },

      updateOne(
        filter: Filter,
        update: UpdateDoc,
        options?: WriteOptions & { upsert?: boolean },
      ): Promise<UpdateResult> {
        return run(name, options?.session, async (s) =>
          toUpdateResult(
            await coll.updateOne(filter, update, {
              upsert: options?.upsert ?? false,
              ...(s ? { session: s } : {}),
            }),
          ),
        );
      },

      deleteOne(filter: Filter, options?: WriteOptions): Promise<{ deletedCount: number }> {
        return run(name, options?.session, async (s) => {
          const r = await coll.deleteOne(filter, s ? { session: s } : {});
          return { deletedCount: r.deletedCount };
        });
      },

      deleteMany(filter: Filter, options?: WriteOptions): Promise<{ deletedCount: number }> {
        return run(name, options?.session, async (s) => {
          const r = await coll.deleteMany(filter, s ? { session: s } : {});
          return { deletedCount: r.deletedCount };
        });
      },

      async createIndex(spec: IndexSpec): Promise<void> {
        try {
          await coll.createIndex(spec.key, {
            name: spec.name,
            // Only set options that are given: BSON would serialise `undefined` as null, which the
            // server rejects for these fields.
            ...(spec.unique !== undefined ? { unique: spec.unique } : {}),
            ...(spec.partialFilterExpression !== undefined
              ? { partialFilterExpression: spec.partialFilterExpression }
              : {}),
          });
        } catch (e) {
          if (
            e instanceof MongoServerError &&
            (e.code === INDEX_OPTIONS_CONFLICT ||
              e.code === INDEX_KEY_SPECS_CONFLICT ||
              e.code === INDEX_ALREADY_EXISTS)
          ) {
            throw withCause(
              new Error(
                `MongoDB index ${name}.${spec.name} ${JSON.stringify(spec.key)} conflicts with an existing index ` +
                  `(same name or same keys, different definition): ${e.message}. ` +
                  `Drop the old index (db.${name}.dropIndex(...)) and restart so it is rebuilt.`,
              ),
              e,
            );
          }
          throw mapError(e, name);
        }
      },
    };
  }

  return {
    kind: 'mongodb',
    supportsTransactions,

    collection<T extends BaseDoc>(name: string): Collection<T> {
      return wrapCollection<T>(name);
    },

    async listCollections(): Promise<string[]> {
      try {
        const infos = await db.listCollections({}, { nameOnly: true }).toArray();
        const names = infos
          .filter((c) => (c.type === undefined || c.type === 'collection') && !c.name.startsWith('system.'))
          .map((c) => c.name);
        // The contract asks for collections that hold at least one document (as the embedded engine
        // reports them); MongoDB keeps empty collections (e.g. after createIndex or deleteMany).
        // One probe per collection, all in flight together (a system search asks this each time).
        const probes = await Promise.all(
          names.map((n) => db.collection(n).findOne({}, { projection: { _id: 1 } })),
        );
        return names.filter((_, i) => probes[i] !== null).sort();
      } catch (e) {
        throw mapError(e, undefined);
      }
    },

    async withTransaction<R>(fn: (session: Session) => Promise<R>): Promise<R> {
      if (!supportsTransactions) {
        throw new StorageUnavailableError(
          'transactions need a replica set (MongoDB is a standalone mongod; a one-node replica set is enough)',
        );
      }
      try {
        return await client.withSession(async (clientSession) => {
          const handle = new MongoSessionHandle();
          sessions.set(handle, { clientSession, tail: Promise.resolve() });
          try {
            // withTransaction's resolved value has changed across driver majors (command result in v4/v5,
            // the callback's value since v6): keep fn's result ourselves. fn may run more than once
            // (transient errors); the last successful run's value is the committed one.
            let result: { value: R } | undefined;
            await clientSession.withTransaction(
              async () => {
                result = undefined;
                const value = await fn(handle);
                // Wait for operations fn started but did not await, so nothing runs after the commit.
                await sessions.get(handle)?.tail;
                result = { value };
              },
              {
                readConcern: { level: 'snapshot' },
                writeConcern: DURABLE,
                readPreference: 'primary',
              },
            );
            if (result === undefined) {
              throw new Error(
                'MongoDB transaction finished without running the transaction function to completion',
              );
            }
            return result.value;
          } finally {
            sessions.delete(handle);
          }
        });
      } catch (e) {
        throw mapTransactionError(e);
      }
    },

    async close(): Promise<void> {
      await client.close();
    },
  };
}

function isRetryableInTransaction(e: MongoError): boolean {
  return (
    e.hasErrorLabel(MongoErrorLabel.TransientTransactionError) ||
    e.hasErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult)
  );
}

/** Maps what escapes the driver's withTransaction (after its own retries) to the contract's errors. */
function mapTransactionError(e: unknown): unknown {
  if (!(e instanceof MongoError)) return e;
  if (isNetworkish(e)) return mapError(e, undefined);
  if (e.hasErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult)) {
    return withCause(
      new StorageUnavailableError(
        `MongoDB transaction commit result unknown (may or may not be applied): ${e.message}`,
      ),
      e,
    );
  }
  if (e.hasErrorLabel(MongoErrorLabel.TransientTransactionError)) {
    return withCause(new WriteConflictError(`MongoDB transaction kept conflicting: ${e.message}`), e);
  }
  return mapError(e, undefined);
}
