import fc from 'fast-check';
import { sortByScalarKeys } from '../../src/store/embedded/sort';

/**
 * A search page is the first `keep` documents of the order: selecting them without sorting every
 * match must give exactly what a full (stable) sort gives, for any data, fields and directions.
 */
const scalar = fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: -3, max: 3 }), fc.constant(null));
const doc = fc.record(
  {
    _id: fc.string({ minLength: 1, maxLength: 3 }),
    x: fc.oneof(scalar, fc.array(scalar, { maxLength: 3 })),
    y: fc.record({ z: scalar }, { requiredKeys: [] }),
  },
  { requiredKeys: ['_id'] },
);
const sortSpec = fc.uniqueArray(
  fc.tuple(fc.constantFrom('x', 'y.z', '_id'), fc.constantFrom<1 | -1>(1, -1)),
  {
    minLength: 1,
    maxLength: 3,
    selector: ([f]) => f,
  },
);

describe('sortByScalarKeys', () => {
  it('keep = the first documents of the full sort', () => {
    fc.assert(
      fc.property(
        fc.array(doc, { maxLength: 60 }),
        sortSpec,
        fc.integer({ min: 1, max: 12 }),
        (docs, spec, keep) => {
          const sort = Object.fromEntries(spec);
          const full = sortByScalarKeys(docs, sort);
          const partial = sortByScalarKeys(docs, sort, keep);
          expect(partial).toEqual(full?.slice(0, keep));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('orders by a top-level field without walking a path, nulls first', () => {
    const docs = [{ _id: 'b' }, { _id: 'a', v: 2 }, { _id: 'c', v: 1 }];
    expect(sortByScalarKeys(docs, { v: 1 })?.map((d) => d._id)).toEqual(['b', 'c', 'a']);
    expect(sortByScalarKeys(docs, { v: -1 }, 1)?.map((d) => d._id)).toEqual(['a']);
  });

  it('gives up on non-scalar sort values (the caller falls back to mingo)', () => {
    expect(sortByScalarKeys([{ _id: 'a', v: { w: 1 } }], { v: 1 })).toBeUndefined();
  });
});
