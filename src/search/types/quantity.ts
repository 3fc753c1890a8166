import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
import {
  decimalOf,
  entryFilter,
  isRecord,
  MAX_VALUE,
  MIN_VALUE,
  missingFilter,
  num,
  orOf,
  roundSignificant,
  str,
  type DecimalRange,
  type ValueNode,
  sortKeysOf,
  type SortKeys,
} from './common';
import { numberEntryCondition, parseNumberValue, valueCondition } from './number';
import { canonicalUnit, UCUM_SYSTEM } from './ucum';

/**
 * Quantity parameters (R4 search.html#quantity).
 * Index: `idx[code] = [{v, lo, hi, s?, c?, u?, cv?, cc?}]`: value, the range implied by its precision,
 * system, code, unit (human text), and for UCUM units with a linear canonical form (see ucum.ts) the
 * value in canonical units `cv` and the canonical unit `cc`. Money: `c` is the currency. A Range gives
 * `{lo, hi, ...units of low/high}` without `v`.
 */
export interface QuantityEntry {
  v?: number;
  lo: number;
  hi: number;
  s?: string;
  c?: string;
  u?: string;
  cv?: number;
  cc?: string;
}

export const QUANTITY_MODIFIERS: ReadonlySet<string> = new Set(['missing']);

function units(d: Record<string, unknown>, e: QuantityEntry): void {
  const s = str(d.system);
  const c = str(d.code) ?? str(d.currency);
  const u = str(d.unit);
  if (s) e.s = s;
  else if (str(d.currency)) e.s = 'urn:iso:std:iso:4217';
  if (c) e.c = c;
  if (u) e.u = u;
}

function entryOf(d: unknown): QuantityEntry | undefined {
  if (!isRecord(d)) return undefined;
  const v = num(d.value);
  if (v !== undefined) {
    const r = decimalOf(v);
    if (!r) return undefined;
    const e: QuantityEntry = { v, lo: r.lo, hi: r.hi };
    units(d, e);
    if (e.c && (e.s === UCUM_SYSTEM || e.s === undefined)) {
      const cu = canonicalUnit(e.c);
      if (cu) {
        e.cv = roundSignificant(v * cu.factor);
        e.cc = cu.code;
      }
    }
    return e;
  }
  if (isRecord(d.low) || isRecord(d.high)) {
    const low = isRecord(d.low) ? d.low : undefined;
    const high = isRecord(d.high) ? d.high : undefined;
    const lo = low ? num(low.value) : undefined;
    const hi = high ? num(high.value) : undefined;
    if (lo === undefined && hi === undefined) return undefined;
    const e: QuantityEntry = { lo: lo ?? MIN_VALUE, hi: hi ?? MAX_VALUE };
    units(low ?? high ?? {}, e);
    return e;
  }
  return undefined;
}

export function indexQuantity(nodes: ValueNode[]): QuantityEntry[] {
  const out: QuantityEntry[] = [];
  for (const n of nodes) {
    const e = entryOf(n.data);
    if (e) out.push(e);
  }
  return out;
}

function scaled(s: DecimalRange, factor: number): DecimalRange {
  return {
    value: roundSignificant(s.value * factor),
    lo: roundSignificant(s.lo * factor),
    hi: roundSignificant(s.hi * factor),
  };
}

/** The $elemMatch condition on one quantity entry for `[prefix]number[|system|code]`. */
export function quantityEntryCondition(code: string, v: SearchValue): Filter {
  const [numberText = '', system = '', unit = ''] = v.parts;
  if (v.parts.length !== 1 && v.parts.length !== 3) {
    throw badRequest(`Invalid quantity '${v.value}' for '${code}': use number, or number|system|code`);
  }
  const prefix = v.prefix === 'ne' ? 'eq' : v.prefix;
  const s = parseNumberValue(code, numberText);
  const byValue = numberEntryCondition(prefix, s);
  if (unit === '') return system === '' ? byValue : { s: system, ...byValue };
  const alternatives: Filter[] = [];
  const unitMatch: Filter = { $or: [{ c: unit }, { u: unit }] };
  alternatives.push(
    system === '' ? { $and: [unitMatch, byValue] } : { $and: [{ s: system, c: unit }, byValue] },
  );
  if (system === '' || system === UCUM_SYSTEM) {
    const cu = canonicalUnit(unit);
    if (cu) alternatives.push({ cc: cu.code, ...valueCondition(prefix, scaled(s, cu.factor), 'cv') });
  }
  return orOf(alternatives);
}

export function quantityFilter(code: string, modifier: string | undefined, values: SearchValue[]): Filter {
  if (modifier === 'missing') return orOf(values.map((v) => missingFilter(code, v.value)));
  if (modifier !== undefined)
    throw badRequest(`Unknown modifier ':${modifier}' for quantity parameter '${code}'`);
  return orOf(
    values.map((v) => {
      return entryFilter(code, quantityEntryCondition(code, v), v.prefix === 'ne');
    }),
  );
}

/** By canonical value when every entry has one (so 1 kg sorts after 900 g), else by value. */
export function quantitySortKeys(entries: QuantityEntry[]): SortKeys | undefined {
  const canonical = entries.every((e) => e.cv !== undefined);
  const key = (e: QuantityEntry, end: number): number => (canonical ? (e.cv ?? end) : (e.v ?? end));
  return sortKeysOf(
    entries.map((e) => key(e, e.lo)),
    entries.map((e) => key(e, e.hi)),
  );
}
