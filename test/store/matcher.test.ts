import fc from 'fast-check';
import { Query } from 'mingo';
import { compileMatcher } from '../../src/store/embedded/matcher';

/**
 * The compiled matcher must agree with mingo (MongoDB semantics) on every filter it accepts.
 * Documents and filters are generated over a small vocabulary so that matches are frequent.
 */
const key = fc.constantFrom('a', 'b', 'c');
const scalar = fc.oneof(fc.constantFrom('x', 'y', 'xy', 'Z'), fc.integer({ min: -2, max: 3 }), fc.boolean());
const leaf = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }));
const inner = fc.dictionary(key, leaf, { maxKeys: 3, noNullPrototype: true });
// Documents inside arrays hold scalars: mingo does not reach arrays nested under arrays of
// documents (`a.b` with a: [{b: ['x']}]), where MongoDB does; there the matcher follows MongoDB,
// so the embedded store answers like a MongoDB server would.
const flat = fc.dictionary(key, scalar, { maxKeys: 3, noNullPrototype: true });
const value = fc.oneof(leaf, inner, fc.array(flat, { maxLength: 3 }));
// `b` holds scalars and `c` documents, so that $elemMatch is generated only where MongoDB defines it
// (mingo also matches a field sub-filter against scalar elements, which MongoDB does not).
const doc = fc.record(
  {
    _id: fc.constantFrom('1', '2', '3'),
    a: value,
    b: fc.array(scalar, { maxLength: 4 }),
    c: fc.array(flat, { maxLength: 3 }),
  },
  { requiredKeys: ['_id'] },
);

const path = fc.oneof(
  key,
  fc.tuple(key, key).map(([x, y]) => `${x}.${y}`),
);
const ordered = fc.oneof(fc.constantFrom('x', 'y', 'Z'), fc.integer({ min: -2, max: 3 }));
const op: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  scalar.map((v) => ({ $eq: v })),
  scalar.map((v) => ({ $ne: v })),
  fc.array(scalar, { maxLength: 3 }).map((v) => ({ $in: v })),
  fc.array(scalar, { maxLength: 3 }).map((v) => ({ $nin: v })),
  fc.boolean().map((v) => ({ $exists: v })),
  fc.tuple(fc.constantFrom('$gt', '$gte', '$lt', '$lte'), ordered).map(([o, v]) => ({ [o]: v })),
  fc.constantFrom('^x', 'y$', 'X').map((r) => ({ $regex: r, $options: 'i' })),
);
const elemMatch = fc.oneof(
  fc.tuple(key, scalar).map(([k, v]) => ({ c: { $elemMatch: { [k]: v } } })),
  fc.tuple(key, op).map(([k, o]) => ({ c: { $elemMatch: { [k]: o } } })),
  fc.tuple(fc.constantFrom('$gt', '$lt'), ordered).map(([o, v]) => ({ b: { $elemMatch: { [o]: v } } })),
);
const condition = fc.oneof(
  scalar,
  op,
  fc.tuple(op, op).map(([x, y]) => ({ ...x, ...y })),
);
const field = fc.oneof(
  fc.tuple(path, condition).map(([p, c]) => ({ [p]: c })),
  elemMatch,
);
const filter: fc.Arbitrary<Record<string, unknown>> = fc.letrec((tie) => ({
  f: fc.oneof(
    { depthSize: 'small' },
    field,
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((fs) => ({ $and: fs })),
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((fs) => ({ $or: fs })),
    fc.array(tie('f'), { minLength: 1, maxLength: 2 }).map((fs) => ({ $nor: fs })),
  ),
})).f as fc.Arbitrary<Record<string, unknown>>;

describe('compiled matcher', () => {
  test('agrees with mingo on generated documents and filters', () => {
    fc.assert(
      fc.property(fc.array(doc, { minLength: 1, maxLength: 6 }), filter, (docs, f) => {
        const fast = compileMatcher(f);
        if (!fast) return true;
        const q = new Query(f, {});
        for (const d of docs) expect(fast(d)).toBe(q.test(d as Record<string, unknown>));
        return true;
      }),
      { numRuns: 3000 },
    );
  });

  test('accepts the filter shapes search compiles', () => {
    expect(
      compileMatcher({
        $and: [{ deleted: false }, { 'idx.code': { $elemMatch: { s: 'http://loinc.org', c: '1' } } }],
      }),
    ).toBeDefined();
    expect(
      compileMatcher({
        'idx.date': { $elemMatch: { $or: [{ hi: { $gt: 5 } }, { lo: { $gte: 1 }, hi: { $lte: 9 } }] } },
      }),
    ).toBeDefined();
    expect(compileMatcher({ 'idx.family.n': { $regex: '^smi' } })).toBeDefined();
  });

  test('leaves what it does not know to mingo', () => {
    expect(compileMatcher({ a: { $where: 'true' } })).toBeUndefined();
    expect(compileMatcher({ a: { b: 1 } })).toBeUndefined();
    expect(compileMatcher({ a: null })).toBeUndefined();
    expect(compileMatcher({ 'a.0': 1 })).toBeUndefined();
  });
});
