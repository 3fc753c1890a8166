import { Query } from 'mingo';
import type {
  BaseDoc,
  Collection,
  Filter,
  FindOptions,
  IndexSpec,
  Sort,
  UpdateResult,
  WriteOptions,
} from '../backend';
import { compileMatcher } from './matcher';
import type { RecordLog } from './record-log';
import { sortByScalarKeys } from './sort';

type Doc = Record<string, unknown>;

/** How the documents of a collection come out of the records of a log. */
export interface LogView<T extends BaseDoc> {
  readonly log: RecordLog;
  /** The document that record n stands for. */
  materialize(json: string, n: number): T;
  /** Fields whose value names at most one record (`_id`), and the record a value names. */
  readonly keyFields: Readonly<Record<string, (value: string) => number | undefined>>;
  /** Fields with the same value in every document ({deleted: false}): conditions on them are decided once. */
  readonly constants: Readonly<Doc>;
  /** Paths no document has (search parameters these documents never carry): nothing is there to match. */
  readonly absent?: readonly string[];
  /**
   * Fields that never decrease from one record to the next: 'unique' when they also never repeat
   * (a sort on them is the record order), 'ties' when equal values may follow each other.
   */
  orderedFields(): ReadonlyMap<string, 'unique' | 'ties'>;
  /** The field whose values are the log's order keys (compared as this function maps them), if any. */
  readonly orderField?: { name: string; toOrder(value: unknown): number | undefined };
  /** The posting key of an equality on `path` (as RecordMeta.keys holds it), or undefined when not posted. */
  postingKey(path: string, value: string | number | boolean): string | undefined;
}

/** Documents kept materialized, most recently used last. */
const CACHE_DOCS = 10_000;
/** Records read and tested per step of a scan (and between two yields of a stream). */
const BLOCK = 512;

/**
 * The candidates of a query: record numbers within [first, last], optionally only those of `list`
 * (ascending). `exact` when the plan decides the filter by itself (no document needs testing).
 */
interface Plan {
  first: number;
  last: number;
  list?: number[];
  exact: boolean;
}

