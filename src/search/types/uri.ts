import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { SearchValue } from '../request';
import {
  escapeRegex,
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
 * Uri parameters (R4 search.html#uri).
 * Index: `idx[code] = [uri]`, as written (uris are case sensitive); a canonical `url|version` also
 * gives `url`. Reference-typed nodes (rare) give their `reference`.
 */
export const URI_MODIFIERS: ReadonlySet<string> = new Set(['above', 'below', 'missing']);

export function indexUri(nodes: ValueNode[]): string[] {
  const out = new Set<string>();
  for (const n of nodes) {
    const d = n.data;
    const v = typeof d === 'string' ? d : isRecord(d) ? str(d.reference) : undefined;
    if (!v) continue;
    out.add(v);
    const bar = v.indexOf('|');
    if (bar > 0) out.add(v.slice(0, bar));
  }
  return [...out];
}

/** `:above`: stored uris of which the search value is a descendant, i.e. its prefixes at `/` boundaries. */
function ancestors(value: string): string[] {
  const out = [value];
  let v = value;
  while (true) {
    const trimmed = v.endsWith('/') ? v.slice(0, -1) : v;
    const slash = trimmed.lastIndexOf('/');
    if (slash <= 0 || trimmed.slice(0, slash).endsWith('/')) break;
    v = trimmed.slice(0, slash);
    out.push(v, `${v}/`);
  }
  return out;
}

export function uriFilter(code: string, modifier: string | undefined, values: SearchValue[]): Filter {
  const one = (v: SearchValue): Filter => {
    switch (modifier) {
      case undefined:
        return { [field(code)]: v.value };
      case 'above':
        return { [field(code)]: { $in: ancestors(v.value) } };
      case 'below': {
        const base = v.value.endsWith('/') ? v.value : `${v.value}/`;
        return { [field(code)]: { $regex: `^(${escapeRegex(v.value)}$|${escapeRegex(base)})` } };
      }
      case 'missing':
        return missingFilter(code, v.value);
      default:
        throw badRequest(`Unknown modifier ':${modifier}' for uri parameter '${code}'`);
    }
  };
  return orOf(values.map(one));
}

export function uriSortKeys(entries: string[]): SortKeys | undefined {
  return sortKeysOf(entries);
}
