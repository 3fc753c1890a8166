import { badRequest, notSupported } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
import { ancestors, descendants, type CodeSystemIndex, type Expansion } from '../../validation/terminology';
import {
  entryFilter,
  escapeRegex,
  field,
  isRecord,
  missingFilter,
  normalizeText,
  orOf,
  str,
  type ValueNode,
  sortKeysOf,
  type SortKeys,
} from './common';

/**
 * Token parameters (R4 search.html#token).
 * Index: `idx[code] = [{s?, c?, t?, ty?}]`: one entry per Coding (a CodeableConcept gives one per coding,
 * plus `{t}` for its text), per Identifier (`s` system, `c` value, `ty` its type codings as
 * `system|code` for :of-type), per ContactPoint (`c` value), per code/string/id/uri/boolean primitive
 * (`c`; a `code` bound to a one-system required ValueSet also gets that system as `s`, so
 * `gender=http://hl7.org/fhir/administrative-gender|male` works). `t` is the display or text, lower case, accents folded, for :text.
 */
export interface TokenEntry {
  s?: string;
  c?: string;
  t?: string;
  ty?: string[];
}

export const TOKEN_MODIFIERS: ReadonlySet<string> = new Set([
  'not',
  'text',
  'of-type',
  'in',
  'not-in',
  'above',
  'below',
  'missing',
]);

function coding(d: Record<string, unknown>): TokenEntry | undefined {
  const e: TokenEntry = {};
  const s = str(d.system);
  const c = str(d.code);
  const t = str(d.display);
  if (s) e.s = s;
  if (c) e.c = c;
  if (t) e.t = normalizeText(t);
  return s || c || t ? e : undefined;
}

function entriesOf(node: ValueNode): TokenEntry[] {
  const d = node.data;
  if (typeof d === 'string') return d.length > 0 ? [node.system ? { s: node.system, c: d } : { c: d }] : [];
  if (typeof d === 'boolean' || typeof d === 'number') return [{ c: String(d) }];
  if (!isRecord(d)) return [];
  switch (node.type) {
    case 'CodeableConcept': {
      const out: TokenEntry[] = [];
      if (Array.isArray(d.coding)) {
        for (const cd of d.coding) {
          const e = isRecord(cd) ? coding(cd) : undefined;
          if (e) out.push(e);
        }
      }
      const text = str(d.text);
      if (text) {
        const t = normalizeText(text);
        if (!out.some((e) => e.t === t)) out.push({ t });
      }
      return out;
    }
    case 'Identifier': {
      const e: TokenEntry = {};
      const s = str(d.system);
      const c = str(d.value);
      if (s) e.s = s;
      if (c) e.c = c;
      if (isRecord(d.type)) {
        const ty: string[] = [];
        if (Array.isArray(d.type.coding)) {
          for (const cd of d.type.coding) {
            if (isRecord(cd) && str(cd.code)) ty.push(`${str(cd.system) ?? ''}|${str(cd.code) ?? ''}`);
          }
        }
        if (ty.length > 0) e.ty = ty;
        const text = str(d.type.text);
        if (text) e.t = normalizeText(text);
      }
      return s || c ? [e] : [];
    }
    case 'ContactPoint': {
      const c = str(d.value);
      return c ? [{ c }] : [];
    }
    default: {
      // Coding, and anything shaped like one.
      const e = coding(d);
      return e ? [e] : [];
    }
  }
}

