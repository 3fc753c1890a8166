import type { Prefix } from './types/common';

/**
 * A search as plain data (Medplum-style): produced by parse.ts from URL parameters, consumed by
 * compile.ts (filter and sort) and by the search interaction (paging, includes, summary).
 */
export interface SearchRequest {
  /** The resource type searched, or undefined for a system-level search (`GET [base]?...`). */
  resourceType: string | undefined;
  /** ANDed filters. */
  filters: SearchFilter[];
  sort: SortRule[];
  /** `_count`, clamped to MAX_COUNT; undefined when absent (the caller applies its default). */
  count: number | undefined;
  offset: number | undefined;
  include: IncludeTarget[];
  revinclude: IncludeTarget[];
  summary: 'true' | 'text' | 'data' | 'count' | 'false' | undefined;
  elements: string[] | undefined;
  total: 'none' | 'estimate' | 'accurate' | undefined;
  /** `_type` of a system search. */
  types: string[] | undefined;
  /** Parameters not understood, ignored under lenient handling (`name` or `name:modifier`). */
  ignored: string[];
}

export type ParamType =
  'string' | 'token' | 'reference' | 'date' | 'number' | 'quantity' | 'uri' | 'composite' | 'special';

/** One value of an OR list, unescaped. */
export interface SearchValue {
  prefix: Prefix | undefined;
  /** The value without prefix, unescaped. */
  value: string;
  /** The value without prefix split on unescaped `|`, each part unescaped (token, quantity). */
  parts: string[];
  /** Composite values: the components split on unescaped `$`, each parsed for its component's type. */
  components?: SearchValue[];
}

/** `code[:modifier]=v1,v2`: any value matches (OR). */
export interface ParamFilter {
  kind: 'param';
  code: string;
  type: ParamType;
  modifier: string | undefined;
  values: SearchValue[];
}

/** `code[:Type].<next>`: the reference `code` points to a resource of one of `targetTypes` matching `next`. */
export interface ChainFilter {
  kind: 'chain';
  code: string;
  targetTypes: string[];
  next: SearchFilter;
}

/** `_has:Type:ref:<next>`: some `Type` resource matching `next` refers to this one through its `ref` parameter. */
export interface HasFilter {
  kind: 'has';
  type: string;
  referenceParam: string;
  next: SearchFilter;
}

export type SearchFilter = ParamFilter | ChainFilter | HasFilter;

export interface SortRule {
  code: string;
  descending: boolean;
}

/** `_include=Type:param[:target]` or `*`; `iterate` for `:iterate` (or R3's `:recurse`). */
export interface IncludeTarget {
  /** Source resource type, or `*`. */
  type: string;
  /** Reference parameter code, or `*`. */
  param: string;
  targetType: string | undefined;
  iterate: boolean;
}

/** Page size when a search or history gives no `_count`. */
export const DEFAULT_COUNT = 50;
export const MAX_COUNT = 1000;
