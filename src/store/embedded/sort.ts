import { valuesAtPath } from './indexes';

type Doc = Record<string, unknown>;

/** MongoDB's order of BSON types for the scalars the store sorts by: null < numbers < strings < booleans. */
function typeRank(v: unknown): number {
  if (v === null || v === undefined) return 1;
  if (typeof v === 'number') return 2;
  if (typeof v === 'string') return 3;
  if (typeof v === 'boolean') return 8;
  return -1;
}

function compareScalars(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 1) return 0;
  return (a as number | string | boolean) < (b as number | string | boolean)
    ? -1
    : (a as number | string | boolean) > (b as number | string | boolean)
      ? 1
      : 0;
}

/**
 * The sort key of a document for one field, with MongoDB's rules for arrays (the least element for
 * an ascending sort, the greatest for a descending one) and missing fields (null). Undefined when
 * the field holds something other than scalars: the caller then falls back to mingo.
 */
function keyFor(doc: Doc, path: string[], dir: 1 | -1): unknown {
  if (path.length === 1) {
    // A top-level field (`_id`, `lastUpdated`): no path to walk.
    const v = doc[path[0] as string];
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v)) return typeRank(v) < 0 ? undefined : v;
  }
  const values = valuesAtPath(doc, path).filter((v) => !Array.isArray(v));
  if (values.length === 0) return null;
  let best: unknown = undefined;
  for (const v of values) {
    if (typeRank(v) < 0) return undefined;
    if (best === undefined || compareScalars(v, best) * dir < 0) best = v;
  }
  return best ?? null;
}

interface Keyed<D> {
  doc: D;
  keys: unknown[];
}

/**
 * Sorts documents by scalar fields with MongoDB semantics, computing each key once
 * (decorate-sort-undecorate). Returns undefined when a sort field holds non-scalar values.
 * With `keep`, only the first `keep` documents of the order are returned, selected without sorting
 * the rest: a search page of 20 out of thousands of matches.
 */
export function sortByScalarKeys<D extends Doc>(
  docs: D[],
  sort: Record<string, 1 | -1>,
  keep = Infinity,
): D[] | undefined {
  const fields = Object.entries(sort).map(([f, dir]) => ({ path: f.split('.'), dir }));
  const compare = (x: Keyed<D>, y: Keyed<D>): number => {
    for (let i = 0; i < fields.length; i++) {
      const c = compareScalars(x.keys[i], y.keys[i]) * (fields[i] as { dir: 1 | -1 }).dir;
      if (c !== 0) return c;
    }
    return 0;
  };
  const partial = keep * 4 < docs.length;
  // Partial: the best `keep` so far, in order; a document enters only if it beats the last.
  const keyed: Array<Keyed<D>> = [];
  for (const doc of docs) {
    const keys: unknown[] = [];
    for (const f of fields) {
      const k = keyFor(doc, f.path, f.dir);
      if (k === undefined) return undefined;
      keys.push(k);
    }
    const entry = { doc, keys };
    if (!partial) {
      keyed.push(entry);
      continue;
    }
    if (keyed.length === keep && compare(entry, keyed[keep - 1] as Keyed<D>) >= 0) continue;
    // Binary search for the first kept entry that sorts after this one (stable: after equals).
    let lo = 0;
    let hi = keyed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(keyed[mid] as Keyed<D>, entry) <= 0) lo = mid + 1;
      else hi = mid;
    }
    keyed.splice(lo, 0, entry);
    if (keyed.length > keep) keyed.pop();
  }
  if (!partial) keyed.sort(compare);
  const out: D[] = [];
  for (const k of keyed) {
    if (out.length >= keep) break;
    out.push(k.doc);
  }
  return out;
}
