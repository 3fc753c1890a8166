import type { DefinitionsRegistry } from '../fhir/definitions';
import { badRequest, notSupported } from '../fhir/errors';
import type { Filter, Sort } from '../store/backend';
import type {
  ChainFilter,
  HasFilter,
  ParamFilter,
  SearchFilter,
  SearchRequest,
  SearchValue,
} from './request';
import { andOf, escapeRegex, field, isRecord, normalizeText, orOf, sortField, str } from './types/common';
import { WORD } from './text';
import { compositeComponents, compositeFilter } from './types/composite';
import { terminologyOf } from '../validation/terminology';
import { dateFilter, parseDateRange } from './types/date';
import { nearFilter } from './types/near';
import { numberFilter } from './types/number';
import { quantityFilter } from './types/quantity';
import { parseLiteral, referenceFilter, referenceToAny } from './types/reference';
import { stringFilter } from './types/string';
import { tokenFilter } from './types/token';
import { uriFilter } from './types/uri';

export interface CompileContext {
  registry: DefinitionsRegistry;
  /** Logical ids of the live resources of `type` matching `filter` (chains run their sub-queries here). */
  resolveIds(type: string, filter: Filter): Promise<string[]>;
  /**
   * The values of `idx[code]` (reference entries, see types/reference.ts) of the live resources of `type`
   * matching `filter`; `_has` needs it (`referencesOf` below turns documents into them). Without it,
   * `_has` answers 501.
   */
  resolveReferences?(type: string, filter: Filter, code: string): Promise<unknown[]>;
  /** The clock, for the `ap` prefix of dates. */
  now?: () => number;
}

/** The reference entries a document holds for `code`: an implementation aid for `resolveReferences`. */
export function referencesOf(doc: { idx?: Record<string, unknown> }, code: string): unknown[] {
  const v = doc.idx?.[code];
  return Array.isArray(v) ? v : [];
}

const LIVE: Filter = { deleted: false };

/**
 * A search request -> the MongoDB filter and sort over CurrentDocs (ARCHITECTURE.md, Search 3).
 * The filter always requires `deleted: false`; the sort always ends with `_id` so that paging is stable.
 */
export async function compileSearch(
  request: SearchRequest,
  ctx: CompileContext,
): Promise<{ filter: Filter; sort: Sort }> {
  const compiler = new Compiler(ctx);
  const parts: Filter[] = [LIVE];
  for (const f of request.filters) parts.push(await compiler.filter(request.resourceType, f));
  return { filter: andOf(parts), sort: compileSort(request, ctx.registry) };
}

export function compileSort(request: SearchRequest, registry: DefinitionsRegistry): Sort {
  const sort: Sort = {};
  const type = request.resourceType ?? request.types?.[0] ?? registry.resourceTypes[0] ?? '';
  for (const rule of request.sort) {
    const dir = rule.descending ? -1 : 1;
    let key: string | undefined;
    if (rule.code === '_id') key = '_id';
    else if (rule.code === '_lastUpdated') key = 'lastUpdated';
    else {
      const p = registry.searchParameter(type, rule.code);
      key =
        p && p.type !== 'composite' && p.type !== 'special'
          ? sortField(rule.code, rule.descending)
          : undefined;
    }
    if (key && !(key in sort)) sort[key] = dir;
  }
  if (!('_id' in sort)) sort._id = 1;
  return sort;
}

class Compiler {
  constructor(private readonly ctx: CompileContext) {}

  private isResourceType = (t: string): boolean => this.ctx.registry.isResourceType(t);

  async filter(type: string | undefined, f: SearchFilter): Promise<Filter> {
    switch (f.kind) {
      case 'param':
        return f.code === '_list' ? this.list(type, f) : this.param(type, f);
      case 'chain':
        return this.chain(f);
      case 'has':
        return this.has(type, f);
    }
  }

  private param(type: string | undefined, f: ParamFilter): Filter {
    const { code, modifier, values } = f;
    if (code === '_id') return idFilter(modifier, values);
    if (code === '_lastUpdated') return lastUpdatedFilter(modifier, values, this.now());
    if (code === '_text' || code === '_content') return wordsFilter(code, modifier, values);
    switch (f.type) {
      case 'string':
        return stringFilter(code, modifier, values);
      case 'token':
        return tokenFilter(code, modifier, values, terminologyOf(this.ctx.registry));
      case 'reference':
        return referenceFilter(code, modifier, values, this.isResourceType);
      case 'date':
        return dateFilter(code, modifier, values, this.now());
      case 'number':
        return numberFilter(code, modifier, values);
      case 'quantity':
        return quantityFilter(code, modifier, values);
      case 'uri':
        return uriFilter(code, modifier, values);
      case 'composite': {
        const param = type ? this.ctx.registry.searchParameter(type, code) : undefined;
        if (!param) throw badRequest(`Unknown composite parameter '${code}'`);
        return compositeFilter(
          code,
          modifier,
          values,
          compositeComponents(param, this.ctx.registry),
          this.now(),
        );
      }
      case 'special':
        if (code === 'near') return nearFilter(code, modifier, values);
        throw notSupported(`Search parameter '${code}' is not supported`);
      default:
        throw notSupported(`Search parameter '${code}' of type ${f.type} is not supported`);
    }
  }

