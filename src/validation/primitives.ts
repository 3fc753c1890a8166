import { ID_PATTERN } from '../fhir/resource';

/**
 * FHIR R4 primitive types (datatypes.html#primitive): the JSON type each one takes and the regex
 * its value must match. Regexes are the spec's, anchored; dates also get a calendar check.
 */
export type JsonKind = 'string' | 'number' | 'boolean';

export interface PrimitiveRule {
  json: JsonKind;
  regex?: RegExp;
  /** Extra check beyond the regex (calendar dates, integer range). */
  check?: (v: string | number | boolean) => boolean;
  maxLength?: number;
}

const DATE_PART = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/;

function validCalendar(v: string | number | boolean): boolean {
  const m = DATE_PART.exec(String(v));
  if (!m || m[3] === undefined) return true;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  return d <= new Date(Date.UTC(y, mo, 0)).getUTCDate();
}

const int32 = (v: string | number | boolean): boolean =>
  typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;

export const PRIMITIVES: Readonly<Record<string, PrimitiveRule>> = {
  boolean: { json: 'boolean' },
  integer: { json: 'number', check: int32 },
  unsignedInt: { json: 'number', check: (v) => int32(v) && (v as number) >= 0 },
  positiveInt: { json: 'number', check: (v) => int32(v) && (v as number) >= 1 },
  decimal: { json: 'number', check: (v) => typeof v === 'number' && Number.isFinite(v) },
  string: { json: 'string', regex: /^[\s\S]+$/, maxLength: 1024 * 1024 },
  markdown: { json: 'string', regex: /^[\s\S]+$/ },
  code: { json: 'string', regex: /^[^\s]+( [^\s]+)*$/ },
  id: { json: 'string', regex: ID_PATTERN },
  uri: { json: 'string', regex: /^\S*$/ },
  url: { json: 'string', regex: /^\S*$/ },
  canonical: { json: 'string', regex: /^\S*$/ },
  oid: { json: 'string', regex: /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/ },
  uuid: {
    json: 'string',
    regex: /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  },
  // The spec's regex, (\s*([0-9a-zA-Z\+\=]){4}\s*)+, backtracks badly on large attachments.
  base64Binary: { json: 'string', check: (v) => typeof v === 'string' && isBase64(v) },
  instant: {
    json: 'string',
    regex:
      /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/,
    check: validCalendar,
  },
  date: {
    json: 'string',
    regex:
      /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$/,
    check: validCalendar,
  },
  dateTime: {
    json: 'string',
    regex:
      /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/,
    check: validCalendar,
  },
  time: { json: 'string', regex: /^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?$/ },
  xhtml: { json: 'string', regex: /^\s*<div[\s>][\s\S]*<\/div>\s*$/ },
};

/** FHIRPath system types used in primitive `value` elements of the StructureDefinitions. */
export function isPrimitiveType(code: string): boolean {
  return Object.prototype.hasOwnProperty.call(PRIMITIVES, code);
}

/** Why a JSON value is not a valid instance of a primitive type, or undefined when it is. */
export function primitiveProblem(type: string, value: unknown): string | undefined {
  const rule = PRIMITIVES[type];
  if (!rule) return undefined;
  if (typeof value !== rule.json) {
    return `must be a JSON ${rule.json} (FHIR ${type}), got ${value === null ? 'null' : typeof value}`;
  }
  const v = value as string | number | boolean;
  if (rule.regex && typeof v === 'string' && !rule.regex.test(v)) {
    return `"${v.length > 60 ? `${v.slice(0, 60)}...` : v}" is not a valid ${type}`;
  }
  if (rule.check && !rule.check(v)) return `${String(v)} is not a valid ${type}`;
  if (rule.maxLength !== undefined && typeof v === 'string' && v.length > rule.maxLength) {
    return `is longer than ${rule.maxLength} characters`;
  }
  return undefined;
}

function isBase64(v: string): boolean {
  const s = v.replace(/\s+/g, '');
  return s.length > 0 && s.length % 4 === 0 && /^[0-9a-zA-Z+/]*={0,2}$/.test(s);
}
