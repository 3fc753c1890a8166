/**
 * Enough UCUM (unitsofmeasure.org, "The Unified Code for Units of Measure") to compare Quantities
 * in different units of the same kind, as minValue/maxValue checks need (3 g against 0 kg): unit
 * expressions with `.`, `/`, exponents, parentheses, annotations `{...}` and factors (`10*3`),
 * the SI prefixes, and the base and common derived units used in clinical data (mass, length,
 * volume, time, amount of substance, pressure, energy, frequency, the customary US units, `%`).
 * Units with an offset (Cel, [degF]) and arbitrary units ([iU]) convert only to themselves.
 */

/** A unit as a factor of the base units and the exponent of each base dimension. */
export interface Canonical {
  factor: number;
  dims: Readonly<Record<string, number>>;
}

const PREFIXES: Record<string, number> = {
  Y: 1e24,
  Z: 1e21,
  E: 1e18,
  P: 1e15,
  T: 1e12,
  G: 1e9,
  M: 1e6,
  k: 1e3,
  h: 1e2,
  da: 1e1,
  d: 1e-1,
  c: 1e-2,
  m: 1e-3,
  u: 1e-6,
  n: 1e-9,
  p: 1e-12,
  f: 1e-15,
  a: 1e-18,
  z: 1e-21,
  y: 1e-24,
};

interface Atom {
  /** The atom as a product of other units (a UCUM expression), or a base dimension. */
  def: string | { base: string };
  factor?: number;
  /** Metric units take SI prefixes. */
  metric: boolean;
}

const ATOMS: Record<string, Atom> = {
  m: { def: { base: 'L' }, metric: true },
  g: { def: { base: 'M' }, metric: true },
  s: { def: { base: 'T' }, metric: true },
  K: { def: { base: 'K' }, metric: true },
  mol: { def: { base: 'N' }, metric: true },
  eq: { def: { base: 'N' }, metric: true },
  cd: { def: { base: 'J' }, metric: true },
  A: { def: { base: 'I' }, metric: true },
  rad: { def: '1', metric: true },
  L: { def: 'dm3', metric: true },
  l: { def: 'dm3', metric: true },
  Hz: { def: 's-1', metric: true },
  N: { def: 'kg.m/s2', metric: true },
  Pa: { def: 'N/m2', metric: true },
  J: { def: 'N.m', metric: true },
  W: { def: 'J/s', metric: true },
  C: { def: 'A.s', metric: true },
  V: { def: 'W/A', metric: true },
  bar: { def: 'Pa', factor: 1e5, metric: true },
  cal: { def: 'J', factor: 4.184, metric: true },
  'm[Hg]': { def: 'kPa', factor: 133.322, metric: true },
  'm[H2O]': { def: 'kPa', factor: 9.80665, metric: true },
  min: { def: 's', factor: 60, metric: false },
  h: { def: 's', factor: 3600, metric: false },
  d: { def: 's', factor: 86400, metric: false },
  wk: { def: 'd', factor: 7, metric: false },
  mo: { def: 'd', factor: 30.4375, metric: false },
  a: { def: 'd', factor: 365.25, metric: false },
  '%': { def: '1', factor: 1e-2, metric: false },
  '[ppm]': { def: '1', factor: 1e-6, metric: false },
  '[ppb]': { def: '1', factor: 1e-9, metric: false },
  '[lb_av]': { def: 'g', factor: 453.59237, metric: false },
  '[oz_av]': { def: 'g', factor: 28.349523125, metric: false },
  '[in_i]': { def: 'cm', factor: 2.54, metric: false },
  '[ft_i]': { def: '[in_i]', factor: 12, metric: false },
  '[yd_i]': { def: '[ft_i]', factor: 3, metric: false },
  '[mi_i]': { def: '[ft_i]', factor: 5280, metric: false },
  '[foz_us]': { def: 'mL', factor: 29.5735295625, metric: false },
  '[pt_us]': { def: '[foz_us]', factor: 16, metric: false },
  '[gal_us]': { def: '[pt_us]', factor: 8, metric: false },
};

const cache = new Map<string, Canonical | null>();