  /** `subject:Patient.name=x`: the Patients named x, then the references to them. */
  private async chain(f: ChainFilter): Promise<Filter> {
    const alternatives: Filter[] = [];
    for (const target of f.targetTypes) {
      if (f.next.kind !== 'has' && !this.ctx.registry.searchParameter(target, f.next.code)) continue;
      const sub = await this.filter(target, f.next);
      const ids = await this.ctx.resolveIds(target, andOf([LIVE, sub]));
      if (ids.length > 0) alternatives.push(referenceToAny(f.code, target, ids));
    }
    return alternatives.length > 0 ? orOf(alternatives) : NOTHING;
  }

  /** `_list=42`: the resources List/42 has as entry.item. */
  private async list(type: string | undefined, f: ParamFilter): Promise<Filter> {
    if (!this.ctx.resolveReferences)
      throw notSupported('_list is not supported by this server configuration');
    const refs = await this.ctx.resolveReferences(
      'List',
      { deleted: false, _id: { $in: f.values.map((v) => v.value) } },
      'item',
    );
    return this.idsReferenced(refs, type);
  }

  /** `_has:Observation:patient:code=x`: the Observations with code x, then the resources they refer to. */
  private async has(type: string | undefined, f: HasFilter): Promise<Filter> {
    if (!type) throw badRequest('_has needs a resource type');
    if (!this.ctx.resolveReferences) throw notSupported('_has is not supported by this server configuration');
    const sub = await this.filter(f.type, f.next);
    const refs = await this.ctx.resolveReferences(
      f.type,
      andOf([LIVE, sub, { [field(f.referenceParam, 't')]: type }]),
      f.referenceParam,
    );
    return this.idsReferenced(refs, type);
  }

  /** The documents that reference entries (types/reference.ts) point at literally, of `type` if given. */
  private idsReferenced(refs: unknown[], type: string | undefined): Filter {
    const ids = new Set<string>();
    for (const r of refs) {
      const ref = isRecord(r) ? str(r.r) : undefined;
      const literal = ref ? parseLiteral(ref, this.isResourceType) : undefined;
      if (literal && (!type || literal.type === type)) ids.add(literal.id);
    }
    return ids.size > 0 ? { _id: { $in: [...ids] } } : NOTHING;
  }

  private now(): number {
    return this.ctx.now ? this.ctx.now() : Date.now();
  }
}

/** Matches no document. */
const NOTHING: Filter = { _id: { $in: [] } };

/** `_id` is the document's `_id`: exact, case-sensitive. */
function idFilter(modifier: string | undefined, values: SearchValue[]): Filter {
  const ids = values.map((v) => v.value);
  switch (modifier) {
    case undefined:
      return ids.length === 1 ? { _id: ids[0] } : { _id: { $in: ids } };
    case 'not':
      return { _id: { $nin: ids } };
    case 'missing':
      return values.some((v) => v.value === 'true') ? NOTHING : {};
    default:
      throw badRequest(`Modifier ':${modifier}' is not supported on _id`);
  }
}

/**
 * `_lastUpdated` compares the top-level `lastUpdated` (an ISO instant with milliseconds in UTC, so
 * string order is time order) with the search value's range.
 */
function lastUpdatedFilter(modifier: string | undefined, values: SearchValue[], now: number): Filter {
  if (modifier !== undefined) throw badRequest(`Modifier ':${modifier}' is not supported on _lastUpdated`);
  const iso = (ms: number): string => new Date(ms).toISOString();
  return orOf(
    values.map((v) => {
      const r = parseDateRange(v.value);
      if (!r) throw badRequest(`Invalid date '${v.value}' for _lastUpdated`);
      const lo = iso(r.lo);
      const hi = iso(r.hi);
      switch (v.prefix ?? 'eq') {
        case 'eq':
          return { lastUpdated: { $gte: lo, $lte: hi } };
        case 'ne':
          return { $nor: [{ lastUpdated: { $gte: lo, $lte: hi } }] };
        case 'gt':
        case 'sa':
          return { lastUpdated: { $gt: hi } };
        case 'lt':
        case 'eb':
          return { lastUpdated: { $lt: lo } };
        case 'ge':
          return { lastUpdated: { $gte: lo } };
        case 'le':
          return { lastUpdated: { $lte: hi } };
        case 'ap': {
          const gap = Math.abs(now - r.lo) * 0.1;
          return { lastUpdated: { $gte: iso(r.lo - gap), $lte: iso(r.hi + gap) } };
        }
        default:
          throw badRequest(`Invalid prefix for _lastUpdated`);
      }
    }),
  );
}

/** `_text` / `_content`: every word of a value starts some indexed word (see text.ts). */
function wordsFilter(code: string, modifier: string | undefined, values: SearchValue[]): Filter {
  if (modifier === 'missing') return { [field(code)]: { $exists: values.some((v) => v.value === 'false') } };
  if (modifier !== undefined) throw badRequest(`Modifier ':${modifier}' is not supported on ${code}`);
  return orOf(
    values.map((v) => {
      const words = normalizeText(v.value).match(WORD) ?? [];
      if (words.length === 0) throw badRequest(`${code} needs at least one word`);
      return andOf(words.map((w) => ({ [field(code)]: { $regex: `^${escapeRegex(w)}` } })));
    }),
  );
}
