import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
import { rangeCondition } from './date';
import {
  decimalOf,
  entryFilter,
  isRecord,
  MAX_VALUE,
  MIN_VALUE,
  missingFilter,
  num,
  orOf,
  parseDecimal,
  type DecimalRange,
  type ValueNode,
  sortKeysOf,
  type SortKeys,
} from './common';

/**
 * Number parameters (R4 search.html#number).
 * Index: `idx[code] = [{v, lo, hi}]`: the value and the range implied by its significant digits
 * (`100` -> [99.5, 100.5]); a Range gives `{lo, hi}` only (open ends MIN_VALUE / MAX_VALUE).
 */
export interface NumberEntry {
  v?: number;
  lo: number;
  hi: number;
}

export const NUMBER_MODIFIERS: ReadonlySet<string> = new Set(['missing']);

export function indexNumber(nodes: ValueNode[]): NumberEntry[] {
  const out: NumberEntry[] = [];
  for (const n of nodes) {
    const d = n.data;
    if (typeof d === 'number') {
      const r = decimalOf(d);
      if (r) out.push({ v: r.value, lo: r.lo, hi: r.hi });
    } else if (isRecord(d) && (isRecord(d.low) || isRecord(d.high))) {
      const lo = isRecord(d.low) ? num(d.low.value) : undefined;
      const hi = isRecord(d.high) ? num(d.high.value) : undefined;
      if (lo !== undefined || hi !== undefined) out.push({ lo: lo ?? MIN_VALUE, hi: hi ?? MAX_VALUE });
    }
  }
  return out;
}

/**
 * The condition on a stored exact value `key` for a prefix: eq/ne use the range implied by the search
 * value's precision; gt/lt/ge/le/sa/eb compare with the value; ap is within 10% of it.
 */
export function valueCondition(prefix: SearchValue['prefix'], s: DecimalRange, key = 'v'): Filter {
  switch (prefix ?? 'eq') {
    case 'eq':
      return { [key]: { $gte: s.lo, $lt: s.hi } };
    case 'gt':
    case 'sa':
      return { [key]: { $gt: s.value } };
    case 'lt':
    case 'eb':
      return { [key]: { $lt: s.value } };
    case 'ge':
      return { [key]: { $gte: s.value } };
    case 'le':
      return { [key]: { $lte: s.value } };
    case 'ap': {
      const gap = Math.abs(s.value) * 0.1;
      return { [key]: { $gte: s.value - gap, $lte: s.value + gap } };
    }
    default:
      throw badRequest(`Prefix '${prefix ?? ''}' is not valid here`);
  }
}

/** One stored entry matches: an exact value by valueCondition, a Range by range semantics. */
export function numberEntryCondition(prefix: SearchValue['prefix'], s: DecimalRange): Filter {
  return {
    $or: [
      valueCondition(prefix, s),
      { v: { $exists: false }, ...rangeCondition(prefix, { lo: s.lo, hi: s.hi }, Math.abs(s.value) * 0.1) },
    ],
  };
}

export function parseNumberValue(code: string, text: string): DecimalRange {
  const s = parseDecimal(text);
  if (!s) throw badRequest(`Invalid number '${text}' for parameter '${code}'`);
  return s;
}

export function numberFilter(code: string, modifier: string | undefined, values: SearchValue[]): Filter {
  if (modifier === 'missing') return orOf(values.map((v) => missingFilter(code, v.value)));
  if (modifier !== undefined)
    throw badRequest(`Unknown modifier ':${modifier}' for number parameter '${code}'`);
  return orOf(
    values.map((v) => {
      const s = parseNumberValue(code, v.value);
      const ne = v.prefix === 'ne';
      return entryFilter(code, numberEntryCondition(ne ? 'eq' : v.prefix, s), ne);
    }),
  );
}

export function numberSortKeys(entries: NumberEntry[]): SortKeys | undefined {
  return sortKeysOf(
    entries.map((e) => e.v ?? e.lo),
    entries.map((e) => e.v ?? e.hi),
  );
}
