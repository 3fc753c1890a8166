import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuplicateKeyError } from '../../src/store/backend';
import { EmbeddedBackend } from '../../src/store/embedded/engine';
import { encodeRecord, encodeRecords } from '../../src/store/embedded/journal';

interface Item {
  _id: string;
  n: number;
  tag?: string;
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function open(): Promise<EmbeddedBackend> {
  return EmbeddedBackend.open({ dataDir: dir });
}

describe('embedded engine', () => {
  test('acknowledged writes survive a reopen', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await c.insertOne({ _id: 'a', n: 1 });
    await c.replaceOne({ _id: 'a', n: 1 }, { _id: 'a', n: 2 });
    await c.insertOne({ _id: 'b', n: 5 });
    await c.deleteOne({ _id: 'b' });
    await b.close();
    const b2 = await open();
    expect(await b2.collection<Item>('items').find({})).toEqual([{ _id: 'a', n: 2 }]);
    await b2.close();
  });

  test('cached answers and their sorted pages never outlive a write to the collection', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    const other = b.collection<Item>('others');
    for (let n = 0; n < 40; n++) await c.insertOne({ _id: `i${String(n).padStart(2, '0')}`, n, tag: 'x' });
    const page = async (skip: number): Promise<string[]> =>
      (await c.find({ tag: 'x' }, { sort: { n: -1 }, skip, limit: 3 })).map((d) => d._id);
    // First page (selected), again (sorted once and kept), and a later page from the kept order.
    expect(await page(0)).toEqual(['i39', 'i38', 'i37']);
    expect(await page(0)).toEqual(['i39', 'i38', 'i37']);
    expect(await page(3)).toEqual(['i36', 'i35', 'i34']);
    expect(await c.countDocuments({ tag: 'x' })).toBe(40);
    // A write elsewhere keeps the answer; a write here (insert, change, delete) replaces it.
    await other.insertOne({ _id: 'o', n: 99, tag: 'x' });
    expect(await page(0)).toEqual(['i39', 'i38', 'i37']);
    await c.insertOne({ _id: 'new', n: 100, tag: 'x' });
    expect(await page(0)).toEqual(['new', 'i39', 'i38']);
    await c.replaceOne({ _id: 'i39' }, { _id: 'i39', n: 39, tag: 'y' });
    expect(await page(0)).toEqual(['new', 'i38', 'i37']);
    await c.deleteOne({ _id: 'new' });
    expect(await page(0)).toEqual(['i38', 'i37', 'i36']);
    expect(await c.countDocuments({ tag: 'x' })).toBe(39);
    // Inside a transaction the session's own writes count, and nothing leaks into the cache.
    await expect(
      b.withTransaction(async (session) => {
        await c.insertOne({ _id: 'tx', n: 500, tag: 'x' }, { session });
        expect((await c.find({ tag: 'x' }, { sort: { n: -1 }, limit: 1, session }))[0]?._id).toBe('tx');
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await page(0)).toEqual(['i38', 'i37', 'i36']);
    await b.close();
  });

  test('filters, sorts and pages with MongoDB semantics', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await Promise.all([3, 1, 2, 5, 4].map((n) => c.insertOne({ _id: `i${n}`, n })));
    const r = await c.find({ n: { $gte: 2 } }, { sort: { n: -1 }, skip: 1, limit: 2 });
    expect(r.map((d) => d.n)).toEqual([4, 3]);
    expect(await c.countDocuments({ n: { $lt: 3 } })).toBe(2);
    await b.close();
  });

  test('a conditional replace on a stale version matches nothing', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await c.insertOne({ _id: 'a', n: 1 });
    const [r1, r2] = await Promise.all([
      c.replaceOne({ _id: 'a', n: 1 }, { _id: 'a', n: 2 }),
      c.replaceOne({ _id: 'a', n: 1 }, { _id: 'a', n: 3 }),
    ]);
    expect(r1.matchedCount + r2.matchedCount).toBe(1);
    await b.close();
  });

