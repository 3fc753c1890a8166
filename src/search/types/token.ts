import type { CodeSystemConcept, ValueSet } from 'fhir/r4';
import { badRequest, notSupported } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
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

/** What token filters need from the definitions: ValueSets and CodeSystems for :in and :not-in. */
export interface TerminologySource {
  valueSet(url: string): ValueSet | undefined;
  codeSystem(url: string): { concept?: CodeSystemConcept[] } | undefined;
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

function flattenConcepts(concepts: CodeSystemConcept[] | undefined, out: string[]): void {
  for (const c of concepts ?? []) {
    out.push(c.code);
    flattenConcepts(c.concept, out);
  }
}

/**
 * The (system, codes) of a ValueSet, for :in. Handles expansions, and compose.include by concept list
 * or by whole (enumerated) CodeSystem; `undefined` codes means any code of the system.
 * Filters, nested value sets and excludes need a terminology server: 501.
 */
export function expandValueSet(
  url: string,
  terminology: TerminologySource,
): Map<string, Set<string> | undefined> {
  const vs = terminology.valueSet(url);
  if (!vs) throw badRequest(`Unknown ValueSet '${url}'`);
  const out = new Map<string, Set<string> | undefined>();
  const add = (system: string, codes: string[] | undefined): void => {
    if (codes === undefined) {
      out.set(system, undefined);
      return;
    }
    if (out.has(system) && out.get(system) === undefined) return;
    const set = out.get(system) ?? new Set<string>();
    for (const c of codes) set.add(c);
    out.set(system, set);
  };
  if (vs.expansion?.contains) {
    const walk = (cs: NonNullable<ValueSet['expansion']>['contains']): void => {
      for (const c of cs ?? []) {
        if (c.system && c.code) add(c.system, [c.code]);
        walk(c.contains);
      }
    };
    walk(vs.expansion.contains);
    return out;
  }
  if (vs.compose?.exclude && vs.compose.exclude.length > 0) {
    throw notSupported(`ValueSet '${url}' has excludes; :in needs a terminology server for it`);
  }
  for (const inc of vs.compose?.include ?? []) {
    if (inc.filter && inc.filter.length > 0)
      throw notSupported(`ValueSet '${url}' uses filters; :in cannot expand it`);
    if (inc.valueSet && inc.valueSet.length > 0) {
      for (const nested of inc.valueSet) {
        for (const [s, codes] of expandValueSet(nested, terminology)) add(s, codes ? [...codes] : undefined);
      }
    }
    if (!inc.system) continue;
    if (inc.concept && inc.concept.length > 0) {
      add(
        inc.system,
        inc.concept.map((c) => c.code),
      );
    } else {
      const cs = terminology.codeSystem(inc.system);
      const codes: string[] = [];
      flattenConcepts(cs?.concept, codes);
      add(inc.system, codes.length > 0 ? codes : undefined);
    }
  }
  return out;
}

/**
 * `:below` (the code and its descendants) and `:above` (the code and its ancestors) by the concept
 * hierarchy of a CodeSystem the server holds. Others (SNOMED CT, LOINC) need a terminology server: 501.
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
  const concepts = terminology?.codeSystem(system)?.concept;
  if (!concepts || concepts.length === 0)
    throw notSupported(`:${direction} needs the concepts of '${system}'`);
  const parents = new Map<string, string | undefined>();
  const children = new Map<string, string[]>();
  const walk = (cs: CodeSystemConcept[] | undefined, parent: string | undefined): void => {
    for (const c of cs ?? []) {
      parents.set(c.code, parent);
      if (parent) children.set(parent, [...(children.get(parent) ?? []), c.code]);
      walk(c.concept, c.code);
    }
  };
  walk(concepts, undefined);
  const codes = new Set<string>([value]);
  if (direction === 'above') {
    for (let p = parents.get(value); p !== undefined && !codes.has(p); p = parents.get(p)) codes.add(p);
  } else {
    const queue = [value];
    for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
      for (const child of children.get(c) ?? []) {
        if (!codes.has(child)) {
          codes.add(child);
          queue.push(child);
        }
      }
    }
  }
  return entryFilter(code, { s: system, c: { $in: [...codes] } });
}

function inValueSet(code: string, url: string, terminology: TerminologySource | undefined): Filter {
  if (!terminology) throw notSupported(':in needs ValueSet definitions');
  const expansion = expandValueSet(url, terminology);
  const alternatives: Filter[] = [];
  for (const [system, codes] of expansion) {
    alternatives.push(
      codes === undefined
        ? { [field(code, 's')]: system }
        : entryFilter(code, { s: system, c: { $in: [...codes] } }),
    );
    // Plain `code` elements carry no system in the index: their code is checked alone.
    if (codes !== undefined) {
      alternatives.push(entryFilter(code, { s: { $exists: false }, c: { $in: [...codes] } }));
    }
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
