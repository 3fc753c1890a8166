import fc from 'fast-check';
import { valuesAtPath, keyOf } from '../src/store/embedded/indexes';
import { compileMatcher } from '../src/store/embedded/matcher';
const scalar = fc.oneof(fc.constantFrom('x', 'y'), fc.constantFrom(1, 2), fc.boolean(), fc.constant(null));
const leaf = fc.oneof(scalar, fc.array(scalar, { maxLength: 2 }));
const entry = fc.oneof(fc.record({ b: leaf }, { requiredKeys: [] }), leaf);
const a = fc.oneof(entry, fc.array(entry, { maxLength: 3 }));
const shape = fc.record({ a, d: fc.boolean() }, { requiredKeys: ['d'] });
const shapes = fc.sample(shape, { numRuns: 150, seed: 42 });
const docs = shapes.map((sh, i) => ({ _id: `t${i}`, d: sh.d, idx: sh.a === undefined ? {} : { a: sh.a } }));
for (const [f, path, v] of [[{ 'idx.a': null }, ['idx', 'a'], null], [{ 'idx.a.b': null }, ['idx', 'a', 'b'], null]] as const) {
const m = compileMatcher(f as never)!;
for (const d of docs) {
  const keys = valuesAtPath(d, path as never).map(keyOf);
  const inIdx = keys.includes(keyOf(v));
  if (inIdx !== m(d)) console.log(JSON.stringify(f), JSON.stringify(d.idx), 'index', inIdx, 'compiled', m(d));
}}
