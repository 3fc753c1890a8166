import type { SearchParameter } from 'fhir/r4';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { badRequest } from '../fhir/errors';
import {
  MAX_COUNT,
  type IncludeTarget,
  type ParamType,
  type SearchFilter,
  type SearchRequest,
  type SearchValue,
  type SortRule,
} from './request';
import { PREFIXES, type Prefix } from './types/common';
import { compositeComponents } from './types/composite';
import { DATE_MODIFIERS, parseDateRange } from './types/date';
import { NUMBER_MODIFIERS } from './types/number';
import { QUANTITY_MODIFIERS } from './types/quantity';
import { REFERENCE_MODIFIERS } from './types/reference';
import { STRING_MODIFIERS } from './types/string';
import { TOKEN_MODIFIERS } from './types/token';
import { URI_MODIFIERS } from './types/uri';

export interface ParseOptions {
  /** `Prefer: handling=strict`: unknown parameters and modifiers are errors, not ignored. */
  strict: boolean;
}

/** Parameters of the HTTP layer, not of the search: never errors, never reported. */
const NOT_SEARCH = new Set(['_format', '_pretty', '_method']);

const MODIFIERS: Record<string, ReadonlySet<string>> = {
  string: STRING_MODIFIERS,
  token: TOKEN_MODIFIERS,
  reference: REFERENCE_MODIFIERS,
  date: DATE_MODIFIERS,
  number: NUMBER_MODIFIERS,
  quantity: QUANTITY_MODIFIERS,
  uri: URI_MODIFIERS,
  composite: new Set(['missing']),
  special: new Set(['missing']),
};

const PREFIXED_TYPES = new Set(['number', 'date', 'quantity']);

/** A number search value (and the number of a quantity's). */
const NUMBER = /^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/** A parameter that cannot be honoured: an error under strict handling, reported under lenient. */
class Unknown extends Error {}

/** A parameter without any value: ignored, as if absent. */
class Empty extends Error {}

/** Splits at `sep` not escaped by a backslash; the parts keep their escapes. */
export function splitEscaped(value: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] ?? '';
    if (ch === '\\' && i + 1 < value.length) {
      cur += ch + (value[i + 1] ?? '');
      i++;
    } else if (ch === sep) {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  out.push(cur);
  return out;
}

/** `\,` `\|` `\$` `\\` -> the character itself (R4 search.html#escaping). */
export function unescapeValue(value: string): string {
  return value.replace(/\\([,|$\\])/g, '$1');
}

function parseValue(raw: string, type: ParamType, code: string): SearchValue {
  let prefix: Prefix | undefined;
  let rest = raw;
  if (PREFIXED_TYPES.has(type)) {
    const p = raw.slice(0, 2);
    if (PREFIXES.has(p) && raw.length > 2 && /[-+.\d]/.test(raw[2] ?? '')) {
      prefix = p as Prefix;
      rest = raw.slice(2);
    }
  }
  const value = unescapeValue(rest);
  const parts = splitEscaped(rest, '|').map(unescapeValue);
  if (type === 'date' && !parseDateRange(value))
    throw badRequest(`Invalid date '${raw}' for parameter '${code}'`);
  if (type === 'number' && !NUMBER.test(value)) {
    throw badRequest(`Invalid number '${raw}' for parameter '${code}'`);
  }
  if (type === 'quantity' && !NUMBER.test(parts[0] ?? '')) {
    throw badRequest(`Invalid quantity '${raw}' for parameter '${code}'`);
  }
  return { prefix, value, parts };
}

class Parser {
  constructor(
    private readonly registry: DefinitionsRegistry,
    private readonly options: ParseOptions,
  ) {}

  /** The parameter `code` for a type, or for a system search one every type in `types` has. */
  param(type: string | undefined, code: string, types: string[] | undefined): SearchParameter | undefined {
    if (type) return this.registry.searchParameter(type, code);
    if (types && types.length > 0) {
      const params = types.map((t) => this.registry.searchParameter(t, code));
      const first = params[0];
      return first && params.every((p) => p?.type === first.type) ? first : undefined;
    }
    const any = this.registry.resourceTypes[0];
    const p = any ? this.registry.searchParameter(any, code) : undefined;
    return p && (p.base ?? []).some((b) => b === 'Resource' || b === 'DomainResource') ? p : undefined;
  }

