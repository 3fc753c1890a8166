import { Query } from 'mingo';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { compileSearch } from '../search/compile';
import { parseSearchRequest } from '../search/parse';
import type { Filter } from '../store/backend';

/** A granular scope's query, compiled once: a filter for queries and a test for in-memory resources. */
export interface CompiledQuery {
  filter: Filter;
  test(doc: Record<string, unknown>): boolean;
}

/**
 * Compiles the query of granular scopes (`patient/Observation.rs?category=laboratory`) with the
 * search machinery, cached by type and query text. Only plain parameter filters are accepted:
 * chains and `_has` would need sub-queries whose answer changes with the data, and result
 * parameters (`_include`, `_sort`, ...) do not select anything. A query that does not compile grants
 * nothing (undefined), never more.
 */
export class GranularCompiler {
  private readonly cache = new Map<string, Promise<CompiledQuery | undefined>>();

  constructor(
    private readonly registry: DefinitionsRegistry,
    private readonly maxEntries = 1000,
  ) {}

  compile(type: string, query: Array<[string, string]>): Promise<CompiledQuery | undefined> {
    const key = `${type}?${new URLSearchParams(query).toString()}`;
    let hit = this.cache.get(key);
    if (!hit) {
      if (this.cache.size >= this.maxEntries) this.cache.clear();
      hit = this.build(type, query).catch(() => undefined);
      this.cache.set(key, hit);
    }
    return hit;
  }

  private async build(type: string, query: Array<[string, string]>): Promise<CompiledQuery | undefined> {
    const request = parseSearchRequest(type, query, this.registry, { strict: true });
    const shaping =
      request.include.length + request.revinclude.length + request.sort.length > 0 ||
      [request.count, request.offset, request.summary, request.elements, request.total, request.types].some(
        (v) => v !== undefined,
      );
    if (shaping) return undefined;
    if (request.filters.length === 0 || request.filters.some((f) => f.kind !== 'param')) return undefined;
    const { filter } = await compileSearch(request, {
      registry: this.registry,
      resolveIds: () => Promise.reject(new Error('chains are not allowed in scopes')),
    });
    const q = new Query(filter, {});
    return { filter, test: (doc) => q.test(doc) };
  }
}
