import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { isRecord } from '../search/types/common';
import { jsonEqual } from '../fhir/json-patch';
import type { Constraint } from './model';

type Compiled = (resource: unknown, env?: Record<string, unknown>) => unknown[];

/** The result of evaluating one invariant on one element. */
export type InvariantResult = 'pass' | 'fail' | 'skipped';

const OPTIONS = { traceFn: (): void => undefined };

/**
 * FHIRPath invariants (constraint.expression), compiled once per element path and expression.
 * Expressions fhirpath cannot compile are skipped and counted (`stats`). A few invariants every
 * resource carries are checked natively because fhirpath makes them the slowest part of validation.
 */
export class InvariantEngine {
  private readonly compiled = new Map<string, Compiled | null>();
  readonly stats = {
    compiled: 0,
    uncompilable: 0,
    runtimeErrors: 0,
    uncompilableKeys: new Set<string>(),
    runtimeErrorKeys: new Set<string>(),
  };

  private compile(base: string, expression: string, key: string): Compiled | null {
    const cacheKey = `${base}\u0000${expression}`;
    let fn = this.compiled.get(cacheKey);
    if (fn === undefined) {
      try {
        fn = fhirpath.compile({ base, expression }, r4, OPTIONS) as unknown as Compiled;
        this.stats.compiled++;
      } catch {
        fn = null;
        this.stats.uncompilable++;
        this.stats.uncompilableKeys.add(key);
      }
      this.compiled.set(cacheKey, fn);
    }
    return fn;
  }

  evaluate(
    c: Constraint,
    base: string,
    value: unknown,
    resource: unknown,
    rootResource: unknown,
  ): InvariantResult {
    const native = NATIVE[c.key];
    if (native && native.expression === c.expression)
      return native.check(value, resource, rootResource) ? 'pass' : 'fail';
    if (!c.expression) return 'skipped';
    if (vacuous(c.expression, value)) return 'pass';
    const fn = this.compile(base, c.expression, c.key);
    if (!fn) return 'skipped';
    try {
      const out = fn(value, { resource, rootResource });
      // Empty is not counted as failure: fhirpath.js yields empty for some well-formed inputs
      // (choice types in `is`/`as`), and rejecting valid data is worse than missing an edge case.
      if (out.length === 0) return 'pass';
      return out.length === 1 && out[0] === false ? 'fail' : 'pass';
    } catch (e) {
      this.stats.runtimeErrors++;
      this.stats.runtimeErrorKeys.add(`${c.key}: ${String(e).slice(0, 80)}`);
      return 'skipped';
    }
  }
}

const guardCache = new Map<string, string | null>();

/**
 * The element whose absence makes an expression true, for the two shapes most invariants take:
 * `X.empty() or ...` (with no implies/xor after it, which bind looser than or) and
 * `X.exists() implies ...` (with one implies). Lets the common case skip fhirpath entirely.
 */
function guardOf(expression: string): string | null {
  let g = guardCache.get(expression);
  if (g !== undefined) return g;
  g = null;
  const orGuard = /^\s*([a-zA-Z][a-zA-Z0-9]*)\.empty\(\)\s+or\s/.exec(expression);
  if (orGuard && !/\b(implies|xor)\b/.test(expression)) g = orGuard[1] ?? null;
  const impliesGuard = /^\s*([a-zA-Z][a-zA-Z0-9]*)\.exists\(\)\s+implies\s/.exec(expression);
  if (impliesGuard && expression.split(/\bimplies\b/).length === 2) g = impliesGuard[1] ?? null;
  guardCache.set(expression, g);
  return g;
}

function vacuous(expression: string, value: unknown): boolean {
  const g = guardOf(expression);
  if (g === null || !isRecord(value)) return false;
  if (g in value || `_${g}` in value) return false;
  // A choice element (value -> valueQuantity) is present under a typed name.
  for (const k of Object.keys(value)) if (k.startsWith(g) && /^[A-Z]/.test(k.slice(g.length))) return false;
  return true;
}

function hasValueKey(o: Record<string, unknown>): boolean {
  for (const k of Object.keys(o)) if (k.startsWith('value')) return true;
  return false;
}

/** Invariants on every resource and extension, implemented natively; used only when the expression is the R4 one. */
const NATIVE: Record<
  string,
  { expression: string; check: (v: unknown, resource: unknown, root: unknown) => boolean }
