import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
import {
  entryFilter,
  field,
  isRecord,
  missingFilter,
  orOf,
  str,
  type ValueNode,
  sortKeysOf,
  type SortKeys,
} from './common';

/**
 * Reference parameters (R4 search.html#reference).
 * Index: `idx[code] = [entry]` where an entry is `{r: 'Type/id', t: 'Type', i: 'id'}` for a literal
 * reference (relative, or absolute with a `Type/id` tail, then also `u`: the absolute URL),
 * `{u}` for a canonical or other URL reference (canonical `url|version` also gives `u: url`),
 * and `{idf: {s?, v?}}` for Reference.identifier (:identifier).
 */
export interface ReferenceEntry {
  r?: string;
  t?: string;
  i?: string;
  u?: string;
  idf?: { s?: string; v?: string };
}

export const REFERENCE_MODIFIERS: ReadonlySet<string> = new Set(['identifier', 'missing']);

const TYPE_ID = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** `Type/id` from a relative or absolute literal reference, ignoring a `/_history/vid` tail. */
export function parseLiteral(
  reference: string,
  isResourceType: (t: string) => boolean,
): { type: string; id: string } | undefined {
  const m = TYPE_ID.exec(reference);
  if (!m || !m[1] || !m[2] || !isResourceType(m[1])) return undefined;
  return { type: m[1], id: m[2] };
}

function isAbsolute(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(s);
}

/** The entries of one reference string (`Reference.reference`, or a canonical/uri reference). */
export function entriesOfString(ref: string, isResourceType: (t: string) => boolean): ReferenceEntry[] {
  if (ref.startsWith('#')) return [];
  const out: ReferenceEntry[] = [];
  const literal = parseLiteral(ref, isResourceType);
  const absolute = isAbsolute(ref);
  if (literal && (absolute || ref.split('/').length <= 4)) {
    const e: ReferenceEntry = { r: `${literal.type}/${literal.id}`, t: literal.type, i: literal.id };
    if (absolute) e.u = ref;
    out.push(e);
  } else if (absolute) {
    out.push({ u: ref });
    const bar = ref.indexOf('|');
    if (bar > 0) out.push({ u: ref.slice(0, bar) });
  }
  return out;
}

/**
 * Entries of the values of a reference parameter. `targetType`, when set, keeps only references to
 * that type: it stands for FHIRPath's `.where(resolve() is Type)`, which needs no resolution here
 * since the type is in the reference itself.
 */
export function indexReference(
  nodes: ValueNode[],
  isResourceType: (t: string) => boolean,
  targetType?: string,
): ReferenceEntry[] {
  const out: ReferenceEntry[] = [];
  for (const node of nodes) {
    const d = node.data;
    let found: ReferenceEntry[] = [];
    if (typeof d === 'string') {
      found = entriesOfString(d, isResourceType);
    } else if (isRecord(d)) {
      const ref = str(d.reference);
      if (ref) found = entriesOfString(ref, isResourceType);
      if (targetType) found = found.filter((e) => e.t === targetType || (!e.t && str(d.type) === targetType));
      if (isRecord(d.identifier) && (!targetType || str(d.type) === targetType || found.length > 0)) {
        const idf: { s?: string; v?: string } = {};
        const s = str(d.identifier.system);
        const v = str(d.identifier.value);
        if (s) idf.s = s;
        if (v) idf.v = v;
        if (s || v) found.push({ idf });
      }
    }
    if (targetType && typeof d === 'string') found = found.filter((e) => e.t === targetType);
    out.push(...found);
  }
  return out;
}

/**
 * The filter for one reference value. `Type/id`, `id` (any type, or `typeModifier`), an absolute URL
 * (matched as stored, or by its `Type/id` tail: this server cannot tell its own base URL from another's),
 * a canonical `url[|version]`.
 */
function referenceMatch(
  code: string,
  value: string,
  typeModifier: string | undefined,
  isResourceType: (t: string) => boolean,
): Filter {
  if (value === '') throw badRequest(`Empty reference for parameter '${code}'`);
  if (!isAbsolute(value)) {
    if (ID.test(value)) {
      return typeModifier
        ? { [field(code, 'r')]: `${typeModifier}/${value}` }
        : { [field(code, 'i')]: value };
    }
    const literal = parseLiteral(value, isResourceType);
    if (!literal || value.split('/').length > 4)
      throw badRequest(`Invalid reference '${value}' for '${code}'`);
    if (typeModifier && literal.type !== typeModifier) {
      throw badRequest(`Reference '${value}' is not a ${typeModifier} (parameter '${code}:${typeModifier}')`);
    }
    return { [field(code, 'r')]: `${literal.type}/${literal.id}` };
  }
  const alternatives: Filter[] = [{ [field(code, 'u')]: value }];
  const literal = parseLiteral(value, isResourceType);
  if (literal) alternatives.push({ [field(code, 'r')]: `${literal.type}/${literal.id}` });
  return orOf(alternatives);
}

function identifierMatch(code: string, v: SearchValue): Filter {
  const [a = '', b] = v.parts;
  if (v.parts.length === 1) return { [field(code, 'idf.v')]: a };
  if (v.parts.length !== 2) throw badRequest(`Invalid identifier '${v.value}' for '${code}:identifier'`);
  if (a === '') return entryFilter(code, { 'idf.s': { $exists: false }, 'idf.v': b });
  if (!b) return { [field(code, 'idf.s')]: a };
  return entryFilter(code, { 'idf.s': a, 'idf.v': b });
}

export function referenceFilter(
  code: string,
  modifier: string | undefined,
  values: SearchValue[],
  isResourceType: (t: string) => boolean,
): Filter {
  if (modifier === 'missing') return orOf(values.map((v) => missingFilter(code, v.value)));
  if (modifier === 'identifier') return orOf(values.map((v) => identifierMatch(code, v)));
  if (modifier !== undefined && !isResourceType(modifier)) {
    throw badRequest(`Unknown modifier ':${modifier}' for reference parameter '${code}'`);
  }
  return orOf(values.map((v) => referenceMatch(code, v.value, modifier, isResourceType)));
}

/** Filter on a reference parameter: refers to one of `ids` of `type` (chains and _has). */
export function referenceToAny(code: string, type: string, ids: string[]): Filter {
  return { [field(code, 'r')]: { $in: ids.map((id) => `${type}/${id}`) } };
}

export function referenceSortKeys(entries: ReferenceEntry[]): SortKeys | undefined {
  return sortKeysOf(entries.map((e) => e.r ?? e.u ?? e.idf?.v ?? '').filter((k) => k !== ''));
}