export function indexToken(nodes: ValueNode[]): TokenEntry[] {
  const seen = new Set<string>();
  const out: TokenEntry[] = [];
  for (const node of nodes) {
    for (const e of entriesOf(node)) {
      const key = `${e.s ?? ''}\u0000${e.c ?? ''}\u0000${e.t ?? ''}\u0000${e.ty?.join('\u0001') ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(e);
    }
  }
  return out;
}

/**
 * What token filters need from terminology (validation/terminology.ts TerminologyService): ValueSet
 * expansions for :in and :not-in, CodeSystem hierarchies for :above and :below.
 */
export interface TerminologySource {
  expand(url: string): Expansion | undefined;
  codeSystem(url: string): CodeSystemIndex | undefined;
}

/** `code`, `system|code`, `|code`, `system|` against one entry. */
function tokenMatch(code: string, v: SearchValue): Filter {
  if (v.parts.length === 1) return { [field(code, 'c')]: v.value };
  if (v.parts.length !== 2) throw badRequest(`Invalid token '${v.value}' for parameter '${code}'`);
  const [system = '', value = ''] = v.parts;
  if (system === '' && value === '') throw badRequest(`Invalid token '|' for parameter '${code}'`);
  if (system === '') return entryFilter(code, { s: { $exists: false }, c: value });
  if (value === '') return { [field(code, 's')]: system };
  return entryFilter(code, { s: system, c: value });
}

/**
 * `:below` (the code and its descendants) and `:above` (the code and its ancestors) by the concept
 * hierarchy of a CodeSystem the server holds (nesting and `parent` properties). Others (SNOMED CT,
 * LOINC) need a terminology server: 501.
 */
function subsumption(
  code: string,
  v: SearchValue,
  direction: 'above' | 'below',
  terminology: TerminologySource | undefined,
): Filter {
  const [system = '', value = ''] = v.parts;
  if (v.parts.length !== 2 || system === '' || value === '') {
    throw badRequest(`:${direction} takes system|code, not '${v.value}'`);
  }
  const cs = terminology?.codeSystem(system);
  if (!cs || cs.concepts.size === 0) throw notSupported(`:${direction} needs the concepts of '${system}'`);
  const related = direction === 'above' ? ancestors(cs, value) : descendants(cs, value, false);
  return entryFilter(code, { s: system, c: { $in: [value, ...related] } });
}

/**
 * :in: the codes of the ValueSet's expansion, system by system; a system the server cannot
 * enumerate (not held, or a filter it cannot evaluate) matches any of its codes; a ValueSet that
 * includes one the server does not hold cannot be expanded: 501.
 */
function inValueSet(code: string, url: string, terminology: TerminologySource | undefined): Filter {
  if (!terminology) throw notSupported(':in needs ValueSet definitions');
  const expansion = terminology.expand(url);
  if (!expansion) throw badRequest(`Unknown ValueSet '${url}'`);
  if (expansion.open) throw notSupported(`ValueSet '${url}' includes a ValueSet this server does not hold`);
  const alternatives: Filter[] = [];
  for (const system of expansion.openSystems) alternatives.push({ [field(code, 's')]: system });
  for (const [system, members] of expansion.codes) {
    if (expansion.openSystems.has(system) || members.size === 0) continue;
    const codes = [...members.keys()];
    alternatives.push(entryFilter(code, { s: system, c: { $in: codes } }));
    // Plain `code` elements carry no system in the index: their code is checked alone.
    alternatives.push(entryFilter(code, { s: { $exists: false }, c: { $in: codes } }));
  }
  if (alternatives.length === 0) return { _id: { $in: [] } };
  return orOf(alternatives);
}

export function tokenFilter(
  code: string,
  modifier: string | undefined,
  values: SearchValue[],
  terminology?: TerminologySource,
): Filter {
  switch (modifier) {
    case undefined:
      return orOf(values.map((v) => tokenMatch(code, v)));
    case 'not':
      // Resources with no matching token, including those with no value at all.
      return { $nor: values.map((v) => tokenMatch(code, v)) };
    case 'text':
      return orOf(
        values.map((v) => ({
          [field(code, 't')]: { $regex: `(^|\\s)${escapeRegex(normalizeText(v.value))}` },
        })),
      );
    case 'of-type':
      return orOf(
        values.map((v) => {
          const [system, typeCode, value] = v.parts;
          if (v.parts.length !== 3 || !typeCode || !value) {
            throw badRequest(`:of-type takes system|code|value, not '${v.value}'`);
          }
          return entryFilter(code, { ty: `${system ?? ''}|${typeCode}`, c: value });
        }),
      );
    case 'in':
      return orOf(values.map((v) => inValueSet(code, v.value, terminology)));
    case 'not-in':
      return { $nor: values.map((v) => inValueSet(code, v.value, terminology)) };
    case 'above':
    case 'below':
      return orOf(values.map((v) => subsumption(code, v, modifier, terminology)));
    case 'missing':
      return orOf(values.map((v) => missingFilter(code, v.value)));
    default:
      throw badRequest(`Unknown modifier ':${modifier}' for token parameter '${code}'`);
  }
}

/** Sorts by code (entries without one, e.g. a CodeableConcept's text, by their text). */
export function tokenSortKeys(entries: TokenEntry[]): SortKeys | undefined {
  const codes = entries.map((e) => e.c).filter((c): c is string => c !== undefined);
  return sortKeysOf(codes.length > 0 ? codes : entries.map((e) => e.t ?? ''));
}
