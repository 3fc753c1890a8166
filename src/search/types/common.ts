import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';

/**
 * One value found by a search parameter's FHIRPath expression: its FHIR type (from the R4 model,
 * e.g. `CodeableConcept`, `dateTime`, `Reference`) and its JSON data.
 */
export interface ValueNode {
  type: string;
  data: unknown;
  /** For `code` primitives: the code system of the element's required binding, when there is one. */
  system?: string;
}

/** Search prefixes of number, date and quantity parameters (R4 search.html#prefix). */
export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
export const PREFIXES: ReadonlySet<string> = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

/** Dates and numbers without an end are encoded with these instead of +-Infinity (which JSON cannot hold). */
export const MIN_VALUE = -8.64e15;
export const MAX_VALUE = 8.64e15;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

const COMBINING_MARKS = /[\u0300-\u036f]/g;

/** Case- and accent-insensitive form of a string: NFD, combining marks removed, lower case. */
export function normalizeText(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\u0000-\u007f]/.test(s)) return s.toLowerCase();
  return s.normalize('NFD').replace(COMBINING_MARKS, '').toLowerCase();
}

/** Escapes every regular-expression metacharacter, so user input only ever matches itself. */
export function escapeRegex(s: string): string {
  // Only the characters that are special outside a character class: `\-` and `\/` would be invalid
  // escapes for a Unicode-mode RegExp, and no pattern built here has a class or a delimiter.
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A field of the indexed values: `idx.<code>` or `idx.<code>.<sub>`. */
export function field(code: string, sub?: string): string {
  return sub ? `idx.${code}.${sub}` : `idx.${code}`;
}

export function orOf(filters: Filter[]): Filter {
  if (filters.length === 1 && filters[0]) return filters[0];
  return { $or: filters };
}

export function andOf(filters: Filter[]): Filter {
  if (filters.length === 1 && filters[0]) return filters[0];
  return { $and: filters };
}

/** Resources that have no value of the parameter, or (missing=false) have one. */
export function missingFilter(code: string, value: string): Filter {
  if (value !== 'true' && value !== 'false') throw badRequest(`:missing takes true or false, not '${value}'`);
  return { [field(code)]: { $exists: value === 'false' } };
}

/**
 * Resources with an entry of the parameter that matches `entry` (an `$elemMatch` condition); with
 * `none` (the `ne` prefix, given the `eq` condition), resources with entries none of which matches.
 */
export function entryFilter(code: string, entry: Filter, none = false): Filter {
  const match = { [field(code)]: { $elemMatch: entry } };
  return none ? { $and: [{ [field(code)]: { $exists: true } }, { $nor: [match] }] } : match;
}

/**
 * Sort keys of a parameter, kept as scalars in `idx._sort[code] = {a, d}` (`a`: the least value, for
 * ascending sorts; `d`: the greatest, for descending), because MongoDB and mingo order documents by
 * array fields differently; scalars sort the same everywhere.
 */
export interface SortKeys {
  a: string | number;
  d: string | number;
}

export const SORT_KEY = '_sort';

export function sortField(code: string, descending: boolean): string {
  return `idx.${SORT_KEY}.${code}.${descending ? 'd' : 'a'}`;
}

/** The least of `asc` and the greatest of `desc` (both non-empty lists of one kind). */
export function sortKeysOf(
  asc: Array<string | number>,
  desc: Array<string | number> = asc,
): SortKeys | undefined {
  if (asc.length === 0 || desc.length === 0) return undefined;
  let a = asc[0] as string | number;
  let d = desc[0] as string | number;
  for (const v of asc) if (v < a) a = v;
  for (const v of desc) if (v > d) d = v;
  return { a, d };
}

/** Rounds away binary floating point noise (e.g. 999999999999.9999 -> 1e12). */
export function roundSignificant(n: number, digits = 12): number {
  if (n === 0 || !Number.isFinite(n)) return n;
  return Number(n.toPrecision(digits));
}

/**
 * A decimal search value with the range implied by its precision (R4 search.html#number):
 * `100` is [99.5, 100.5), `1e2` is [50, 150), `100.00` is [99.995, 100.005).
 */
export interface DecimalRange {
  value: number;
  lo: number;
  hi: number;
}

const DECIMAL = /^([-+]?)(\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?$/;

export function parseDecimal(text: string): DecimalRange | undefined {
  const m = DECIMAL.exec(text.trim());
  if (!m) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) return undefined;
  const fraction = m[3] ?? '';
  const exponent = m[4] ? Number(m[4]) : 0;
  // Half of one unit in the last significant place.
  const half = 0.5 * Math.pow(10, exponent - fraction.length);
  return { value, lo: roundSignificant(value - half, 15), hi: roundSignificant(value + half, 15) };
}

/** A decimal from stored data (a JSON number): precision from its shortest string form. */
export function decimalOf(n: number): DecimalRange | undefined {
  return parseDecimal(String(n));
}
