import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Query } from 'mingo';
import type { Filter, Sort } from '../../src/store/backend';
import { LogCollection, type LogView } from '../../src/store/embedded/log-collection';
import { RecordLog, type RecordMeta } from '../../src/store/embedded/record-log';

/**
 * LogCollection answers like MongoDB would over the same documents: find (filter, sort, skip,
 * limit) and count are checked against mingo on random queries, whichever way the log plans them
 * (postings, order ranges, record-order sorts, or a full scan and sort).
 */
interface Doc {
  _id: string;
  seq: number;
  lastUpdated: string;
  deleted: boolean;
  v: number;
  idx: { p: Array<{ r: string }>; c: Array<{ c: string }> };
}

const PATIENTS = ['P1', 'P2', 'P3', 'P4'];
const CODES = ['x', 'y', 'z'];
const T0 = Date.parse('2024-01-01T00:00:00.000Z');

function doc(n: number, rnd: () => number): Doc {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const ps = [...new Set([pick(PATIENTS), ...(rnd() < 0.3 ? [pick(PATIENTS)] : [])])];
  return {
    _id: String(n).padStart(6, '0'),
    seq: n,
    // Several documents share a millisecond: order ties.
    lastUpdated: new Date(T0 + Math.floor(n / 3) * 1000).toISOString(),
    deleted: false,
    v: Math.floor(rnd() * 10),
    idx: { p: ps.map((r) => ({ r })), c: [{ c: pick(CODES) }] },
  };
}

const keysOf = (d: Doc): string[] => [
  ...d.idx.p.map((p) => `idx.p.r\u0000${p.r}`),
  ...d.idx.c.map((c) => `idx.c.c\u0000${c.c}`),
];

const patient = fc.constantFrom(...PATIENTS, 'P9');
const code = fc.constantFrom(...CODES);
const instant = fc.integer({ min: -2, max: 70 }).map((s) => new Date(T0 + s * 1000).toISOString());
const condition: fc.Arbitrary<Filter> = fc.oneof(
  patient.map((p) => ({ 'idx.p.r': p })),
  fc.array(patient, { minLength: 1, maxLength: 3 }).map((ps) => ({ 'idx.p.r': { $in: ps } })),
  code.map((c) => ({ idx: { $exists: true }, 'idx.c': { $elemMatch: { c } } })),
  instant.map((t) => ({ lastUpdated: { $gte: t } })),
  fc.tuple(instant, instant).map(([a, b]) => ({ lastUpdated: { $gt: a, $lte: b } })),
  fc.integer({ min: 0, max: 9 }).map((v) => ({ v: { $gt: v } })),
  fc.integer({ min: 1, max: 210 }).map((n) => ({ _id: String(n).padStart(6, '0') })),
  fc.constant({ deleted: false }),
  fc.constantFrom<Filter>(
    { 'idx.q': 'x' },
    { 'idx.q.c': { $in: ['x'] } },
    { 'idx.q': { $regex: '^x' } },
    { 'idx.q': { $elemMatch: { c: 'x' } } },
    { 'idx.q': { $exists: false } },
    { 'idx.q': { $ne: 'x' } },
    { 'idx.q': { $exists: true } },
  ),
  fc.constant({ deleted: true }),
  fc.tuple(patient, code).map(([p, c]) => ({ $or: [{ 'idx.p.r': p }, { 'idx.c.c': c }] })),
  fc.tuple(patient, fc.integer({ min: 0, max: 9 })).map(([p, v]) => ({ $or: [{ 'idx.p.r': p }, { v }] })),
);
const filter: fc.Arbitrary<Filter> = fc
  .array(condition, { minLength: 0, maxLength: 3 })
  .map((cs) => (cs.length === 0 ? {} : cs.length === 1 ? (cs[0] as Filter) : { $and: cs }));
