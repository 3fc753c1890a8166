/**
 * A compiler from the MongoDB filters the store emits to plain JavaScript predicates. mingo
 * evaluates any filter, but generically: each test walks the filter again. Search filters use a
 * small subset ($and/$or/$nor, equality, $in/$nin, $ne, $exists, $gt/$gte/$lt/$lte on numbers and
 * strings, $regex, $elemMatch), and compiled once they test a document many times faster.
 * Anything outside the subset makes `compileMatcher` return undefined, and the engine uses mingo.
 * The semantics are MongoDB's: a path through arrays reaches every element; each operator of a
 * condition may be satisfied by a different array element (except inside $elemMatch).
 */

type Doc = Record<string, unknown>;
export type Predicate = (doc: unknown) => boolean;

class Unsupported extends Error {}

/** Values present at a dotted path, descending through arrays of objects. */
function resolve(doc: unknown, parts: readonly string[], i: number, out: unknown[]): void {
  if (i === parts.length) {
    out.push(doc);
    return;
  }
  if (Array.isArray(doc)) {
    for (const e of doc)
      if (e !== null && typeof e === 'object' && !Array.isArray(e)) resolve(e, parts, i, out);
    return;
  }
  if (doc === null || typeof doc !== 'object') return;
  const key = parts[i] as string;
  if (!Object.prototype.hasOwnProperty.call(doc, key)) return;
  resolve((doc as Doc)[key], parts, i + 1, out);
}

/** The values a scalar operator looks at: each resolved value, and the elements of resolved arrays. */
function leaves(values: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const v of values) {
    if (Array.isArray(v)) for (const e of v) out.push(e);
    else out.push(v);
  }
  return out;
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function isPlainObject(v: unknown): v is Doc {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

type LeafTest = (values: unknown[]) => boolean;

function comparison(op: string, bound: unknown): LeafTest {
  if (typeof bound !== 'number' && typeof bound !== 'string') throw new Unsupported();
  const t = typeof bound;
  const cmp =
    op === '$gt'
      ? (x: number | string) => x > bound
      : op === '$gte'
        ? (x: number | string) => x >= bound
        : op === '$lt'
          ? (x: number | string) => x < bound
          : (x: number | string) => x <= bound;
  return (values) => leaves(values).some((x) => typeof x === t && cmp(x as number | string));
}

function operatorTest(op: string, arg: unknown): LeafTest {
  switch (op) {
    case '$eq': {
      if (!isScalar(arg)) throw new Unsupported();
      return (values) => leaves(values).some((x) => x === arg);
    }
    case '$ne': {
      if (!isScalar(arg)) throw new Unsupported();
      return (values) => !leaves(values).some((x) => x === arg);
    }
    case '$in':
    case '$nin': {
      if (!Array.isArray(arg) || !arg.every(isScalar)) throw new Unsupported();
      const set = new Set<unknown>(arg);
      const any = (values: unknown[]): boolean => leaves(values).some((x) => set.has(x));
      return op === '$in' ? any : (values) => !any(values);
    }
    case '$exists': {
      if (typeof arg !== 'boolean') throw new Unsupported();
      return (values) => values.length > 0 === arg;
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return comparison(op, arg);
    case '$elemMatch': {
      if (!isPlainObject(arg)) throw new Unsupported();
      const keys = Object.keys(arg);
      if (keys.length === 0) throw new Unsupported();
      // Operators only: elements are scalars tested by all of them together; else elements are
      // documents tested by a sub-filter.
      const element: Predicate = keys.every(
        (k) => k.startsWith('$') && k !== '$and' && k !== '$or' && k !== '$nor',
      )
        ? conditionOnValue(arg)
        : compileFilter(arg);
      return (values) => values.some((v) => Array.isArray(v) && v.some((e) => element(e)));
    }
    default:
      throw new Unsupported();
  }
}

/** All operators of `cond` applied to a single value (inside $elemMatch). */
function conditionOnValue(cond: Doc): Predicate {
  const tests = Object.entries(cond).map(([op, arg]) => operatorTest(op, arg));
  return (v) => tests.every((t) => t([v]));
}

function fieldCondition(path: string, cond: unknown): Predicate {
  const parts = path.split('.');
  if (parts.some((p) => p === '' || /^\d+$/.test(p) || p.startsWith('$'))) throw new Unsupported();
  let tests: LeafTest[];
  if (isScalar(cond)) {
    tests = [operatorTest('$eq', cond)];
  } else if (
    isPlainObject(cond) &&
    Object.keys(cond).length > 0 &&
    Object.keys(cond).every((k) => k.startsWith('$'))
  ) {
    const entries = Object.entries(cond);
    // Several operators on one path through arrays: MongoDB lets each be met by a different
    // element, mingo does not always; leave those to mingo so both backends keep one behaviour.
    if (entries.filter(([k]) => k !== '$options').length > 1) throw new Unsupported();
    if (entries.some(([k]) => k === '$options')) {
      const re = regexOf(cond);
      tests = [
        (values) => leaves(values).some((x) => typeof x === 'string' && re.test(x)),
        ...entries
          .filter(([k]) => k !== '$regex' && k !== '$options')
          .map(([op, arg]) => operatorTest(op, arg)),
      ];
    } else {
      tests = entries.map(([op, arg]) => {
        if (op === '$regex') {
          const re = regexOf(cond);
          return (values: unknown[]) => leaves(values).some((x) => typeof x === 'string' && re.test(x));
        }
        return operatorTest(op, arg);
      });
    }
  } else {
    throw new Unsupported();
  }
  return (doc) => {
    const values: unknown[] = [];
    resolve(doc, parts, 0, values);
    return tests.every((t) => t(values));
  };
}

function regexOf(cond: Doc): RegExp {
  const pattern = cond.$regex;
  const options = cond.$options ?? '';
  if (typeof pattern !== 'string' || typeof options !== 'string' || !/^[imsu]*$/.test(options))
    throw new Unsupported();
  return new RegExp(pattern, options);
}

function compileFilter(filter: Doc): Predicate {
  const tests: Predicate[] = [];
  for (const [k, v] of Object.entries(filter)) {
    if (k === '$and' || k === '$or' || k === '$nor') {
      if (!Array.isArray(v) || v.length === 0 || !v.every(isPlainObject)) throw new Unsupported();
      const subs = (v as Doc[]).map(compileFilter);
      if (k === '$and') tests.push((d) => subs.every((s) => s(d)));
      else if (k === '$or') tests.push((d) => subs.some((s) => s(d)));
      else tests.push((d) => !subs.some((s) => s(d)));
    } else if (k.startsWith('$')) {
      throw new Unsupported();
    } else {
      tests.push(fieldCondition(k, v));
    }
  }
  return (d) => tests.every((t) => t(d));
}

/** A fast predicate for `filter`, or undefined when it uses anything outside the subset. */
export function compileMatcher(filter: Doc): Predicate | undefined {
  try {
    return compileFilter(filter);
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
}