function intersect(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as number;
    const y = b[j] as number;
    if (x === y) {
      out.push(x);
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  return out;
}

function union(lists: ReadonlyArray<readonly number[]>): number[] {
  const all = new Set<number>();
  for (const l of lists) for (const n of l) all.add(n);
  return [...all].sort((x, y) => x - y);
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** Whether a condition can hold only where the path has a value (so never on an absent path). */
function requiresPresence(cond: unknown): boolean {
  if (isScalar(cond)) return true;
  if (!cond || typeof cond !== 'object' || Array.isArray(cond)) return false;
  const ops = Object.entries(cond as Doc);
  return (
    ops.length > 0 &&
    ops.every(([op, v]) => {
      switch (op) {
        case '$eq':
          return v !== null;
        case '$in':
          return Array.isArray(v) && v.length > 0 && v.every((x) => x !== null);
        case '$exists':
          return v === true;
        case '$elemMatch':
        case '$regex':
        case '$options':
        case '$all':
        case '$gt':
        case '$gte':
        case '$lt':
        case '$lte':
          return true;
        default:
          return false;
      }
    })
  );
}

function equalityValues(cond: unknown): Array<string | number | boolean> | undefined {
  if (isScalar(cond)) return [cond];
  if (cond && typeof cond === 'object' && !Array.isArray(cond)) {
    const keys = Object.keys(cond);
    if (keys.length !== 1) return undefined;
    const v = (cond as Doc)[keys[0] as string];
    if (keys[0] === '$eq' && isScalar(v)) return [v];
    if (keys[0] === '$in' && Array.isArray(v) && v.every(isScalar)) return v;
  }
  return undefined;
}

/**
 * A read-only Collection over a RecordLog: the MongoDB find/count/stream surface the ResourceStore
 * and search use, with MongoDB semantics (the engine's compiled matcher, or mingo), for documents
 * materialized from records on demand. Queries are planned by what the log keeps in memory:
 * `_id`, equality on posted fields, and ranges of the order field narrow the records read; sorts
 * that follow the record order read only as far as the page needs. Writes are refused: the owner
 * appends records to the log itself.
 */
export class LogCollection<T extends BaseDoc> implements Collection<T> {
  private readonly cache = new Map<number, T>();
  private readonly queries = new Map<string, (doc: Doc) => boolean>();

  constructor(
    readonly name: string,
    private readonly view: LogView<T>,
  ) {}

  // ---- planning ---------------------------------------------------------------------------------

  private plan(filter: Filter): Plan {
    const size = this.view.log.size;
    const p: Plan = { first: 1, last: size, exact: true };
    const lists: Array<readonly number[]> = [];
    const narrow = (f: Filter): void => {
      for (const [k, cond] of Object.entries(f)) {
        if (k === '$and' && Array.isArray(cond)) {
          for (const sub of cond) {
            if (sub && typeof sub === 'object' && !Array.isArray(sub)) narrow(sub as Filter);
            else p.exact = false;
          }
          continue;
        }
        if (k === '$or' && Array.isArray(cond) && cond.length > 0) {
          const branches = cond.map((sub) =>
            sub && typeof sub === 'object' && !Array.isArray(sub)
              ? this.postedList(sub as Filter)
              : undefined,
          );
          if (branches.every((b) => b !== undefined)) lists.push(union(branches as number[][]));
          // A union of lists is exact only when each branch was (postedList checks that).
          else p.exact = false;
          continue;
        }
        if (k.startsWith('$')) {
          p.exact = false;
          continue;
        }
        if (this.isAbsent(k) && requiresPresence(cond)) {
          p.last = 0;
          continue;
        }
        if (Object.prototype.hasOwnProperty.call(this.view.constants, k)) {
          if (!new Query({ [k]: cond }, {}).test(this.view.constants)) p.last = 0;
          continue;
        }
        if (this.view.orderField?.name === k && this.orderRange(cond, p)) continue;
        const list = this.conditionList(k, cond);
        if (list) lists.push(list);
        else p.exact = false;
      }
    };
    narrow(filter);
    if (lists.length > 0) {
      let list = lists.reduce((a, b) => (a.length <= b.length ? a : b));
      for (const other of lists) if (other !== list) list = intersect(list, other);
      p.list = list.filter((n) => n >= p.first && n <= p.last);
    }
    return p;
  }

  private isAbsent(path: string): boolean {
    return (this.view.absent ?? []).some((a) => path === a || path.startsWith(`${a}.`));
  }

  /** The records of an equality (or $in, or $elemMatch of equalities) on one field, when posted or `_id`. */
  private conditionList(field: string, cond: unknown): readonly number[] | undefined {
    const values = equalityValues(cond);
    if (values) {
      const recordOf = Object.prototype.hasOwnProperty.call(this.view.keyFields, field)
        ? this.view.keyFields[field]
        : undefined;
      if (recordOf) {
        const ns = values
          .map((v) => (typeof v === 'string' ? recordOf(v) : undefined))
          .filter((n): n is number => n !== undefined && n <= this.view.log.size);
        return [...new Set(ns)].sort((a, b) => a - b);
      }
      const lists: Array<readonly number[]> = [];
      for (const v of values) {
        const key = this.view.postingKey(field, v);
        if (key === undefined) return undefined;
        lists.push(this.view.log.lookup(key));
      }
      return lists.length === 1 ? (lists[0] as readonly number[]) : union(lists);
    }
    if (cond && typeof cond === 'object' && !Array.isArray(cond)) {
      const entries = Object.entries(cond as Doc);
      const em = entries.length === 1 && entries[0]?.[0] === '$elemMatch' ? entries[0][1] : undefined;
      if (em && typeof em === 'object' && !Array.isArray(em)) {
        // Only an $elemMatch of one posted equality is exact: several must hold in the same element.
        const parts = Object.entries(em as Doc);
        if (parts.length !== 1) return undefined;
        const [sub, v] = parts[0] as [string, unknown];
        return sub.startsWith('$') ? undefined : this.conditionList(`${field}.${sub}`, v);
      }
    }
    return undefined;
  }

  /** A filter of only posted equalities (all of them: intersected), as records; undefined otherwise. */
  private postedList(f: Filter): number[] | undefined {
    let out: number[] | undefined;
    for (const [k, cond] of Object.entries(f)) {
      if (k.startsWith('$')) return undefined;
      const list = this.conditionList(k, cond);
      if (!list) return undefined;
      out = out ? intersect(out, list) : [...list];
    }
    return out;
  }

  /** Narrows the plan's range by comparisons on the order field; false when `cond` is not one. */
  private orderRange(cond: unknown, p: Plan): boolean {
    const of = this.view.orderField;
    if (!of || !cond || typeof cond !== 'object' || Array.isArray(cond)) return false;
    const ops = Object.entries(cond as Doc);
    if (ops.length === 0 || !ops.every(([op]) => ['$gt', '$gte', '$lt', '$lte'].includes(op))) return false;
    const bounds = ops.map(([op, v]) => [op, of.toOrder(v)] as const);
    if (bounds.some(([, o]) => o === undefined)) return false;
    for (const [op, o] of bounds) {
      const [first, last] =
        op === '$gt' || op === '$gte'
          ? this.view.log.orderRange(o as number, Infinity, op === '$gt')
          : this.view.log.orderRange(-Infinity, o as number, false, op === '$lt');
      p.first = Math.max(p.first, first);
      p.last = Math.min(p.last, last);
    }
    return true;
  }

  // ---- reading ----------------------------------------------------------------------------------

  private test(filter: Filter): (doc: Doc) => boolean {
    const key = JSON.stringify(filter);
    let q = this.queries.get(key);
    if (!q) {
      const fast = compileMatcher(filter);
      if (fast) q = fast;
      else {
        const mq = new Query(filter, {});
        q = (d: Doc) => mq.test(d);
      }
      if (this.queries.size >= 200) this.queries.delete(this.queries.keys().next().value as string);
      this.queries.set(key, q);
    }
    return q;
  }

  private cached(n: number): T | undefined {
    const d = this.cache.get(n);
    if (d) {
      this.cache.delete(n);
      this.cache.set(n, d);
    }
    return d;
  }

  private remember(n: number, d: T): void {
    this.cache.set(n, d);
    if (this.cache.size > CACHE_DOCS) this.cache.delete(this.cache.keys().next().value as number);
  }

  /** The documents of these records (ascending or not), read in as few pieces as they allow. */
  private docsOf(ns: readonly number[]): T[] {
    const out = new Array<T | undefined>(ns.length);
    const missing: number[] = [];
    ns.forEach((n, i) => {
      const d = this.cached(n);
      if (d) out[i] = d;
      else missing.push(i);
    });
    if (missing.length > 0) {
      const wanted = new Map<number, number[]>();
      for (const i of missing) {
        const n = ns[i] as number;
        const at = wanted.get(n);
        if (at) at.push(i);
        else wanted.set(n, [i]);
      }
      const sorted = [...wanted.keys()].sort((a, b) => a - b);
      // Consecutive records in one read; scattered ones one by one.
      let s = 0;
      while (s < sorted.length) {
        let e = s;
        while (e + 1 < sorted.length && (sorted[e + 1] as number) === (sorted[e] as number) + 1) e++;
        this.view.log.readRange(sorted[s] as number, sorted[e] as number, (json, n) => {
          const d = this.view.materialize(json, n);
          this.remember(n, d);
          for (const i of wanted.get(n) ?? []) out[i] = d;
        });
        s = e + 1;
      }
    }
    return out as T[];
  }

  /** Record numbers of the plan in the given direction, BLOCK at a time. */
  private *blocks(p: Plan, dir: 1 | -1): Generator<number[]> {
    if (p.list) {
      const l = dir === 1 ? p.list : [...p.list].reverse();
      for (let i = 0; i < l.length; i += BLOCK) yield l.slice(i, i + BLOCK);
      return;
    }
    if (dir === 1) {
      for (let n = p.first; n <= p.last; n += BLOCK) {
        const b: number[] = [];
        for (let k = n; k <= Math.min(p.last, n + BLOCK - 1); k++) b.push(k);
        yield b;
      }
    } else {
      for (let n = p.last; n >= p.first; n -= BLOCK) {
        const b: number[] = [];
        for (let k = n; k >= Math.max(p.first, n - BLOCK + 1); k--) b.push(k);
        yield b;
      }
    }
  }

  private planSize(p: Plan): number {
    return p.list ? p.list.length : Math.max(0, p.last - p.first + 1);
  }

  /** The direction of a sort that is the record order (or its reverse), if it is one. */
  private recordOrder(sort: Sort | undefined): 1 | -1 | undefined {
    const entries = sort ? Object.entries(sort) : [];
    if (entries.length === 0) return 1;
    const ordered = this.view.orderedFields();
    const dir = entries[0]?.[1] as 1 | -1;
    for (const [field, d] of entries) {
      const kind = ordered.get(field);
      if (!kind || d !== dir) return undefined;
      if (kind === 'unique') return dir;
    }
    return undefined;
  }

  private select(filter: Filter, options: FindOptions | undefined, each?: (d: T) => void): T[] {
    const p = this.plan(filter);
    const test = p.exact ? undefined : this.test(filter);
    const skip = options?.skip ?? 0;
    const limit = options?.limit && options.limit > 0 ? options.limit : Infinity;
    const dir = this.recordOrder(options?.sort);
    const out: T[] = [];
    if (dir !== undefined) {
      let skipped = 0;
      for (const block of this.blocks(p, dir)) {
        for (const d of this.docsOf(block)) {
          if (test && !test(d as unknown as Doc)) continue;
          if (skipped < skip) {
            skipped++;
            continue;
          }
          out.push(d);
          each?.(d);
          if (out.length >= limit) return out;
        }
      }
      return out;
    }
    const all: T[] = [];
    for (const block of this.blocks(p, 1))
      for (const d of this.docsOf(block)) if (!test || test(d as unknown as Doc)) all.push(d);
    const sort = options?.sort as Sort;
    const keep = limit === Infinity ? Infinity : skip + limit;
    const sorted =
      sortByScalarKeys(all as unknown as Doc[], sort, keep) ??
      new Query({}, {})
        .find<Doc>(all as unknown as Doc[])
        .sort(sort)
        .all();
    return (sorted as unknown as T[]).slice(skip, skip + limit);
  }

  private project(docs: T[], options?: FindOptions): T[] {
    if (!options?.projection || Object.keys(options.projection).length === 0) return docs;
    return new Query({}, {}).find<Doc>(docs as unknown as Doc[], options.projection).all() as unknown as T[];
  }

  async findOne(filter: Filter, options?: FindOptions): Promise<T | null> {
    return (await this.find(filter, { ...options, limit: 1 }))[0] ?? null;
  }

  async find(filter: Filter, options?: FindOptions): Promise<T[]> {
    return this.project(this.select(filter, options), options);
  }

  async *stream(filter: Filter, options?: FindOptions): AsyncIterable<T> {
    const dir = this.recordOrder(options?.sort);
    if (dir === undefined) {
      yield* await this.find(filter, options);
      return;
    }
    // In record order a stream reads block by block, yielding to other work between blocks.
    const p = this.plan(filter);
    const test = p.exact ? undefined : this.test(filter);
    let skip = options?.skip ?? 0;
    let left = options?.limit && options.limit > 0 ? options.limit : Infinity;
    for (const block of this.blocks(p, dir)) {
      const page: T[] = [];
      for (const d of this.docsOf(block)) {
        if (test && !test(d as unknown as Doc)) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        page.push(d);
        if (--left === 0) break;
      }
      for (const d of this.project(page, options)) yield d;
      if (left === 0) return;
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  async countDocuments(filter: Filter): Promise<number> {
    const p = this.plan(filter);
    if (p.exact) return this.planSize(p);
    const test = this.test(filter);
    let n = 0;
    for (const block of this.blocks(p, 1))
      for (const d of this.docsOf(block)) if (test(d as unknown as Doc)) n++;
    return n;
  }

  // ---- writes: refused ----------------------------------------------------------------------------

  private refuse(): never {
    throw new Error(
      `${this.name} is an append-only log: its documents cannot be written through the collection`,
    );
  }

  async insertOne(_doc: T, _options?: WriteOptions): Promise<void> {
    this.refuse();
  }

  async replaceOne(): Promise<UpdateResult> {
    this.refuse();
  }

  async updateOne(): Promise<UpdateResult> {
    this.refuse();
  }

  async deleteOne(): Promise<{ deletedCount: number }> {
    this.refuse();
  }

  async deleteMany(): Promise<{ deletedCount: number }> {
    this.refuse();
  }

  /** The log keeps its own lookups; index requests (the ResourceStore's for every type) are no-ops. */
  async createIndex(_spec: IndexSpec): Promise<void> {
    return undefined;
  }
}
