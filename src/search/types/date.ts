import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
import {
  entryFilter,
  isRecord,
  MAX_VALUE,
  MIN_VALUE,
  missingFilter,
  orOf,
  str,
  type ValueNode,
  sortKeysOf,
  type SortKeys,
} from './common';

/**
 * Date parameters (R4 search.html#date).
 * Index: `idx[code] = [{lo, hi}]`, epoch milliseconds, both inclusive: the range a value covers at
 * its precision (`2020` is the whole year; `2020-01-02T10:00:00Z` one second), a Period from start
 * to end (an open end is MIN_VALUE / MAX_VALUE), a Timing one range per event plus its boundsPeriod.
 * Dates without a time zone are taken as UTC.
 */
export interface DateRange {
  lo: number;
  hi: number;
}

export const DATE_MODIFIERS: ReadonlySet<string> = new Set(['missing']);

const DATE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** The range of a FHIR date, dateTime or instant (or a search value of the same shape). */
export function parseDateRange(text: string): DateRange | undefined {
  // An unencoded `+` of a time zone arrives as a space from form decoding: `...T10:00:00 05:00`.
  const m = DATE.exec(text.trim().replace(/ (\d{2}:\d{2})$/, '+$1'));
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = m[2] === undefined ? undefined : Number(m[2]);
  const day = m[3] === undefined ? undefined : Number(m[3]);
  if (month !== undefined && (month < 1 || month > 12)) return undefined;
  if (day !== undefined && (day < 1 || day > 31)) return undefined;
  const hour = m[4] === undefined ? undefined : Number(m[4]);
  const minute = m[5] === undefined ? undefined : Number(m[5]);
  const second = m[6] === undefined ? undefined : Number(m[6]);
  const fraction = m[7];
  if ((hour ?? 0) > 24 || (minute ?? 0) > 59 || (second ?? 0) > 60) return undefined;
  let offset = 0;
  const tz = m[8];
  if (tz && tz !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1;
    offset = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60000;
  }
  const ms = fraction ? Number(fraction.slice(0, 3).padEnd(3, '0')) : 0;
  // Date.UTC treats years 0-99 as 1900+; setUTCFullYear does not.
  const at = (y: number, mo: number, d: number, h: number, mi: number, s: number, milli: number): number => {
    const date = new Date(Date.UTC(2000, mo, d, h, mi, s, milli));
    date.setUTCFullYear(y);
    return date.getTime() - offset;
  };
  if (month === undefined) return { lo: at(year, 0, 1, 0, 0, 0, 0), hi: at(year + 1, 0, 1, 0, 0, 0, 0) - 1 };
  if (day === undefined)
    return { lo: at(year, month - 1, 1, 0, 0, 0, 0), hi: at(year, month, 1, 0, 0, 0, 0) - 1 };
  if (hour === undefined) {
    const lo = at(year, month - 1, day, 0, 0, 0, 0);
    return { lo, hi: lo + 86400000 - 1 };
  }
  const lo = at(year, month - 1, day, hour, minute ?? 0, second ?? 0, ms);
  if (second === undefined) return { lo, hi: lo + 60000 - 1 };
  const digits = fraction ? Math.min(fraction.length, 3) : 0;
  return { lo, hi: lo + Math.pow(10, 3 - digits) - 1 };
}

function rangesOf(node: ValueNode): DateRange[] {
  const d = node.data;
  if (typeof d === 'string') {
    const r = parseDateRange(d);
    return r ? [r] : [];
  }
  if (!isRecord(d)) return [];
  if (node.type === 'Timing' || 'event' in d || 'repeat' in d) {
    const out: DateRange[] = [];
    if (Array.isArray(d.event)) {
      for (const e of d.event) {
        const r = typeof e === 'string' ? parseDateRange(e) : undefined;
        if (r) out.push(r);
      }
    }
    if (isRecord(d.repeat) && isRecord(d.repeat.boundsPeriod)) {
      out.push(...rangesOf({ type: 'Period', data: d.repeat.boundsPeriod }));
    }
    return out;
  }
  // Period
  const start = str(d.start);
  const end = str(d.end);
  if (!start && !end) return [];
  const lo = start ? parseDateRange(start)?.lo : MIN_VALUE;
  const hi = end ? parseDateRange(end)?.hi : MAX_VALUE;
  return lo === undefined || hi === undefined ? [] : [{ lo, hi }];
}

export function indexDate(nodes: ValueNode[]): DateRange[] {
  const out: DateRange[] = [];
  for (const n of nodes) {
    for (const r of rangesOf(n)) {
      if (!out.some((o) => o.lo === r.lo && o.hi === r.hi)) out.push(r);
    }
  }
  return out;
}

/** The condition on one indexed range [lo, hi] for a prefix and a search range (R4 search.html#prefix). */
export function rangeCondition(prefix: SearchValue['prefix'], s: DateRange, approxGap: number): Filter {
  const eq: Filter = { lo: { $gte: s.lo }, hi: { $lte: s.hi } };
  switch (prefix ?? 'eq') {
    case 'eq':
      return eq;
    case 'gt':
      return { hi: { $gt: s.hi } };
    case 'lt':
      return { lo: { $lt: s.lo } };
    case 'ge':
      return { $or: [{ hi: { $gt: s.hi } }, eq] };
    case 'le':
      return { $or: [{ lo: { $lt: s.lo } }, eq] };
    case 'sa':
      return { lo: { $gt: s.hi } };
    case 'eb':
      return { hi: { $lt: s.lo } };
    case 'ap':
      return { lo: { $lte: s.hi + approxGap }, hi: { $gte: s.lo - approxGap } };
    default:
      throw badRequest(`Prefix '${prefix ?? ''}' is not valid here`);
  }
}

function dateMatch(code: string, v: SearchValue, now: number): Filter {
  const s = parseDateRange(v.value);
  if (!s) throw badRequest(`Invalid date '${v.value}' for parameter '${code}'`);
  // ap: within 10% of the distance between now and the value (R4 search.html#prefix).
  const gap = Math.abs(now - s.lo) * 0.1;
  const ne = v.prefix === 'ne';
  return entryFilter(code, rangeCondition(ne ? 'eq' : v.prefix, s, gap), ne);
}

export function dateFilter(
  code: string,
  modifier: string | undefined,
  values: SearchValue[],
  now: number = Date.now(),
): Filter {
  if (modifier === 'missing') return orOf(values.map((v) => missingFilter(code, v.value)));
  if (modifier !== undefined)
    throw badRequest(`Unknown modifier ':${modifier}' for date parameter '${code}'`);
  return orOf(values.map((v) => dateMatch(code, v, now)));
}

/** Ascending sorts by the earliest start, descending by the latest end. */
export function dateSortKeys(entries: DateRange[]): SortKeys | undefined {
  return sortKeysOf(
    entries.map((e) => e.lo),
    entries.map((e) => e.hi),
  );
}