  /** `code[:modifier][.chain...]=value` on `type`. */
  filter(type: string | undefined, key: string, raw: string, types?: string[]): SearchFilter {
    if (key.startsWith('_has:')) return this.has(type, key, raw);
    const dot = key.indexOf('.');
    const head = dot >= 0 ? key.slice(0, dot) : key;
    const rest = dot >= 0 ? key.slice(dot + 1) : undefined;
    const colon = head.indexOf(':');
    const code = colon >= 0 ? head.slice(0, colon) : head;
    const modifier = colon >= 0 ? head.slice(colon + 1) : undefined;
    if (code === '_list' && rest === undefined) return this.list(modifier, raw);
    const param = this.param(type, code, types);
    if (!param) throw new Unknown(`Unknown search parameter '${code}'${type ? ` for ${type}` : ''}`);
    const ptype = param.type as ParamType;
    if (rest !== undefined) return this.chain(param, code, modifier, rest, raw);
    if (modifier !== undefined) {
      const known =
        MODIFIERS[ptype]?.has(modifier) || (ptype === 'reference' && this.registry.isResourceType(modifier));
      if (!known) throw new Unknown(`Unknown modifier '${code}:${modifier}'`);
    }
    if (ptype === 'special' && code !== '_text' && code !== '_content' && code !== 'near') {
      throw new Unknown(`Search parameter '${code}' is not supported`);
    }
    const valueType: ParamType = modifier === 'missing' ? 'token' : ptype;
    // Empty values (`name=`, or the empty item of `name=a,`) say nothing: they are dropped.
    const values = splitEscaped(raw, ',')
      .filter((v) => v !== '')
      .map((v) => (valueType === 'composite' ? this.composite(param, v) : parseValue(v, valueType, code)));
    if (values.length === 0) throw new Empty();
    return { kind: 'param', code, type: ptype, modifier, values };
  }

  /** `_list=id[,id]`: members of the Lists (R4 search.html#list); functional lists ($current-...) are not known. */
  private list(modifier: string | undefined, raw: string): SearchFilter {
    if (modifier !== undefined) throw new Unknown(`Unknown modifier '_list:${modifier}'`);
    const values = splitEscaped(raw, ',')
      .filter((v) => v !== '')
      .map((v) => parseValue(v, 'special', '_list'));
    if (values.length === 0) throw new Empty();
    for (const v of values) {
      if (!/^[A-Za-z0-9\-.]{1,64}$/.test(v.value)) throw new Unknown(`_list '${v.value}' is not a List id`);
    }
    return { kind: 'param', code: '_list', type: 'special', modifier: undefined, values };
  }

  private composite(param: SearchParameter, raw: string): SearchValue {
    const components = compositeComponents(param, this.registry);
    const parts = splitEscaped(raw, '$');
    if (parts.length !== components.length) {
      throw badRequest(
        `Composite '${param.code}' takes ${components.length} '$'-separated values, not '${raw}'`,
      );
    }
    return {
      prefix: undefined,
      value: unescapeValue(raw),
      parts: [unescapeValue(raw)],
      components: parts.map((p, i) => parseValue(p, components[i]?.type ?? 'token', param.code)),
    };
  }

  private chain(
    param: SearchParameter,
    code: string,
    modifier: string | undefined,
    rest: string,
    raw: string,
  ): SearchFilter {
    if (param.type !== 'reference')
      throw badRequest(`Parameter '${code}' is not a reference: it cannot be chained`);
    let targets = (param.target ?? []) as string[];
    if (modifier !== undefined) {
      if (!this.registry.isResourceType(modifier))
        throw new Unknown(`Unknown modifier '${code}:${modifier}'`);
      if (targets.length > 0 && !targets.includes(modifier)) {
        throw badRequest(`Parameter '${code}' cannot refer to a ${modifier}`);
      }
      targets = [modifier];
    }
    if (targets.length === 0) targets = [...this.registry.resourceTypes];
    const nextCode = rest.split(/[:.]/)[0] ?? '';
    const withNext = nextCode.startsWith('_has')
      ? targets
      : targets.filter((t) => this.registry.searchParameter(t, nextCode));
    if (withNext.length === 0)
      throw new Unknown(`No target of '${code}' has a search parameter '${nextCode}'`);
    const first = withNext[0] ?? '';
    return { kind: 'chain', code, targetTypes: withNext, next: this.filter(first, rest, raw) };
  }

  /** `_has:Type:ref:param=value`, where `param` may itself be `_has:...`. */
  private has(type: string | undefined, key: string, raw: string): SearchFilter {
    const [, hasType = '', ref = '', ...restParts] = key.split(':');
    const rest = restParts.join(':');
    if (!hasType || !ref || !rest)
      throw badRequest(`Invalid _has parameter '${key}': use _has:Type:reference:parameter`);
    if (!this.registry.isResourceType(hasType))
      throw badRequest(`Unknown resource type '${hasType}' in '${key}'`);
    const refParam = this.registry.searchParameter(hasType, ref);
    if (!refParam || refParam.type !== 'reference')
      throw new Unknown(`'${ref}' is not a reference parameter of ${hasType}`);
    if (
      type &&
      refParam.target &&
      refParam.target.length > 0 &&
      !(refParam.target as string[]).includes(type)
    ) {
      throw badRequest(`${hasType}.${ref} cannot refer to a ${type}`);
    }
    return { kind: 'has', type: hasType, referenceParam: ref, next: this.filter(hasType, rest, raw) };
  }

