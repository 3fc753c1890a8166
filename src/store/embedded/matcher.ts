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

/**
 * Whether `test` holds for some value present at a dotted path (descending through arrays of
 * objects, as MongoDB does). Visits without collecting: a search tests thousands of documents.
 */
function someAt(doc: unknown, parts: readonly string[], i: number, test: (v: unknown) => boolean): boolean {
  if (i === parts.length) return test(doc);
  if (Array.isArray(doc)) {
    for (const e of doc)
      if (e !== null && typeof e === 'object' && !Array.isArray(e) && someAt(e, parts, i, test)) return true;
    return false;
  }
  if (doc === null || typeof doc !== 'object') return false;
  const key = parts[i] as string;
  if (!Object.prototype.hasOwnProperty.call(doc, key)) return false;
  return someAt((doc as Doc)[key], parts, i + 1, test);
}

/** What a scalar operator looks at in a value: the value itself, or each element of an array. */
function someLeaf(v: unknown, test: (x: unknown) => boolean): boolean {
  if (!Array.isArray(v)) return test(v);
  for (const e of v) if (test(e)) return true;
  return false;
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function isPlainObject(v: unknown): v is Doc {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A test of the values at one path: `any(test)` asks whether some value there passes `test`. */
type Values = (test: (v: unknown) => boolean) => boolean;
type LeafTest = (values: Values) => boolean;

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
  const leaf = (x: unknown): boolean => typeof x === t && cmp(x as number | string);
  return (values) => values((v) => someLeaf(v, leaf));
}

function operatorTest(op: string, arg: unknown): LeafTest {
  switch (op) {
    case '$eq': {
      if (!isScalar(arg)) throw new Unsupported();
      const leaf = (x: unknown): boolean => x === arg;
      return (values) => values((v) => someLeaf(v, leaf));
    }
    case '$ne': {
      if (!isScalar(arg)) throw new Unsupported();
      const leaf = (x: unknown): boolean => x === arg;
      return (values) => !values((v) => someLeaf(v, leaf));
    }
    case '$in':
    case '$nin': {
      if (!Array.isArray(arg) || !arg.every(isScalar)) throw new Unsupported();
      const set = new Set<unknown>(arg);
      const leaf = (x: unknown): boolean => set.has(x);
      const any = (values: Values): boolean => values((v) => someLeaf(v, leaf));
      return op === '$in' ? any : (values) => !any(values);
    }
    case '$exists': {
      if (typeof arg !== 'boolean') throw new Unsupported();
      const present = (values: Values): boolean => values(() => true);
      return arg ? present : (values) => !present(values);
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
      const holds = (v: unknown): boolean => {
        if (!Array.isArray(v)) return false;
        for (const e of v) if (element(e)) return true;
        return false;
      };
      return (values) => values(holds);
    }
    default:
      throw new Unsupported();
  }
}

/** All operators of `cond` applied to a single value (inside $elemMatch). */
function conditionOnValue(cond: Doc): Predicate {
  const tests = Object.entries(cond).map(([op, arg]) => operatorTest(op, arg));
  return (v) => {
    const values: Values = (test) => test(v);
    for (const t of tests) if (!t(values)) return false;
    return true;
  };
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
      const leaf = (x: unknown): boolean => typeof x === 'string' && re.test(x);
      tests = [
        (values) => values((v) => someLeaf(v, leaf)),
        ...entries
          .filter(([k]) => k !== '$regex' && k !== '$options')
          .map(([op, arg]) => operatorTest(op, arg)),
      ];
    } else {
      tests = entries.map(([op, arg]) => {
        if (op === '$regex') {
          const re = regexOf(cond);
          const leaf = (x: unknown): boolean => typeof x === 'string' && re.test(x);
          return (values: Values) => values((v) => someLeaf(v, leaf));
        }
        return operatorTest(op, arg);
      });
    }
  } else {
    throw new Unsupported();
  }
  if (tests.length === 1) {
    const only = tests[0] as LeafTest;
    return (doc) => only((test) => someAt(doc, parts, 0, test));
  }
  return (doc) => {
    const values: Values = (test) => someAt(doc, parts, 0, test);
    for (const t of tests) if (!t(values)) return false;
    return true;
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
      const some = (d: unknown): boolean => {
        for (const sub of subs) if (sub(d)) return true;
        return false;
      };
      if (k === '$and')
        tests.push((d) => {
          for (const sub of subs) if (!sub(d)) return false;
          return true;
        });
      else if (k === '$or') tests.push(some);
      else tests.push((d) => !some(d));
    } else if (k.startsWith('$')) {
      throw new Unsupported();
    } else {
      tests.push(fieldCondition(k, v));
    }
  }
  if (tests.length === 1) return tests[0] as Predicate;
  return (d) => {
    for (const t of tests) if (!t(d)) return false;
    return true;
  };
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
