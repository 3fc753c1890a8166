import type { DefinitionsRegistry } from '../fhir/definitions';
import type { Filter } from '../store/backend';
import type { IncludeTarget } from './request';
import { field, isRecord, orOf } from './types/common';

/** What include resolution needs of a found document: its type, id and index. */
export interface IncludeSource {
  type: string;
  id: string;
  idx: Record<string, unknown>;
}

/** One query to run against the collection of `type`. */
export interface IncludeQuery {
  type: string;
  filter: Filter;
}

function referenceParams(registry: DefinitionsRegistry, type: string, param: string): string[] {
  if (param !== '*') return [param];
  return [...registry.searchParametersFor(type).values()]
    .filter((p) => p.type === 'reference')
    .map((p) => p.code);
}

function referencesOf(idx: Record<string, unknown>, code: string): string[] {
  const v = idx[code];
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const e of v) if (isRecord(e) && typeof e.r === 'string') out.push(e.r);
  return out;
}

/**
 * `_include`: the queries fetching the resources that `sources` refer to through the targets'
 * parameters (R4 search.html#include). One query per target type, by `_id`. For `:iterate`, call again
 * with the resources just included (and only the iterate targets) until nothing new comes back.
 */
export function includeQueries(
  targets: IncludeTarget[],
  sources: IncludeSource[],
  registry: DefinitionsRegistry,
): IncludeQuery[] {
  const idsByType = new Map<string, Set<string>>();
  for (const t of targets) {
    for (const s of sources) {
      if (t.type !== '*' && t.type !== s.type) continue;
      for (const code of referenceParams(registry, s.type, t.param)) {
        for (const ref of referencesOf(s.idx, code)) {
          const slash = ref.indexOf('/');
          const type = ref.slice(0, slash);
          const id = ref.slice(slash + 1);
          if (t.targetType && t.targetType !== type) continue;
          let ids = idsByType.get(type);
          if (!ids) idsByType.set(type, (ids = new Set()));
          ids.add(id);
        }
      }
    }
  }
  return [...idsByType].map(([type, ids]) => ({ type, filter: { deleted: false, _id: { $in: [...ids] } } }));
}

/**
 * `_revinclude`: the queries fetching the resources that refer to `sources` through the targets'
 * parameters (e.g. `Provenance:target`). `*` as type is every type (one query each), as parameter every
 * reference parameter of the type.
 */
export function revincludeQueries(
  targets: IncludeTarget[],
  sources: Array<Pick<IncludeSource, 'type' | 'id'>>,
  registry: DefinitionsRegistry,
): IncludeQuery[] {
  const out: IncludeQuery[] = [];
  for (const t of targets) {
    const refs = sources
      .filter((s) => !t.targetType || s.type === t.targetType)
      .map((s) => `${s.type}/${s.id}`);
    if (refs.length === 0) continue;
    const types = t.type === '*' ? registry.resourceTypes : [t.type];
    for (const type of types) {
      const alternatives = referenceParams(registry, type, t.param).map((code) => ({
        [field(code, 'r')]: { $in: refs },
      }));
      if (alternatives.length === 0) continue;
      out.push({ type, filter: { $and: [{ deleted: false }, orOf(alternatives)] } });
    }
  }
  return out;
}
