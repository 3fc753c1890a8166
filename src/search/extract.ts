import { createHash } from 'node:crypto';
import type { Resource, SearchParameter } from 'fhir/r4';
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import type { DefinitionsRegistry } from '../fhir/definitions';
import type { ParamType } from './request';
import { compileFastPath, compileRelativeFastPath } from './fastpath';
import { isRecord, SORT_KEY, type SortKeys, type ValueNode } from './types/common';
import { combine, compositeComponents, type CompositeComponent } from './types/composite';
import { indexDate, dateSortKeys, type DateRange } from './types/date';
import { indexNumber, numberSortKeys, type NumberEntry } from './types/number';
import { indexQuantity, quantitySortKeys, type QuantityEntry } from './types/quantity';
import { indexReference, referenceSortKeys, type ReferenceEntry } from './types/reference';
import { indexString, stringSortKeys, type StringEntry } from './types/string';
import { indexToken, tokenSortKeys, type TokenEntry } from './types/token';
import { indexNear } from './types/near';
import { indexUri, uriSortKeys } from './types/uri';
import { textWords } from './text';

type Evaluator = (resource: unknown, env?: Record<string, unknown>) => unknown[];

/** One `|`-separated part of a parameter's expression that applies to the resource type. */
interface ExpressionPart {
  evaluate: Evaluator;
  /** From a trailing `.where(resolve() is Type)`: keep only references to this type. */
  targetType: string | undefined;
}

interface ParamPlan {
  code: string;
  type: ParamType;
  parts: ExpressionPart[];
  components: CompositeComponent[] | undefined;
}

export interface IndexExtractorOptions {
  /** Index `_text` (narrative words) and `_content` (words of every string). Default true. */
  fullText?: boolean;
  /** Evaluate plain member paths without fhirpath (fastpath.ts). Default true. */
  fastPaths?: boolean;
  /** Told about a parameter whose extraction failed (the parameter is then left out of idx). */
  onError?: (resourceType: string, code: string, error: unknown) => void;
}

const OPTIONS = { resolveInternalTypes: false } as const;

/**
 * The version of the index encodings (search/types/*, full text, sort keys). Bump it with any change
 * to what extract() produces for the same parameters: the stored indexes are then rebuilt at start
 * (ResourceStore.reindexStale), instead of answering searches from values of the old encoding.
 */
export const INDEX_FORMAT = 1;

/** Splits a FHIRPath expression at its top-level `|` unions (not inside parentheses or strings). */
export function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === "'") quote = false;
    } else if (ch === "'") quote = true;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

