import type { Resource } from 'fhir/r4';
import { Query } from 'mingo';
import { loadDefinitions } from '../../src/fhir/definitions';
import type { Filter, Sort } from '../../src/store/backend';
import type { CurrentDoc } from '../../src/store/documents';
import { compileSearch, referencesOf, type CompileContext } from '../../src/search/compile';
import { IndexExtractor } from '../../src/search/extract';
import { parseSearchRequest } from '../../src/search/parse';

export const { registry } = loadDefinitions();
export const extractor = new IndexExtractor(registry);

let counter = 0;

/** A live CurrentDoc for a resource, its idx extracted as the store would. */
export function docOf(resource: Resource, lastUpdated = '2024-05-01T12:00:00.000Z'): CurrentDoc {
  const id = resource.id ?? `r${++counter}`;
  const r = { ...resource, id, meta: { ...resource.meta, lastUpdated } } as Resource;
  return { _id: id, versionId: 1, lastUpdated, deleted: false, resource: r, idx: extractor.extract(r) };
}

function typeOf(doc: CurrentDoc): string | undefined {
  return doc.resource?.resourceType;
}

/** A compile context over an in-memory list of documents, evaluated with mingo. */
export function contextOver(docs: CurrentDoc[]): CompileContext {
  const matching = (type: string, filter: Filter): CurrentDoc[] =>
    docs.filter((d) => typeOf(d) === type && new Query(filter).test(d as unknown as Record<string, unknown>));
  return {
    registry,
    resolveIds: async (type, filter) => matching(type, filter).map((d) => d._id),
    resolveReferences: async (type, filter, code) =>
      matching(type, filter).flatMap((d) => referencesOf(d, code)),
    now: () => Date.parse('2024-06-01T00:00:00Z'),
  };
}

export async function compileQuery(
  type: string,
  query: string,
  docs: CurrentDoc[] = [],
): Promise<{ filter: Filter; sort: Sort }> {
  const request = parseSearchRequest(type, [...new URLSearchParams(query)], registry, { strict: true });
  return compileSearch(request, contextOver(docs));
}

/** Ids of the documents of `type` the search matches, in the compiled sort order. */
export async function search(type: string, query: string, docs: CurrentDoc[]): Promise<string[]> {
  const { filter, sort } = await compileQuery(type, query, docs);
  const candidates = docs.filter((d) => typeOf(d) === type);
  return new Query(filter)
    .find<CurrentDoc>(candidates as unknown as Record<string, unknown>[])
    .sort(sort)
    .all()
    .map((d) => d._id);
}

/** Whether `type?query` matches the one resource. */
export async function matches(resource: Resource, query: string, others: Resource[] = []): Promise<boolean> {
  const doc = docOf(resource);
  const all = [doc, ...others.map((o) => docOf(o))];
  const { filter } = await compileQuery(resource.resourceType, query, all);
  return new Query(filter).test(doc as unknown as Record<string, unknown>);
}
