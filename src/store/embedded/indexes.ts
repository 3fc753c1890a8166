import { Query } from 'mingo';
import type { Filter, IndexSpec } from '../backend';

type Doc = Record<string, unknown>;

/** All values at a dotted path, descending through arrays as MongoDB does for multikey indexes. */
export function valuesAtPath(doc: unknown, pathParts: readonly string[], from = 0): unknown[] {
  if (from === pathParts.length) return Array.isArray(doc) ? [...doc, doc] : [doc];
  if (Array.isArray(doc)) return doc.flatMap((d) => valuesAtPath(d, pathParts, from));
  if (doc === null || typeof doc !== 'object') return [];
  const key = pathParts[from] as string;
  if (!Object.prototype.hasOwnProperty.call(doc, key)) return from === pathParts.length - 1 ? [null] : [];
  return valuesAtPath((doc as Doc)[key], pathParts, from + 1);
}

/** Index keys are strings; scalars of different BSON types must not collide. */
export function keyOf(v: unknown): string | undefined {
  if (v === null || v === undefined) return 'n:';
  switch (typeof v) {
    case 'string':
      return `s:${v}`;
    case 'number':
      return `d:${v}`;
    case 'boolean':
      return `b:${v ? 1 : 0}`;
    default:
      return undefined;
  }
}

/**
 * A secondary index of the embedded engine. Single-field indexes answer equality and $in lookups
 * (the planner in engine.ts); unique indexes (single or compound) enforce uniqueness.
 */
export class SecondaryIndex {
  readonly fields: string[];
  private readonly paths: string[][];
  private readonly partial: Query | undefined;
  /** key -> ids */
  private readonly map = new Map<string, Set<string>>();

  constructor(readonly spec: IndexSpec) {
    this.fields = Object.keys(spec.key);
    this.paths = this.fields.map((f) => f.split('.'));
    this.partial = spec.partialFilterExpression ? new Query(spec.partialFilterExpression, {}) : undefined;
  }

  /** The index keys a document produces (several for array fields). */
  keys(doc: Doc): string[] {
    if (this.partial && !this.partial.test(doc)) return [];
    let combos: string[] = [''];
    for (const p of this.paths) {
      const vals = valuesAtPath(doc, p)
        .map(keyOf)
        .filter((k): k is string => k !== undefined);
      const uniq = vals.length === 0 ? ['n:'] : [...new Set(vals)];
      const next: string[] = [];
      for (const c of combos) for (const v of uniq) next.push(c === '' ? v : `${c}\u0000${v}`);
      combos = next;
    }
    return combos;
  }

  /** The id already holding one of these keys, other than `id` itself. */
  conflict(keys: string[], id: string): string | undefined {
    if (!this.spec.unique) return undefined;
    for (const k of keys) {
      const s = this.map.get(k);
      if (s) for (const other of s) if (other !== id) return other;
    }
    return undefined;
  }

  add(keys: string[], id: string): void {
    for (const k of keys) {
      let s = this.map.get(k);
      if (!s) {
        s = new Set();
        this.map.set(k, s);
      }
      s.add(id);
    }
  }

  remove(keys: string[], id: string): void {
    for (const k of keys) {
      const s = this.map.get(k);
      if (s) {
        s.delete(id);
        if (s.size === 0) this.map.delete(k);
      }
    }
  }

  lookup(key: string): ReadonlySet<string> | undefined {
    return this.map.get(key);
  }
}

/**
 * Ids that can match `filter` according to single-field indexes, or undefined when no index helps
 * (then the caller scans). Only sound narrowings (supersets of the matches) are used:
 * - equality or $in on an indexed path;
 * - `{path: {$elemMatch: {key: <equality>, ...}}}` through an index on `path.key`;
 * - a `$or` whose every branch narrows (the union of the branches);
 * - any of these at the top level or inside `$and` (the smallest wins).
 * `indexFor` may build an index on demand (the engine's auto-indexing).
 */