const RESOLVE_IS = /\.where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)(\s*\)?)\s*$/;
const LEADING_TYPE = /^(\(*\s*)([A-Z][A-Za-z]*)\b/;

/**
 * Extracts the search index of a resource at write time (ARCHITECTURE.md, Search 1): evaluates every
 * search parameter of its type with fhirpath (expressions compiled once per type and parameter) and
 * normalises the values by parameter type into `idx[code]` (see the type modules for the encodings).
 * A parameter without values has no key, so `:missing` is `$exists`.
 */
export class IndexExtractor {
  private readonly plans = new Map<string, ParamPlan[]>();
  private readonly relative = new Map<string, Evaluator>();
  private readonly bindings = new Map<string, string | null>();
  private readonly isResourceType: (t: string) => boolean;

  constructor(
    private readonly registry: DefinitionsRegistry,
    private readonly options: IndexExtractorOptions = {},
  ) {
    this.isResourceType = (t) => registry.isResourceType(t);
  }

  /**
   * What the index of a `type` resource is extracted from: the index format and the type's search
   * parameters (code, type, expression, composite components). Stored indexes made under another
   * fingerprint are stale, e.g. after a SearchParameter was added to PROFILES_DIR. Undefined for a
   * name that is not a resource type.
   */
  fingerprint(type: string): string | undefined {
    if (!this.registry.isResourceType(type)) return undefined;
    const params = [...this.registry.searchParametersFor(type)]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, p]) => [
        p.code,
        p.type,
        p.expression ?? '',
        (p.component ?? []).map((c) => [c.definition, c.expression]),
      ]);
    const basis = JSON.stringify([INDEX_FORMAT, this.options.fullText !== false, params]);
    return createHash('sha256').update(basis).digest('hex');
  }

  /**
   * The index of `resource`; with `only`, just those parameters (no full text): e.g. the Patient
   * compartment's references of a history version, for the audit record of reading it.
   */
  extract(resource: Resource, only?: readonly string[]): Record<string, unknown> {
    const idx: Record<string, unknown> = {};
    if (!isRecord(resource) || typeof resource.resourceType !== 'string') return idx;
    const type = resource.resourceType;
    const sorts: Record<string, SortKeys> = {};
    for (const plan of this.planFor(type)) {
      if (only && !only.includes(plan.code)) continue;
      try {
        const values = this.values(plan, resource);
        if (values.length > 0) {
          idx[plan.code] = values;
          const keys = sortKeys(plan.type, values);
          if (keys) sorts[plan.code] = keys;
        }
      } catch (e) {
        this.options.onError?.(type, plan.code, e);
      }
    }
    if (Object.keys(sorts).length > 0) idx[SORT_KEY] = sorts;
    if (this.options.fullText !== false && !only) {
      try {
        const text: unknown = (resource as { text?: unknown }).text;
        const narrative = isRecord(text) ? textWords(text.div, true) : [];
        if (narrative.length > 0) idx._text = narrative;
        const content = textWords(resource, false);
        if (content.length > 0) idx._content = content;
      } catch (e) {
        this.options.onError?.(type, '_content', e);
      }
    }
    return idx;
  }

  private values(plan: ParamPlan, resource: Resource): unknown[] {
    if (plan.type === 'composite') return this.compositeValues(plan, resource);
    const out: unknown[] = [];
    for (const part of plan.parts)
      out.push(...this.encode(plan.type, this.toNodes(part.evaluate(resource)), part.targetType));
    return plan.parts.length > 1 ? dedupe(out) : out;
  }

  private encode(type: ParamType, nodes: ValueNode[], targetType?: string): unknown[] {
    if (nodes.length === 0) return [];
    switch (type) {
      case 'string':
        return indexString(nodes);
      case 'token':
        return indexToken(nodes);
      case 'reference':
        return indexReference(nodes, this.isResourceType, targetType);
      case 'date':
        return indexDate(nodes);
      case 'number':
        return indexNumber(nodes);
      case 'quantity':
        return indexQuantity(nodes);
      case 'uri':
        return indexUri(nodes);
      case 'special':
        return indexNear(nodes);
      default:
        return [];
    }
  }

  private compositeValues(plan: ParamPlan, resource: Resource): unknown[] {
    const components = plan.components ?? [];
    const out: unknown[] = [];
    for (const part of plan.parts) {
      for (const raw of part.evaluate(resource)) {
        const base = nodePath(raw);
        const data = nodeData(raw);
        if (!base || data === undefined) continue;
        const perComponent = components.map((c) =>
          this.encode(c.type, this.toNodes(this.relativeEvaluator(base, c.expression)(data, { resource }))),
        );
        out.push(...combine(perComponent));
      }
    }
    return dedupe(out);
  }

  private relativeEvaluator(base: string, expression: string): Evaluator {
    const key = `${base}\u0000${expression}`;
    let fn = this.relative.get(key);
    if (!fn) {
      const rewritten = asToOfType(expression);
      fn =
        (this.options.fastPaths !== false ? compileRelativeFastPath(rewritten, base) : undefined) ??
        (fhirpath.compile({ base, expression: rewritten }, r4, OPTIONS) as Evaluator);
      this.relative.set(key, fn);
    }
    return fn;
  }

  /** The compiled parameters of a type, built on first use. */
  private planFor(type: string): ParamPlan[] {
    let plans = this.plans.get(type);
    if (plans) return plans;
    plans = [];
    for (const param of this.registry.searchParametersFor(type).values()) {
      const plan = this.compilePlan(type, param);
      if (plan) plans.push(plan);
    }
    this.plans.set(type, plans);
    return plans;
  }

  private compilePlan(type: string, param: SearchParameter): ParamPlan | undefined {
    // _id and _lastUpdated are the document's own _id and lastUpdated (compile.ts queries them there).
    // Of the special parameters only Location near has an index (types/near.ts).
    const special = param.type === 'special' && !(param.code === 'near' && type === 'Location');
    if (!param.expression || special || param.code === '_id' || param.code === '_lastUpdated') {
      return undefined;
    }
    const parts: ExpressionPart[] = [];
    for (let p of splitUnion(param.expression)) {
      const lead = LEADING_TYPE.exec(p);
      if (lead?.[2]) {
        const t = lead[2];
        if (t === 'Resource' || t === 'DomainResource') {
          p = p.replace(LEADING_TYPE, `$1${type}`);
        } else if (t !== type && this.registry.isResourceType(t)) {
          continue;
        }
      }
      let targetType: string | undefined;
      const resolve = RESOLVE_IS.exec(p);
      if (resolve) {
        targetType = resolve[1];
        p = p.replace(RESOLVE_IS, '$2');
      }
      p = asToOfType(p);
      try {
        const fast = this.options.fastPaths !== false ? compileFastPath(p, type) : undefined;
        parts.push({ evaluate: fast ?? (fhirpath.compile(p, r4, OPTIONS) as Evaluator), targetType });
      } catch (e) {
        this.options.onError?.(type, param.code, e);
      }
    }
    if (parts.length === 0) return undefined;
    return {
      code: param.code,
      type: param.type as ParamType,
      parts,
      components: param.type === 'composite' ? compositeComponents(param, this.registry) : undefined,
    };
  }

  /** fhirpath ResourceNodes or fast-path nodes -> typed values (and the binding system of `code`s). */
  private toNodes(results: unknown[]): ValueNode[] {
    const out: ValueNode[] = [];
    for (const raw of results) {
      if (isRecord(raw) && 'data' in raw && 'path' in raw) {
        if (raw.data === undefined || raw.data === null) continue;
        const t =
          typeof raw.fhirNodeDataType === 'string'
            ? raw.fhirNodeDataType
            : typeof raw.type === 'string'
              ? raw.type
              : typeof raw.path === 'string'
                ? raw.path
                : '';
        const node: ValueNode = { type: t, data: primitive(raw.data) };
        if (t === 'code') {
          const system = this.bindingSystem(elementPath(raw));
          if (system) node.system = system;
        }
        out.push(node);
      } else if (raw !== undefined && raw !== null) {
        out.push({ type: typeof raw, data: raw });
      }
    }
    return out;
  }

  /** The one code system of the required binding of a `code` element (e.g. Patient.gender), if any. */
  private bindingSystem(path: string | undefined): string | undefined {
    if (!path) return undefined;
    const hit = this.bindings.get(path);
    if (hit !== undefined) return hit ?? undefined;
    let system: string | null = null;
    const root = path.split('.')[0] ?? '';
    const sd = this.registry.structureDefinition(`http://hl7.org/fhir/StructureDefinition/${root}`);
    const element = sd?.snapshot?.element.find((e) => e.path === path);
    const binding = element?.binding;
    if (binding?.strength === 'required' && binding.valueSet) {
      const include = this.registry.valueSet(binding.valueSet)?.compose?.include ?? [];
      const only = include[0];
      if (include.length === 1 && only?.system && !(only.valueSet && only.valueSet.length > 0))
        system = only.system;
    }
    this.bindings.set(path, system);
    return system ?? undefined;
  }
}

