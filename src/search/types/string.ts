import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
import {
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
 * String parameters (R4 search.html#string).
 * Index: `idx[code] = [{n, e}]`, one entry per part (HumanName: family, each given, prefix, suffix,
 * text; Address: each line, city, district, state, postalCode, country, text): `n` is lower case
 * with accents folded, for the default starts-with and :contains; `e` is the original, for :exact.
 */
export interface StringEntry {
  n: string;
  e: string;
}

export const STRING_MODIFIERS: ReadonlySet<string> = new Set(['exact', 'contains', 'missing']);

function partsOf(node: ValueNode): string[] {
  const d = node.data;
  if (typeof d === 'string') return [d];
  if (typeof d === 'number' || typeof d === 'boolean') return [String(d)];
  if (!isRecord(d)) return [];
  const out: string[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'string' && v.length > 0) out.push(v);
    else if (Array.isArray(v)) for (const x of v) add(x);
  };
  if (node.type === 'HumanName') {
    add(d.family);
    add(d.given);
    add(d.prefix);
    add(d.suffix);
    add(d.text);
  } else if (node.type === 'Address') {
    add(d.line);
    add(d.city);
    add(d.district);
    add(d.state);
    add(d.postalCode);
    add(d.country);
    add(d.text);
  } else {
    // Other complex types searched as strings (rare in R4 core): every string inside.
    for (const v of Object.values(d)) if (typeof v === 'string') add(v);
    add(str(d.text));
  }
  return out;
}

export function indexString(nodes: ValueNode[]): StringEntry[] {
  const seen = new Set<string>();
  const out: StringEntry[] = [];
  for (const node of nodes) {
    for (const e of partsOf(node)) {
      if (seen.has(e)) continue;
      seen.add(e);
      out.push({ n: normalizeText(e), e });
    }
  }
  return out;
}

export function stringFilter(code: string, modifier: string | undefined, values: SearchValue[]): Filter {
  const one = (v: SearchValue): Filter => {
    switch (modifier) {
      case undefined:
        return { [field(code, 'n')]: { $regex: `^${escapeRegex(normalizeText(v.value))}` } };
      case 'exact':
        return { [field(code, 'e')]: v.value };
      case 'contains':
        return { [field(code, 'n')]: { $regex: escapeRegex(normalizeText(v.value)) } };
      case 'missing':
        return missingFilter(code, v.value);
      default:
        throw badRequest(`Unknown modifier ':${modifier}' for string parameter '${code}'`);
    }
  };
  return orOf(values.map(one));
}

export function stringSortKeys(entries: StringEntry[]): SortKeys | undefined {
  return sortKeysOf(entries.map((e) => e.n));
}