  sort(type: string | undefined, raw: string, types: string[] | undefined, ignored: string[]): SortRule[] {
    const rules: SortRule[] = [];
    for (const item of raw.split(',').map((s) => s.trim())) {
      if (item === '') continue;
      const descending = item.startsWith('-');
      const code = descending ? item.slice(1) : item;
      const p = this.param(type, code, types);
      const ok =
        code === '_id' || code === '_lastUpdated' || (p && p.type !== 'composite' && p.type !== 'special');
      if (!ok) {
        this.unknown(`Cannot sort by '${code}'`, `_sort:${code}`, ignored);
        continue;
      }
      rules.push({ code, descending });
    }
    return rules;
  }

  include(
    raw: string,
    modifier: string | undefined,
    ignored: string[],
    key: string,
  ): IncludeTarget | undefined {
    if (modifier !== undefined && modifier !== 'iterate' && modifier !== 'recurse') {
      this.unknown(`Unknown modifier '${key}'`, key, ignored);
      return undefined;
    }
    const iterate = modifier !== undefined;
    if (raw === '*') return { type: '*', param: '*', targetType: undefined, iterate };
    const [type = '', param = '', targetType, extra] = raw.split(':');
    if (extra !== undefined || !type || !param)
      throw badRequest(`Invalid ${key} '${raw}': use Type:parameter[:targetType]`);
    if (!this.registry.isResourceType(type)) throw badRequest(`Unknown resource type '${type}' in ${key}`);
    if (param !== '*') {
      const p = this.registry.searchParameter(type, param);
      if (!p || p.type !== 'reference') {
        this.unknown(`'${param}' is not a reference parameter of ${type}`, `${key}=${raw}`, ignored);
        return undefined;
      }
    }
    if (targetType !== undefined && !this.registry.isResourceType(targetType)) {
      throw badRequest(`Unknown resource type '${targetType}' in ${key}`);
    }
    return { type, param, targetType, iterate };
  }

  unknown(message: string, name: string, ignored: string[]): void {
    if (this.options.strict) throw badRequest(message, 'not-supported');
    ignored.push(name);
  }
}

function nonNegativeInteger(name: string, raw: string): number {
  if (!/^\d{1,9}$/.test(raw.trim())) throw badRequest(`${name} must be a non-negative integer, not '${raw}'`);
  return Number(raw.trim());
}

function oneOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw))
    throw badRequest(`${name} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

/**
 * URL parameters -> the search as plain data (ARCHITECTURE.md, Search 2). `type` undefined (or '')
 * is a system search. Malformed values throw badRequest; unknown parameters and modifiers throw
 * under strict handling and are listed in `ignored` under lenient.
 */
export function parseSearchRequest(
  type: string | undefined,
  params: Array<[string, string]>,
  registry: DefinitionsRegistry,
  options: ParseOptions,
): SearchRequest {
  const resourceType = type ? type : undefined;
  if (resourceType && !registry.isResourceType(resourceType)) {
    throw badRequest(`Unknown resource type '${resourceType}'`);
  }
  const parser = new Parser(registry, options);
  const request: SearchRequest = {
    resourceType,
    filters: [],
    sort: [],
    count: undefined,
    offset: undefined,
    include: [],
    revinclude: [],
    summary: undefined,
    elements: undefined,
    total: undefined,
    types: undefined,
    ignored: [],
  };
  // _type first: it decides which parameters a system search knows.
  for (const [key, value] of params) {
    if (key !== '_type') continue;
    const types = value
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
    for (const t of types)
      if (!registry.isResourceType(t)) throw badRequest(`Unknown resource type '${t}' in _type`);
    request.types = [...(request.types ?? []), ...types];
  }
  const sorts: string[] = [];
  for (const [key, value] of params) {
    const colon = key.indexOf(':');
    const name = colon >= 0 && !key.startsWith('_has:') ? key.slice(0, colon) : key;
    const modifier = colon >= 0 && !key.startsWith('_has:') ? key.slice(colon + 1) : undefined;
    if (NOT_SEARCH.has(name) || name === '_type') continue;
    try {
      switch (name) {
        case '_sort':
          sorts.push(value);
          break;
        case '_count':
          request.count = Math.min(nonNegativeInteger('_count', value), MAX_COUNT);
          break;
        case '_offset':
          request.offset = nonNegativeInteger('_offset', value);
          break;
        case '_include':
        case '_revinclude': {
          const t = parser.include(value, modifier, request.ignored, key);
          if (t) (name === '_include' ? request.include : request.revinclude).push(t);
          break;
        }
        case '_summary':
          request.summary = oneOf('_summary', value, ['true', 'text', 'data', 'count', 'false'] as const);
          break;
        case '_elements':
          request.elements = value
            .split(',')
            .map((e) => e.trim())
            .filter((e) => e !== '');
          break;
        case '_total':
          request.total = oneOf('_total', value, ['none', 'estimate', 'accurate'] as const);
          break;
        default:
          request.filters.push(parser.filter(resourceType, key, value, request.types));
      }
    } catch (e) {
      if (e instanceof Empty) continue;
      if (!(e instanceof Unknown)) throw e;
      parser.unknown(e.message, key, request.ignored);
    }
  }
  for (const s of sorts) request.sort.push(...parser.sort(resourceType, s, request.types, request.ignored));
  return request;
}