> = {
  'ref-1': {
    expression:
      "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
    check: (v, _r, root) => {
      if (!isRecord(v) || typeof v.reference !== 'string' || !v.reference.startsWith('#')) return true;
      const id = v.reference.slice(1);
      return (
        isRecord(root) &&
        Array.isArray(root.contained) &&
        root.contained.some((c) => isRecord(c) && c.id === id)
      );
    },
  },
  'qty-3': {
    expression: 'code.empty() or system.exists()',
    check: (v) => !isRecord(v) || v.code === undefined || v.system !== undefined,
  },
  'cpt-2': {
    expression: 'value.empty() or system.exists()',
    check: (v) => !isRecord(v) || v.value === undefined || v.system !== undefined,
  },
  'att-1': {
    expression: 'data.empty() or contentType.exists()',
    check: (v) => !isRecord(v) || v.data === undefined || v.contentType !== undefined,
  },
  'obs-6': {
    expression: 'dataAbsentReason.empty() or value.empty()',
    check: (v) => !isRecord(v) || v.dataAbsentReason === undefined || !hasValueKey(v),
  },
  'obs-7': {
    expression:
      'value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()',
    check: (v) => {
      if (!isRecord(v) || !hasValueKey(v) || !Array.isArray(v.component)) return true;
      const own = isRecord(v.code) && Array.isArray(v.code.coding) ? v.code.coding : [];
      return !v.component.some(
        (c) =>
          isRecord(c) &&
          isRecord(c.code) &&
          Array.isArray(c.code.coding) &&
          c.code.coding.some((x) => own.some((y) => jsonEqual(x, y))),
      );
    },
  },
  'per-1': {
    expression: 'start.hasValue().not() or end.hasValue().not() or (start <= end)',
    check: (v) =>
      !isRecord(v) || typeof v.start !== 'string' || typeof v.end !== 'string' || !dateAfter(v.start, v.end),
  },
  'ext-1': {
    expression: 'extension.exists() != value.exists()',
    check: (v) => !isRecord(v) || Array.isArray(v.extension) !== hasValueKey(v),
  },
  // US Core: a dateTime with at least a day.
  'us-core-1': {
    expression: '$this is dateTime implies $this.toString().length() >= 10',
    check: (v) => typeof v !== 'string' || v.length >= 10,
  },
  'txt-1': { expression: 'htmlChecks()', check: (v) => typeof v !== 'string' || safeXhtml(v) },
  'txt-2': { expression: 'htmlChecks()', check: (v) => typeof v !== 'string' || hasContent(v) },
  'dom-6': {
    expression: 'text.`div`.exists()',
    check: (v) => !isRecord(v) || (isRecord(v.text) && v.text.div !== undefined),
  },
  'dom-2': {
    expression: 'contained.contained.empty()',
    check: (v) =>
      !isRecord(v) ||
      !Array.isArray(v.contained) ||
      v.contained.every((c) => !isRecord(c) || c.contained === undefined),
  },
  'dom-4': {
    expression: 'contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()',
    check: (v) =>
      !isRecord(v) ||
      !Array.isArray(v.contained) ||
      v.contained.every(
        (c) =>
          !isRecord(c) ||
          !isRecord(c.meta) ||
          (c.meta.versionId === undefined && c.meta.lastUpdated === undefined),
      ),
  },
  'dom-5': {
    expression: 'contained.meta.security.empty()',
    check: (v) =>
      !isRecord(v) ||
      !Array.isArray(v.contained) ||
      v.contained.every((c) => !isRecord(c) || !isRecord(c.meta) || c.meta.security === undefined),
  },
  'dom-3': {
    expression:
      "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()",
    check: (v) => !isRecord(v) || !Array.isArray(v.contained) || containedReferenced(v),
  },
};

/** dom-3: every contained resource is referenced from elsewhere in the resource, or refers back to it. */
function containedReferenced(resource: Record<string, unknown>): boolean {
  const contained = resource.contained as unknown[];
  // The '#id' references anywhere in the resource, its contained resources included.
  const refs = new Set<string>();
  const collect = (v: unknown): void => {
    if (typeof v === 'string') {
      if (v.startsWith('#')) refs.add(v);
    } else if (Array.isArray(v)) for (const x of v) collect(x);
    else if (isRecord(v)) for (const x of Object.values(v)) collect(x);
  };
  collect(resource);
  const refersBack = (v: unknown): boolean =>
    v === '#' || (Array.isArray(v) ? v.some(refersBack) : isRecord(v) && Object.values(v).some(refersBack));
  const backRefs = new Set<string>();
  for (const c of contained) if (isRecord(c) && refersBack(c)) backRefs.add(String(c.id));
  for (const c of contained) {
    if (!isRecord(c)) continue;
    if (!refs.has(`#${String(c.id)}`) && !backRefs.has(String(c.id))) return false;
  }
  return true;
}

/** txt-1 (narrative.html#xhtml): no active content, no event handlers, only the allowed markup. */
function safeXhtml(div: string): boolean {
  if (
    /<\s*(script|object|applet|embed|form|input|iframe|frame|frameset|base|link|meta|head|body|html|style|title|button|select|textarea)\b/i.test(
      div,
    )
  )
    return false;
  for (const tag of div.matchAll(/<[^>]+>/g)) if (/\son[a-z]+\s*=/i.test(tag[0])) return false;
  return true;
}

/** txt-2: some non-whitespace content (text or an image). */
function hasContent(div: string): boolean {
  return /<img\b/i.test(div) || /\S/.test(div.replace(/<[^>]*>/g, '').replace(/&nbsp;|&#160;/g, ' '));
}

/**
 * Whether per-1 fails: `start <= end` is false, or (as in FHIRPath, where comparing values of
 * different precision is empty, and the Java validator counts empty as failure) undecidable.
 */
function dateAfter(start: string, end: string): boolean {
  if (start.length > 10 && end.length > 10) {
    const a = Date.parse(start);
    const b = Date.parse(end);
    if (!Number.isNaN(a) && !Number.isNaN(b)) return a > b;
  }
  if (start.length === end.length) return start > end;
  const n = Math.min(start.length, end.length, 10);
  const a = start.slice(0, n);
  const b = end.slice(0, n);
  return a === b ? true : a > b;
}