function multiply(a: Canonical, b: Canonical, exp = 1): Canonical {
  const dims: Record<string, number> = { ...a.dims };
  for (const [k, v] of Object.entries(b.dims)) {
    const n = (dims[k] ?? 0) + v * exp;
    if (n === 0) delete dims[k];
    else dims[k] = n;
  }
  return { factor: a.factor * b.factor ** exp, dims };
}

const ONE: Canonical = { factor: 1, dims: {} };

/** An atom (with its prefix), without exponent. */
function symbol(sym: string, depth: number): Canonical | undefined {
  const atom = ATOMS[sym];
  if (atom) return atomValue(atom, depth);
  for (const [p, f] of Object.entries(PREFIXES)) {
    if (!sym.startsWith(p) || sym.length === p.length) continue;
    const a = ATOMS[sym.slice(p.length)];
    if (a?.metric) {
      const v = atomValue(a, depth);
      return v && { factor: v.factor * f, dims: v.dims };
    }
  }
  return undefined;
}

function atomValue(atom: Atom, depth: number): Canonical | undefined {
  if (typeof atom.def !== 'string') return { factor: atom.factor ?? 1, dims: { [atom.def.base]: 1 } };
  const inner = parse(atom.def, depth + 1);
  return inner && { factor: inner.factor * (atom.factor ?? 1), dims: inner.dims };
}

/** One component: a factor (`10*3`, `1000`), an annotation, a parenthesised term, or a unit with exponent. */
function component(c: string, depth: number): Canonical | undefined {
  if (c === '' || /^\{[^}]*\}$/.test(c)) return ONE;
  const stripped = c.replace(/\{[^}]*\}$/, '');
  if (stripped !== c) return component(stripped, depth);
  let m = /^10[*^]([+-]?\d+)$/.exec(c);
  if (m) return { factor: 10 ** Number(m[1]), dims: {} };
  if (/^\d+$/.test(c)) return { factor: Number(c), dims: {} };
  m = /^\((.*)\)([+-]?\d+)?$/.exec(c);
  if (m) {
    const inner = parse(m[1] ?? '', depth + 1);
    return inner && multiply(ONE, inner, m[2] ? Number(m[2]) : 1);
  }
  m = /^(.*?)([+-]?\d+)?$/.exec(c);
  const base = symbol(m?.[1] ?? c, depth);
  return base && multiply(ONE, base, m?.[2] ? Number(m[2]) : 1);
}

/** Splits a term at top-level `.` and `/` (not inside brackets, braces or parentheses). */
function split(term: string): Array<{ op: '.' | '/'; text: string }> {
  const out: Array<{ op: '.' | '/'; text: string }> = [];
  let depth = 0;
  let op: '.' | '/' = '.';
  let start = 0;
  for (let i = 0; i < term.length; i++) {
    const ch = term[i];
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') depth--;
    else if (depth === 0 && (ch === '.' || ch === '/')) {
      out.push({ op, text: term.slice(start, i) });
      op = ch;
      start = i + 1;
    }
  }
  out.push({ op, text: term.slice(start) });
  return out;
}

function parse(expr: string, depth = 0): Canonical | undefined {
  if (depth > 12) return undefined;
  let acc = ONE;
  for (const { op, text } of split(expr)) {
    const c = component(text, depth);
    if (!c) return undefined;
    acc = multiply(acc, c, op === '/' ? -1 : 1);
  }
  return acc;
}

/** The canonical form of a UCUM unit expression; undefined when this subset cannot read it. */
export function canonicalUnit(code: string): Canonical | undefined {
  let c = cache.get(code);
  if (c === undefined) {
    c = (code.length <= 100 && parse(code)) || null;
    cache.set(code, c);
  }
  return c ?? undefined;
}

/**
 * `a` minus `b` in b's unit, both UCUM Quantities, or undefined if their units cannot be converted
 * into each other (different kinds, or units outside this subset).
 */
export function ucumDifference(
  a: { value: number; code: string },
  b: { value: number; code: string },
): number | undefined {
  if (a.code === b.code) return a.value - b.value;
  const ca = canonicalUnit(a.code);
  const cb = canonicalUnit(b.code);
  if (!ca || !cb) return undefined;
  const keys = new Set([...Object.keys(ca.dims), ...Object.keys(cb.dims)]);
  for (const k of keys) if ((ca.dims[k] ?? 0) !== (cb.dims[k] ?? 0)) return undefined;
  return (a.value * ca.factor) / cb.factor - b.value;
}