/** The model path of a node: fast-path nodes carry it; fhirpath nodes have parent path + property name. */
function elementPath(raw: Record<string, unknown>): string | undefined {
  if (typeof raw.element === 'string') return raw.element;
  const parent = raw.parentResNode;
  if (isRecord(parent) && typeof parent.path === 'string' && typeof raw.propName === 'string') {
    return `${parent.path}.${raw.propName}`;
  }
  return undefined;
}

const AS_OPERATOR = /^\(\s*(.+?)\s+as\s+([A-Za-z]+)\s*\)$|^(.+?)\s+as\s+([A-Za-z]+)$/;
const AS_FUNCTION = /\.as\(\s*([A-Za-z]+)\s*\)/g;

/**
 * `x as T` and `x.as(T)` -> `x.ofType(T)`. R4 expressions such as `Observation.component.value as
 * CodeableConcept` apply `as` to collections, which FHIRPath (and fhirpath.js) reject when there is
 * more than one item; `ofType` is what they mean.
 */
export function asToOfType(part: string): string {
  const m = AS_OPERATOR.exec(part.trim());
  let p = part;
  if (m) {
    const path = m[1] ?? m[3] ?? '';
    const type = m[2] ?? m[4] ?? '';
    if (!/[()|]/.test(path) || /^[\w.]+(\.where\([^()]*\))?$/.test(path)) p = `${path}.ofType(${type})`;
  }
  return p.replace(AS_FUNCTION, '.ofType($1)');
}

/** fhirpath's ResourceNode, narrowed from the untyped results. */
function nodeData(raw: unknown): unknown {
  return isRecord(raw) && 'data' in raw && 'path' in raw ? raw.data : raw;
}

function nodePath(raw: unknown): string | undefined {
  return isRecord(raw) && typeof raw.path === 'string' ? raw.path : undefined;
}

/** The scalar sort keys of a parameter's entries (values were built by the type's own module). */
function sortKeys(type: ParamType, values: unknown[]): SortKeys | undefined {
  switch (type) {
    case 'string':
      return stringSortKeys(values as StringEntry[]);
    case 'token':
      return tokenSortKeys(values as TokenEntry[]);
    case 'reference':
      return referenceSortKeys(values as ReferenceEntry[]);
    case 'date':
      return dateSortKeys(values as DateRange[]);
    case 'number':
      return numberSortKeys(values as NumberEntry[]);
    case 'quantity':
      return quantitySortKeys(values as QuantityEntry[]);
    case 'uri':
      return uriSortKeys(values as string[]);
    default:
      return undefined;
  }
}

/** fhirpath keeps decimals as FP_Decimal objects (for precision); the index wants numbers. */
function primitive(data: unknown): unknown {
  if (isRecord(data) && typeof data.toNumber === 'function' && !('resourceType' in data)) {
    const n: unknown = (data.toNumber as () => unknown).call(data);
    return typeof n === 'number' ? n : data;
  }
  return data;
}

function dedupe(values: unknown[]): unknown[] {
  if (values.length < 2) return values;
  const seen = new Set<string>();
  return values.filter((v) => {
    const k = typeof v === 'string' ? v : JSON.stringify(v);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
