/**
 * Runs against a real MongoDB server when MONGODB_URI is set (the transaction tests need a replica set,
 * e.g. the one-node set from docker-compose). Each run uses a fresh database, dropped afterwards.
 */

import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { DuplicateKeyError, type Backend, type BaseDoc } from '../../src/store/backend';
import { connectMongo } from '../../src/store/mongo';

const uri = process.env.MONGODB_URI;
const d = uri ? describe : describe.skip;
if (!uri) {
  console.log('MONGODB_URI not set: skipping MongoDB backend tests');
}

interface Doc extends BaseDoc {
  n: number;
  name?: string;
  version?: number;
}

d('MongoDB backend', () => {
  const dbName = `fhir_test_${randomBytes(6).toString('hex')}`;
  const logs: string[] = [];
  let backend: Backend;

  beforeAll(async () => {
    backend = await connectMongo(uri ?? '', dbName, (msg) => logs.push(msg));
  });

  afterAll(async () => {
    await backend?.close();
    const client = new MongoClient(uri ?? '', { serverSelectionTimeoutMS: 10_000 });
    try {
      await client.db(dbName).dropDatabase();
    } finally {
      await client.close();
    }
  });

  test('reports its kind and logs the connection', () => {
    expect(backend.kind).toBe('mongodb');
    expect(logs.some((l) => l.includes(dbName))).toBe(true);
    if (!backend.supportsTransactions) {
      expect(logs.some((l) => l.includes('transaction Bundles will be refused'))).toBe(true);
    }
  });

  test('insert, find with sort/skip/limit/projection, count', async () => {
    const c = backend.collection<Doc>('Basic');
    for (const n of [3, 1, 4, 5, 2]) await c.insertOne({ _id: `b${n}`, n, name: `name${n}` });

    expect(await c.findOne({ _id: 'b4' })).toEqual({ _id: 'b4', n: 4, name: 'name4' });
    expect(await c.findOne({ _id: 'missing' })).toBeNull();

    const sorted = await c.find({}, { sort: { n: 1 } });
    expect(sorted.map((x) => x.n)).toEqual([1, 2, 3, 4, 5]);

    const page = await c.find({ n: { $gte: 2 } }, { sort: { n: -1 }, skip: 1, limit: 2 });
    expect(page.map((x) => x._id)).toEqual(['b4', 'b3']);

    const projected = await c.find({ _id: 'b1' }, { projection: { n: 1 } });
    expect(projected).toEqual([{ _id: 'b1', n: 1 }]);

    expect(await c.countDocuments({ n: { $lt: 3 } })).toBe(2);

    const upd = await c.updateOne({ _id: 'b1' }, { $set: { name: 'renamed' } });
    expect(upd).toEqual({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    expect((await c.findOne({ _id: 'b1' }))?.name).toBe('renamed');

    expect(await c.deleteOne({ _id: 'b1' })).toEqual({ deletedCount: 1 });
    expect(await c.deleteMany({ n: { $gte: 4 } })).toEqual({ deletedCount: 2 });
    expect(await c.countDocuments({})).toBe(2);

    expect(await backend.listCollections()).toContain('Basic');
  });

  test('unique index violation -> DuplicateKeyError; partial index only covers matching docs', async () => {
    const c = backend.collection<Doc>('Unique');
    await c.createIndex({
      name: 'name_unique',
      key: { name: 1 },
      unique: true,
      partialFilterExpression: { n: { $gt: 0 } },
    });
    await c.insertOne({ _id: 'u1', n: 1, name: 'x' });

    const err: unknown = await c.insertOne({ _id: 'u2', n: 2, name: 'x' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DuplicateKeyError);
    expect((err as DuplicateKeyError).index).toBe('name_unique');
    expect((err as DuplicateKeyError).code).toBe(11000);

    // Outside the partial filter: not indexed, so no conflict.
    await c.insertOne({ _id: 'u3', n: 0, name: 'x' });

    // Duplicate _id is a DuplicateKeyError too.
    await expect(c.insertOne({ _id: 'u1', n: 5 })).rejects.toBeInstanceOf(DuplicateKeyError);

    // Same index name, different definition: a clear error, not silently ignored.
    await expect(c.createIndex({ name: 'name_unique', key: { n: 1 } })).rejects.toThrow(
      /conflicts with an existing index/,
    );
    // Same definition again: fine.
    await c.createIndex({
      name: 'name_unique',
      key: { name: 1 },
      unique: true,
      partialFilterExpression: { n: { $gt: 0 } },
    });
  });

  test('replaceOne filtered on version: stale version matches nothing', async () => {
    const c = backend.collection<Doc>('Versioned');
    await c.insertOne({ _id: 'v', n: 0, version: 1 });

    const ok = await c.replaceOne({ _id: 'v', version: 1 }, { _id: 'v', n: 1, version: 2 });
    expect(ok.matchedCount).toBe(1);
    expect(ok.modifiedCount).toBe(1);

    const stale = await c.replaceOne({ _id: 'v', version: 1 }, { _id: 'v', n: 99, version: 2 });
    expect(stale).toEqual({ matchedCount: 0, modifiedCount: 0, upsertedCount: 0 });
    expect(await c.findOne({ _id: 'v' })).toEqual({ _id: 'v', n: 1, version: 2 });

    const up = await c.replaceOne({ _id: 'w' }, { _id: 'w', n: 7, version: 1 }, { upsert: true });
    expect(up.upsertedCount).toBe(1);
  });

  test('stream yields all documents in sort order', async () => {
    const c = backend.collection<Doc>('Streamed');
    const count = 250; // more than one driver batch (101 docs in the first)
    for (let i = count - 1; i >= 0; i--) await c.insertOne({ _id: `s${String(i).padStart(4, '0')}`, n: i });

    const seen: number[] = [];
    for await (const doc of c.stream({}, { sort: { n: 1 } })) seen.push(doc.n);
    expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));

    // Early break closes the cursor without error.
    let first: number | undefined;
    for await (const doc of c.stream({ n: { $gte: 10 } }, { sort: { n: -1 } })) {
      first = doc.n;
      break;
    }
    expect(first).toBe(count - 1);
  });

  test('withTransaction commits all writes, or none when fn throws', async () => {
    const a = backend.collection<Doc>('TxA');
    const b = backend.collection<Doc>('TxB');
    // Create the collections outside the transaction (older servers cannot create them inside one).
    await a.insertOne({ _id: 'seed', n: 0 });
    await b.insertOne({ _id: 'seed', n: 0 });

    if (!backend.supportsTransactions) {
      await expect(backend.withTransaction(async () => 1)).rejects.toThrow(/replica set/);
      return;
    }

    const result = await backend.withTransaction(async (session) => {
      await a.insertOne({ _id: 'a1', n: 1 }, { session });
      await b.insertOne({ _id: 'b1', n: 1 }, { session });
      expect(await a.countDocuments({}, { session })).toBe(2);
      return 'committed';
    });
    expect(result).toBe('committed');
    expect(await a.findOne({ _id: 'a1' })).not.toBeNull();
    expect(await b.findOne({ _id: 'b1' })).not.toBeNull();

    await expect(
      backend.withTransaction(async (session) => {
        await a.insertOne({ _id: 'a2', n: 2 }, { session });
        await b.insertOne({ _id: 'b2', n: 2 }, { session });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await a.findOne({ _id: 'a2' })).toBeNull();
    expect(await b.findOne({ _id: 'b2' })).toBeNull();

    // A duplicate key inside a transaction surfaces as DuplicateKeyError and rolls everything back.
    await expect(
      backend.withTransaction(async (session) => {
        await a.insertOne({ _id: 'a3', n: 3 }, { session });
        await b.insertOne({ _id: 'b1', n: 3 }, { session });
      }),
    ).rejects.toBeInstanceOf(DuplicateKeyError);
    expect(await a.findOne({ _id: 'a3' })).toBeNull();
  });
});