  test('unique indexes reject duplicates, also inside a transaction', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await c.createIndex({ name: 'tag_1', key: { tag: 1 }, unique: true });
    await c.insertOne({ _id: 'a', n: 1, tag: 'x' });
    await expect(c.insertOne({ _id: 'b', n: 1, tag: 'x' })).rejects.toBeInstanceOf(DuplicateKeyError);
    await expect(
      b.withTransaction(async (session) => {
        await c.insertOne({ _id: 'c', n: 1, tag: 'y' }, { session });
        await c.insertOne({ _id: 'd', n: 1, tag: 'y' }, { session });
      }),
    ).rejects.toBeInstanceOf(DuplicateKeyError);
    expect(await c.countDocuments({})).toBe(1);
    await b.close();
  });

  test('a transaction commits all its writes or none', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await expect(
      b.withTransaction(async (session) => {
        await c.insertOne({ _id: 'a', n: 1 }, { session });
        expect(await c.findOne({ _id: 'a' }, { session })).toEqual({ _id: 'a', n: 1 });
        expect(await c.findOne({ _id: 'a' })).toBeNull();
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await c.countDocuments({})).toBe(0);
    await b.withTransaction(async (session) => {
      await c.insertOne({ _id: 'a', n: 1 }, { session });
      await c.insertOne({ _id: 'b', n: 2 }, { session });
    });
    await b.close();
    const b2 = await open();
    expect(await b2.collection<Item>('items').countDocuments({})).toBe(2);
    await b2.close();
  });

  test('concurrent transactions on one document: the later commit retries and sees the first', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await c.insertOne({ _id: 'ctr', n: 0 });
    await Promise.all(
      Array.from({ length: 10 }, () =>
        b.withTransaction(async (session) => {
          const cur = await c.findOne({ _id: 'ctr' }, { session });
          await new Promise((r) => setImmediate(r));
          await c.replaceOne({ _id: 'ctr' }, { _id: 'ctr', n: (cur?.n ?? 0) + 1 }, { session });
        }),
      ),
    );
    expect((await c.findOne({ _id: 'ctr' }))?.n).toBe(10);
    await b.close();
  });

  test('a torn journal tail is dropped on recovery', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await c.insertOne({ _id: 'a', n: 1 });
    await b.close();
    const journal = fs.readdirSync(dir).find((f) => f.startsWith('journal-')) as string;
    fs.appendFileSync(path.join(dir, journal), '1234abcd ["items","b",{"_id":"b"');
    const b2 = await open();
    expect(await b2.collection<Item>('items').find({})).toEqual([{ _id: 'a', n: 1 }]);
    await b2.collection<Item>('items').insertOne({ _id: 'c', n: 3 });
    await b2.close();
    const b3 = await open();
    expect((await b3.collection<Item>('items').find({}, { sort: { _id: 1 } })).map((d) => d._id)).toEqual([
      'a',
      'c',
    ]);
    await b3.close();
  });

  test('damage followed by valid records refuses to start', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await c.insertOne({ _id: 'a', n: 1 });
    await c.insertOne({ _id: 'b', n: 2 });
    await b.close();
    const file = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith('journal-')) as string);
    const buf = fs.readFileSync(file);
    buf[12] = buf[12] === 0x41 ? 0x42 : 0x41;
    fs.writeFileSync(file, buf);
    await expect(open()).rejects.toThrow(/corrupt/);
  });

  test('compaction keeps every document and drops old files', async () => {
    const b = await EmbeddedBackend.open({ dataDir: dir, compactBytes: 2000 });
    const c = b.collection<Item>('items');
    for (let i = 0; i < 100; i++) await c.insertOne({ _id: `i${i}`, n: i });
    await b.flush();
    await b.compact();
    await c.insertOne({ _id: 'after', n: -1 });
    await b.close();
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('snapshot-')).length).toBe(1);
    const b2 = await open();
    expect(await b2.collection<Item>('items').countDocuments({})).toBe(101);
    await b2.close();
  });

  test('after a restart the next compaction waits for the journal to outgrow the loaded snapshot', async () => {
    const b = await EmbeddedBackend.open({ dataDir: dir, compactBytes: 2000 });
    const c = b.collection<Item>('items');
    for (let i = 0; i < 200; i++) await c.insertOne({ _id: `i${i}`, n: i, pad: 'p'.repeat(100) } as Item);
    await b.flush();
    await b.compact();
    await b.close();
    const snapshots = (): string[] => fs.readdirSync(dir).filter((f) => f.startsWith('snapshot-'));
    const first = snapshots();
    const b2 = await EmbeddedBackend.open({ dataDir: dir, compactBytes: 2000 });
    // Past compactBytes, well short of twice the snapshot: no new snapshot.
    for (let i = 0; i < 20; i++)
      await b2.collection<Item>('items').insertOne({ _id: `j${i}`, n: i, pad: 'p'.repeat(100) } as Item);
    await b2.flush();
    expect(snapshots()).toEqual(first);
    await b2.close();
  });

  test('journal lines encoded to a Buffer are the bytes of the string encoding', () => {
    const jsons = ['{}', '{"a":"Müller 東京 \\u0000 😀"}', JSON.stringify({ x: 'y'.repeat(5000) })];
    for (const json of jsons)
      expect(
        encodeRecords([json], [Buffer.byteLength(json)]).equals(Buffer.from(encodeRecord(json), 'utf8')),
      ).toBe(true);
    // Several lines in one Buffer: each at its offset, each with its own checksum.
    const batch = encodeRecords(
      jsons,
      jsons.map((j) => Buffer.byteLength(j)),
    );
    expect(batch.equals(Buffer.from(jsons.map(encodeRecord).join(''), 'utf8'))).toBe(true);
  });

  test('an object shared by two documents of one write is journaled once and shared again after recovery', async () => {
    interface Holder {
      _id: string;
      resource: { text: string };
    }
    const b = await open();
    const shared = { text: 'x'.repeat(10_000) };
    await b.withTransaction(async (session) => {
      await b.collection<Holder>('current').insertOne({ _id: 'a', resource: shared }, { session });
      await b.collection<Holder>('history').insertOne({ _id: 'a/1', resource: shared }, { session });
    });
    await b.close();
    const journal = fs.readdirSync(dir).find((f) => f.startsWith('journal-')) as string;
    expect(fs.statSync(path.join(dir, journal)).size).toBeLessThan(15_000);
    const b2 = await open();
    const cur = await b2.collection<Holder>('current').findOne({ _id: 'a' });
    const hist = await b2.collection<Holder>('history').findOne({ _id: 'a/1' });
    expect(cur?.resource.text).toHaveLength(10_000);
    expect(hist?.resource).toBe(cur?.resource);
    // The same holds through a snapshot.
    await b2.compact();
    await b2.close();
    const snap = fs.readdirSync(dir).find((f) => f.startsWith('snapshot-')) as string;
    expect(fs.statSync(path.join(dir, snap)).size).toBeLessThan(15_000);
    const b3 = await open();
    const hist3 = await b3.collection<Holder>('history').findOne({ _id: 'a/1' });
    expect(hist3?.resource.text).toHaveLength(10_000);
    expect(hist3?.resource).toBe((await b3.collection<Holder>('current').findOne({ _id: 'a' }))?.resource);
    await b3.close();
  });

  test('stored documents are frozen so callers cannot corrupt them', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    await c.insertOne({ _id: 'a', n: 1 });
    const d = await c.findOne({ _id: 'a' });
    expect(() => {
      (d as Item).n = 5;
    }).toThrow(TypeError);
    await b.close();
  });

  test('auto-built indexes give the same answers as a scan', async () => {
    interface Obs {
      _id: string;
      deleted: boolean;
      idx: { code?: Array<{ s: string; c: string }>; subject?: Array<{ r: string }> };
    }
    const built: string[] = [];
    const b = await EmbeddedBackend.open({
      dataDir: dir,
      autoIndexPrefix: 'idx.',
      log: (msg, fields) => {
        if (msg === 'embedded store built an index') built.push(String(fields?.field));
      },
    });
    const c = b.collection<Obs>('Observation');
    const docs: Obs[] = Array.from({ length: 300 }, (_, i) => ({
      _id: `o${i}`,
      deleted: i % 10 === 0,
      idx: {
        code: [
          { s: 'http://loinc.org', c: `c${i % 7}` },
          ...(i % 3 === 0 ? [{ s: 'http://snomed.info/sct', c: 'x' }] : []),
        ],
        ...(i % 5 === 0 ? {} : { subject: [{ r: `Patient/p${i % 11}` }] }),
      },
    }));
    await Promise.all(docs.map((d) => c.insertOne(d)));
    const filters = [
      { $and: [{ deleted: false }, { 'idx.code': { $elemMatch: { s: 'http://loinc.org', c: 'c3' } } }] },
      { $and: [{ deleted: false }, { $or: [{ 'idx.code.c': 'c1' }, { 'idx.code.c': 'x' }] }] },
      { 'idx.subject.r': { $in: ['Patient/p1', 'Patient/p2'] } },
      { $and: [{ 'idx.subject.r': 'Patient/p4' }, { 'idx.code.c': 'c2' }] },
      { $or: [{ 'idx.subject.r': 'Patient/p4' }, { 'idx.subject': { $exists: false } }] },
      { 'idx.code': { $elemMatch: { c: 'nope' } } },
    ];
    const { Query } = await import('mingo');
    for (const f of filters) {
      const expected = docs
        .filter((d) => new Query(f, {}).test(d as unknown as Record<string, unknown>))
        .map((d) => d._id)
        .sort();
      const got = (await c.find(f)).map((d) => d._id).sort();
      expect(got).toEqual(expected);
    }
    expect(built).toEqual(expect.arrayContaining(['idx.code.s', 'idx.code.c', 'idx.subject.r']));
    // Writes after the index exists keep it right.
    await c.replaceOne(
      { _id: 'o3' },
      { _id: 'o3', deleted: false, idx: { code: [{ s: 'http://loinc.org', c: 'c1' }] } },
    );
    await c.deleteOne({ _id: 'o1' });
    const got = (await c.find(filters[1] as Record<string, unknown>)).map((d) => d._id);
    expect(got).toContain('o3');
    expect(got).not.toContain('o1');
    await b.close();
  });

  test('index plans answer what testing every document answers, whatever the shapes at the path (property)', async () => {
    const fc = (await import('fast-check')).default;
    // The reference is the engine's own predicate over every document (matcher.ts; mingo differs
    // from MongoDB on some array shapes); the plan must not change the answer.
    const { compileMatcher } = await import('../../src/store/embedded/matcher');
    const scalar = fc.oneof(
      fc.constantFrom('x', 'y'),
      fc.constantFrom(1, 2),
      fc.boolean(),
      fc.constant(null),
    );
    // No arrays of arrays: FHIR JSON and the search index have none.
    const leaf = fc.oneof(scalar, fc.array(scalar, { maxLength: 2 }));
    const entry = fc.oneof(fc.record({ b: leaf }, { requiredKeys: [] }), leaf);
    const a = fc.oneof(entry, fc.array(entry, { maxLength: 3 }));
    const shape = fc.record({ a, d: fc.boolean() }, { requiredKeys: ['d'] });
    // Searches never ask for null (`:missing` is $exists).
    const value = scalar.filter((v) => v !== null);
    const cond = fc.oneof(
      value.map((v) => ({ 'idx.a.b': v })),
      fc.array(value, { minLength: 1, maxLength: 2 }).map((vs) => ({ 'idx.a.b': { $in: vs } })),
      value.map((v) => ({ 'idx.a': v })),
      value.map((v) => ({ 'idx.a.b': { $eq: v } })),
      fc.boolean().map((d) => ({ d })),
    );
    const filter = fc
      .array(cond, { minLength: 1, maxLength: 3 })
      .map((cs) => (cs.length === 1 ? cs[0] : { $and: cs }));
    const shapes = fc.sample(shape, { numRuns: 150, seed: 42 });
    const b = await EmbeddedBackend.open({ dataDir: dir, autoIndexPrefix: 'idx.' });
    const c = b.collection<{ _id: string }>('T');
    const docs = shapes.map((sh, i) => ({
      _id: `t${i}`,
      d: sh.d,
      idx: sh.a === undefined ? {} : { a: sh.a },
    }));
    await Promise.all(docs.map((d) => c.insertOne(d)));
    await fc.assert(
      fc.asyncProperty(filter, async (f) => {
        const test = compileMatcher(f as Record<string, unknown>);
        if (!test) throw new Error('the matcher compiles these filters');
        const expected = docs
          .filter((d) => test(d))
          .map((d) => d._id)
          .sort();
        expect((await c.find(f as Record<string, unknown>)).map((d) => d._id).sort()).toEqual(expected);
        expect(await c.countDocuments(f as Record<string, unknown>)).toBe(expected.length);
      }),
      { numRuns: 300 },
    );
    await b.close();
  });

  test('sorting by scalar keys follows MongoDB: arrays by least (asc) or greatest (desc) element, missing first', async () => {
    interface S {
      _id: string;
      k?: number | string | number[] | null;
      t: { a: number };
    }
    const b = await open();
    const c = b.collection<S>('s');
    const docs: S[] = [
      { _id: 'a', k: 5, t: { a: 2 } },
      { _id: 'b', k: [9, 1], t: { a: 1 } },
      { _id: 'c', t: { a: 3 } },
      { _id: 'd', k: 'x', t: { a: 1 } },
      { _id: 'e', k: 3, t: { a: 2 } },
      { _id: 'f', k: null, t: { a: 9 } },
    ];
    await Promise.all(docs.map((d) => c.insertOne(d)));
    const ids = async (sort: Record<string, 1 | -1>, skip = 0, limit = 0): Promise<string[]> =>
      (await c.find({}, { sort, skip, limit })).map((d) => d._id);
    expect(await ids({ k: 1, _id: 1 })).toEqual(['c', 'f', 'b', 'e', 'a', 'd']);
    expect(await ids({ k: -1, _id: 1 })).toEqual(['d', 'b', 'a', 'e', 'c', 'f']);
    expect(await ids({ 't.a': 1, _id: -1 }, 1, 3)).toEqual(['b', 'e', 'a']);
    await b.close();
  });

  test('a repeated query sees writes made between the two', async () => {
    const b = await open();
    const c = b.collection<Item>('items');
    for (let i = 0; i < 5; i++) await c.insertOne({ _id: `i${i}`, n: i });
    expect(await c.countDocuments({ n: { $gte: 2 } })).toBe(3);
    await c.insertOne({ _id: 'i9', n: 9 });
    expect(await c.countDocuments({ n: { $gte: 2 } })).toBe(4);
    await c.deleteOne({ _id: 'i2' });
    expect((await c.find({ n: { $gte: 2 } })).map((d) => d._id).sort()).toEqual(['i3', 'i4', 'i9']);
    await b.close();
  });

  test('a second process cannot open the same data directory', async () => {
    const b = await open();
    fs.writeFileSync(path.join(dir, 'LOCK'), String(process.ppid));
    await expect(open()).rejects.toThrow(/in use/);
    await b.close();
  });
});