export function candidateIds(
  filter: Filter,
  indexFor: (field: string) => SecondaryIndex | undefined,
): ReadonlySet<string> | undefined {
  const lookupValues = (field: string, values: unknown[]): ReadonlySet<string> | undefined => {
    if (field === '_id') return new Set(values.filter((v): v is string => typeof v === 'string'));
    const idx = indexFor(field);
    if (!idx) return undefined;
    const keys: string[] = [];
    for (const v of values) {
      const k = keyOf(v);
      if (k === undefined) return undefined;
      keys.push(k);
    }
    if (keys.length === 1) return idx.lookup(keys[0] as string) ?? EMPTY;
    const out = new Set<string>();
    for (const k of keys) for (const id of idx.lookup(k) ?? []) out.add(id);
    return out;
  };
  const condition = (field: string, cond: unknown): ReadonlySet<string> | undefined => {
    const values = equalityValues(cond);
    if (values !== undefined) return lookupValues(field, values);
    if (cond && typeof cond === 'object' && !Array.isArray(cond)) {
      const em = (cond as Doc).$elemMatch;
      if (em && typeof em === 'object' && !Array.isArray(em)) {
        let best: ReadonlySet<string> | undefined;
        for (const [k, v] of Object.entries(em as Doc)) {
          if (k.startsWith('$')) continue;
          const vals = equalityValues(v);
          if (vals === undefined) continue;
          const ids = lookupValues(`${field}.${k}`, vals);
          if (ids && (!best || ids.size < best.size)) best = ids;
        }
        return best;
      }
    }
    return undefined;
  };
  const narrow = (f: Filter): ReadonlySet<string> | undefined => {
    let best: ReadonlySet<string> | undefined;
    const offer = (ids: ReadonlySet<string> | undefined): void => {
      if (ids && (!best || ids.size < best.size)) best = ids;
    };
    for (const [k, v] of Object.entries(f)) {
      if (k === '$and' && Array.isArray(v)) {
        for (const sub of v) if (sub && typeof sub === 'object') offer(narrow(sub as Filter));
      } else if (k === '$or' && Array.isArray(v) && v.length > 0) {
        const union = new Set<string>();
        let all = true;
        for (const sub of v) {
          const ids = sub && typeof sub === 'object' ? narrow(sub as Filter) : undefined;
          if (!ids) {
            all = false;
            break;
          }
          for (const id of ids) union.add(id);
        }
        if (all) offer(union);
      } else if (!k.startsWith('$')) {
        offer(condition(k, v));
      }
    }
    return best;
  };
  return narrow(filter);
}

const EMPTY: ReadonlySet<string> = new Set();

/**
 * An index lookup that decides part of a conjunction by itself: the ids that satisfy one conjunct
 * (equality or $in of strings, numbers or booleans on `_id` or on an indexed path: the index holds
 * every value at the path, as MongoDB's equality sees them), and the rest of the filter, which is
 * all that the candidates still need to pass (undefined: nothing). Undefined when no conjunct is
 * such a lookup. A search's reference or token equality then costs its candidates a test of
 * `deleted: false`, not a walk of the index entries again.
 */
export function exactCandidates(
  filter: Filter,
  indexFor: (field: string) => SecondaryIndex | undefined,
): { ids: ReadonlySet<string>; residual: Filter | undefined } | undefined {
  const conjuncts: Filter[] = [];
  const flatten = (f: Filter): boolean => {
    for (const [k, v] of Object.entries(f)) {
      if (k === '$and' && Array.isArray(v)) {
        for (const sub of v) {
          if (!sub || typeof sub !== 'object' || Array.isArray(sub)) return false;
          if (!flatten(sub as Filter)) return false;
        }
      } else conjuncts.push({ [k]: v });
    }
    return true;
  };
  if (!flatten(filter)) return undefined;
  let best: { ids: ReadonlySet<string>; at: number } | undefined;
  conjuncts.forEach((c, at) => {
    const [field, cond] = Object.entries(c)[0] as [string, unknown];
    if (field.startsWith('$')) return;
    const values = equalityValues(cond);
    if (!values || values.some((v) => !isScalar(v))) return;
    let ids: ReadonlySet<string>;
    if (field === '_id') ids = new Set(values.filter((v): v is string => typeof v === 'string'));
    else {
      const idx = indexFor(field);
      if (!idx || idx.spec.partialFilterExpression) return;
      const keys = values.map((v) => keyOf(v) as string);
      if (keys.length === 1) ids = idx.lookup(keys[0] as string) ?? EMPTY;
      else {
        const union = new Set<string>();
        for (const k of keys) for (const id of idx.lookup(k) ?? []) union.add(id);
        ids = union;
      }
    }
    if (!best || ids.size < best.ids.size) best = { ids, at };
  });
  if (!best) return undefined;
  const chosen = best;
  const rest = conjuncts.filter((_, i) => i !== chosen.at);
  return {
    ids: chosen.ids,
    residual: rest.length === 0 ? undefined : rest.length === 1 ? rest[0] : { $and: rest },
  };
}

function isScalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function equalityValues(cond: unknown): unknown[] | undefined {
  if (isScalar(cond)) return [cond];
  if (cond && typeof cond === 'object' && !Array.isArray(cond)) {
    const entries = Object.entries(cond as Doc);
    const eq = entries.find(([k]) => k === '$eq');
    if (eq && isScalar(eq[1])) return [eq[1]];
    const inn = entries.find(([k]) => k === '$in');
    if (inn && Array.isArray(inn[1]) && inn[1].every(isScalar)) return inn[1];
  }
  return undefined;
}
