import type { SearchParameter } from 'fhir/r4';
import type { DefinitionsRegistry } from '../../fhir/definitions';
import { badRequest } from '../../fhir/errors';
import type { Filter } from '../../store/backend';
import type { ParamType, SearchValue } from '../request';
import { andOf, entryFilter, escapeRegex, missingFilter, normalizeText, orOf } from './common';
import { rangeCondition, parseDateRange } from './date';
import { numberEntryCondition, parseNumberValue } from './number';
import { quantityEntryCondition } from './quantity';

/**
 * Composite parameters (R4 search.html#composite), e.g. `code-value-quantity=http://loinc.org|8480-6$gt100`.
 * Index: `idx[code] = [{c0, c1, ...}]`: for each node of the parameter's expression, every combination
 * of its components' entries, each encoded as its own parameter type encodes one entry. All components
 * of a search value must match within one tuple.
 */
export type CompositeEntry = Record<string, unknown>;

export interface CompositeComponent {
  type: ParamType;
  expression: string;
  definition: string;
}

const byUrlCache = new WeakMap<DefinitionsRegistry, Map<string, SearchParameter>>();

function searchParameterByUrl(registry: DefinitionsRegistry, url: string): SearchParameter | undefined {
  let m = byUrlCache.get(registry);
  if (!m) {
    m = new Map();
    for (const t of registry.resourceTypes) {
      for (const p of registry.searchParametersFor(t).values()) if (p.url) m.set(p.url, p);
    }
    byUrlCache.set(registry, m);
  }
  return m.get(url);
}

/** The components of a composite parameter, with the type of the parameter each one refers to. */
export function compositeComponents(
  param: SearchParameter,
  registry: DefinitionsRegistry,
): CompositeComponent[] {
  return (param.component ?? []).map((c) => {
    const def = searchParameterByUrl(registry, c.definition);
    return { type: (def?.type ?? 'token') as ParamType, expression: c.expression, definition: c.definition };
  });
}

/** Every combination of one entry per component: `[[a, b], [x]]` -> `[{c0: a, c1: x}, {c0: b, c1: x}]`. */
export function combine(componentEntries: unknown[][]): CompositeEntry[] {
  let tuples: CompositeEntry[] = [{}];
  componentEntries.forEach((entries, i) => {
    const next: CompositeEntry[] = [];
    for (const t of tuples) for (const e of entries) next.push({ ...t, [`c${i}`]: e });
    tuples = next;
  });
  return componentEntries.length > 0 ? tuples : [];
}

/** Renames the field names of an entry condition to live under `prefix` (operators are kept). */
export function underField(cond: Filter, prefix: string): Filter {
  const out: Filter = {};
  for (const [k, v] of Object.entries(cond)) {
    if (k === '$and' || k === '$or' || k === '$nor') {
      out[k] = (v as Filter[]).map((c) => underField(c, prefix));
    } else if (k.startsWith('$')) {
      out[k] = v;
    } else {
      out[`${prefix}.${k}`] = v;
    }
  }
  return out;
}

/** The condition one component value puts on one entry of its type. */
function componentCondition(code: string, type: ParamType, v: SearchValue, now: number): Filter {
  switch (type) {
    case 'token': {
      if (v.parts.length === 1) return { c: v.value };
      const [system = '', value = ''] = v.parts;
      if (system === '') return { s: { $exists: false }, c: value };
      return value === '' ? { s: system } : { s: system, c: value };
    }
    case 'quantity':
      return quantityEntryCondition(code, v);
    case 'number':
      return numberEntryCondition(v.prefix, parseNumberValue(code, v.value));
    case 'date': {
      const r = parseDateRange(v.value);
      if (!r) throw badRequest(`Invalid date '${v.value}' in composite '${code}'`);
      return rangeCondition(v.prefix, r, Math.abs(now - r.lo) * 0.1);
    }
    case 'string':
      return { n: { $regex: `^${escapeRegex(normalizeText(v.value))}` } };
    case 'reference':
      return v.value.includes('/') ? { r: v.value } : { i: v.value };
    case 'uri':
      return { $eq: v.value };
    default:
      throw badRequest(`Composite '${code}' has a component of unsupported type '${type}'`);
  }
}

export function compositeFilter(
  code: string,
  modifier: string | undefined,
  values: SearchValue[],
  components: CompositeComponent[],
  /** The clock of the `ap` prefix on date components (ms since the epoch). */
  now: number = Date.now(),
): Filter {
  if (modifier === 'missing') return orOf(values.map((v) => missingFilter(code, v.value)));
  if (modifier !== undefined)
    throw badRequest(`Unknown modifier ':${modifier}' for composite parameter '${code}'`);
  return orOf(
    values.map((v) => {
      const parts = v.components ?? [];
      if (parts.length !== components.length) {
        throw badRequest(`Composite '${code}' takes ${components.length} '$'-separated values`);
      }
      const conds: Filter[] = parts.map((p, i) => {
        const c = componentCondition(code, components[i]?.type ?? 'token', p, now);
        // A uri component is a plain string: compare the tuple member itself.
        if ('$eq' in c) return { [`c${i}`]: c.$eq };
        return underField(c, `c${i}`);
      });
      return entryFilter(code, andOf(conds));
    }),
  );
}