const sort: fc.Arbitrary<Sort | undefined> = fc.constantFrom<Sort | undefined>(
  undefined,
  { _id: 1 },
  { seq: -1 },
  { lastUpdated: -1, _id: -1 },
  { lastUpdated: 1, _id: 1 },
  { lastUpdated: -1, _id: 1 },
  { v: 1, _id: 1 },
  { v: -1, seq: -1 },
);

describe('LogCollection', () => {
  let dir: string;
  let log: RecordLog;
  let docs: Doc[];
  let coll: LogCollection<Doc>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'log-collection-'));
    let seed = 7;
    const rnd = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    docs = Array.from({ length: 200 }, (_, i) => doc(i + 1, rnd));
    const describe = (json: string): RecordMeta => {
      const d = JSON.parse(json) as Doc;
      return { order: Date.parse(d.lastUpdated), keys: keysOf(d) };
    };
    ({ log } = await RecordLog.open(path.join(dir, 'log'), describe));
    await Promise.all(docs.map((d) => log.append(JSON.stringify(d), describe(JSON.stringify(d)))));
    const view: LogView<Doc> = {
      log,
      materialize: (json) => JSON.parse(json) as Doc,
      keyFields: { _id: (v) => (/^\d{6}$/.test(v) ? Number(v) : undefined) },
      constants: { deleted: false },
      absent: ['idx.q'],
      orderedFields: () =>
        new Map([
          ['seq', 'unique'],
          ['_id', 'unique'],
          ['lastUpdated', 'ties'],
        ]),
      orderField: {
        name: 'lastUpdated',
        toOrder: (v) =>
          typeof v === 'string' && new Date(Date.parse(v)).toISOString() === v ? Date.parse(v) : undefined,
      },
      postingKey: (p, v) => (p === 'idx.p.r' || p === 'idx.c.c' ? `${p}\u0000${String(v)}` : undefined),
    };
    coll = new LogCollection('t', view);
  });
  afterAll(async () => {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const expected = (f: Filter, s: Sort | undefined, skip: number, limit: number): string[] => {
    let c = new Query(f, {}).find<Doc>(docs);
    // MongoDB leaves the order of an unsorted find open; the log answers in record order.
    c = c.sort(s ?? { seq: 1 });
    if (skip > 0) c = c.skip(skip);
    if (limit > 0) c = c.limit(limit);
    return c.all().map((d) => d._id);
  };

  test('find and countDocuments agree with mingo', async () => {
    await fc.assert(
      fc.asyncProperty(filter, sort, fc.nat(30), fc.nat(25), async (f, s, skip, limit) => {
        const got = await coll.find(f, { ...(s ? { sort: s } : {}), skip, limit });
        // Among equal sort keys the order is MongoDB's to choose: compare as ordered by the sort, then by id.
        const want = expected(f, s, skip, limit);
        if (s && !('_id' in s) && !('seq' in s)) {
          expect(got.map((d) => d._id).sort()).toEqual([...want].sort());
        } else {
          expect(got.map((d) => d._id)).toEqual(want);
        }
        expect(await coll.countDocuments(f)).toBe(new Query(f, {}).find<Doc>(docs).all().length);
      }),
      { numRuns: 400 },
    );
  });

  test('stream yields what find returns, in order', async () => {
    const f = { 'idx.p.r': 'P2' };
    const streamed: string[] = [];
    for await (const d of coll.stream(f, { sort: { seq: -1 } })) streamed.push(d._id);
    expect(streamed).toEqual((await coll.find(f, { sort: { seq: -1 } })).map((d) => d._id));
    expect(streamed.length).toBeGreaterThan(10);
  });

  test('projection keeps only the asked fields', async () => {
    const [d] = await coll.find({ _id: '000005' }, { projection: { _id: 1 } });
    expect(d).toEqual({ _id: '000005' });
  });

  test('writes are refused', async () => {
    await expect(coll.insertOne(docs[0] as Doc)).rejects.toThrow(/append-only/);
    await expect(coll.deleteOne()).rejects.toThrow(/append-only/);
  });
});
