import r4 from 'fhirpath/fhir-context/r4';
import { isRecord } from './types/common';

/**
 * A faster evaluator for the common shape of search parameter expressions: plain member navigation
 * (`Patient.name`, `Observation.component.code`, `Observation.value.ofType(Quantity)`), walking the
 * JSON with the R4 model's element types instead of fhirpath's interpreter (which spends most of
 * extraction time building ResourceNodes). Anything else (where(), functions, operators) gets
 * `undefined` and goes to fhirpath. The Synthea test checks both give the same index.
 */
export interface FastNode {
  /** The FHIR type of the value, as fhirpath's `fhirNodeDataType` names it. */
  type: string;
  data: unknown;
  /** The element path for BackboneElements (e.g. `Observation.component`), as fhirpath's node path. */
  path: string;
  /** The model path of the element (e.g. `Patient.gender`), for its binding. */
  element: string;
}

export type FastEvaluator = (resource: unknown) => FastNode[];

interface Model {
  path2Type: Record<string, string>;
  choiceTypePaths: Record<string, string[]>;
  pathsDefinedElsewhere: Record<string, string>;
  type2Parent: Record<string, string>;
}
const model = r4 as unknown as Model;

const BACKBONE = new Set(['BackboneElement', 'Element']);

/** One step of a plain navigation: `.name`, `.ofType(T)` or `.where(field='literal')`. */
type Op = { name: string } | { ofType: string } | { where: { field: string; value: string } };

// ofType and where first: their names would otherwise be taken for element names.
const STEP =
  /^\.(?:ofType\(([A-Za-z]+)\)|where\(([a-z][A-Za-z0-9]*)='([A-Za-z0-9._:/-]*)'\)|([a-z][A-Za-z0-9]*)(?![A-Za-z0-9(]))/;
/** `(X as T).rest` and `(X.ofType(T)).rest`, e.g. `(Observation.value as CodeableConcept).text`. */
const PARENTHESISED = /^\((.+?)(?:\s+as\s+([A-Za-z]+)|\.ofType\(([A-Za-z]+)\))\)(.*)$/;

/** The steps of `rest` (which starts with a dot), or undefined when it is not plain navigation. */
function parseSteps(rest: string): Op[] | undefined {
  const ops: Op[] = [];
  let r = rest;
  while (r.length > 0) {
    const m = STEP.exec(r);
    if (!m) return undefined;
    if (m[1]) ops.push({ ofType: m[1] });
    else if (m[2]) ops.push({ where: { field: m[2], value: m[3] ?? '' } });
    else if (m[4]) ops.push({ name: m[4] });
    r = r.slice(m[0].length);
  }
  return ops;
}

/** The expression without whitespace outside string literals; undefined if a literal holds any. */
function compact(expression: string): string | undefined {
  const p = PARENTHESISED.exec(expression.trim());
  const e = p ? `${p[1]}.ofType(${p[2] ?? p[3]})${p[4]}` : expression;
  if (/'[^']*\s[^']*'/.test(e)) return undefined;
  return e.replace(/\s+/g, '');
}

/** `String` -> `string`, `DateTime` -> `dateTime`; complex type names stay. */
function choiceType(suffix: string): string {
  const lower = suffix.charAt(0).toLowerCase() + suffix.slice(1);
  return lower in model.type2Parent ? lower : suffix;
}

/** Whether `type` is `ancestor` or derives from it (canonical is a uri, Age a Quantity). */
function isA(type: string, ancestor: string): boolean {
  for (let t: string | undefined = type; t; t = model.type2Parent[t]) if (t === ancestor) return true;
  return false;
}

interface Step {
  name: string;
  /** Candidate JSON keys with the type each gives (one for ordinary elements, several for choices). */
  keys: Array<{ key: string; type: string }>;
  /** The model path of the element, for BackboneElements. */
  path: string;
}

/** Compiles `expression` for resources of `resourceType`, or returns undefined when it is not plain navigation. */
export function compileFastPath(expression: string, resourceType: string): FastEvaluator | undefined {
  const e = compact(expression);
  if (e === undefined) return undefined;
  if (e === resourceType) {
    return (resource) => [{ data: resource, type: resourceType, path: resourceType, element: resourceType }];
  }
  if (!e.startsWith(`${resourceType}.`)) return undefined;
  const ops = parseSteps(e.slice(resourceType.length));
  return ops ? build(resourceType, resourceType, ops) : undefined;
}

/**
 * Compiles `expression` relative to a node at model path (or of type) `base`, e.g. `value.ofType(Quantity)`
 * under `Observation.component`: composite components.
 */
export function compileRelativeFastPath(expression: string, base: string): FastEvaluator | undefined {
  const e = compact(expression);
  if (e === undefined || !/^[a-z]/.test(e)) return undefined;
  const ops = parseSteps(`.${e}`);
  return ops ? build(base, base, ops) : undefined;
}

interface Filter {
  field: string;
  value: string;
}

function build(rootType: string, rootPath: string, ops: Op[]): FastEvaluator | undefined {
  const steps: Array<Step & { where?: Filter }> = [];
  let base = rootPath; // the model path or type the next name is looked up under; '' when unknown
  for (const op of ops) {
    const last = steps[steps.length - 1];
    if ('ofType' in op) {
      // ofType narrows the step before it; a non-choice element of another type matches nothing:
      // keep fhirpath's answer for that.
      if (!last || last.where) return undefined;
      const kept = last.keys.filter((k) => isA(k.type, op.ofType));
      if (kept.length === 0) return undefined;
      last.keys = kept;
      const only = kept.length === 1 ? kept[0] : undefined;
      base = only ? (BACKBONE.has(only.type) ? last.path : only.type) : '';
      continue;
    }
    if ('where' in op) {
      // where(field='literal') on elements of a known type whose field is a primitive.
      if (!last || last.where || !base) return undefined;
      const fieldType =
        model.path2Type[
          model.pathsDefinedElsewhere[`${base}.${op.where.field}`] ?? `${base}.${op.where.field}`
        ];
      if (!fieldType || !/^[a-z]/.test(fieldType)) return undefined;
      last.where = op.where;
      continue;
    }
    const { name } = op;
    if (!base) return undefined; // navigation below an unresolved choice is not plain any more
    let p = `${base}.${name}`;
    p = model.pathsDefinedElsewhere[p] ?? p;
    const choices = model.choiceTypePaths[p];
    if (choices) {
      steps.push({
        name,
        keys: choices.map((t) => ({ key: `${name}${t}`, type: choiceType(t) })),
        path: p,
      });
      base = '';
      continue;
    }
    const type = model.path2Type[p];
    if (!type) return undefined;
    steps.push({ name, keys: [{ key: name, type }], path: p });
    base = BACKBONE.has(type) ? p : type;
  }
  if (steps.length === 0) return undefined;

  // Everything that depends only on the expression, resolved here rather than per resource: each
  // step's keys with their node paths, and its where() filter.
  const plan = steps.map((step) => ({
    element: step.path,
    where: step.where,
    keys: step.keys.map(({ key, type }) => ({ key, type, path: BACKBONE.has(type) ? step.path : type })),
  }));

  return (resource: unknown): FastNode[] => {
    let current: FastNode[] = [{ data: resource, type: rootType, path: rootPath, element: rootPath }];
    for (const { element, keys, where } of plan) {
      const next: FastNode[] = [];
      const keep = (x: unknown): boolean =>
        x !== undefined && x !== null && (!where || (isRecord(x) && x[where.field] === where.value));
      for (const c of current) {
        if (!isRecord(c.data)) continue;
        for (const { key, type, path } of keys) {
          const v = c.data[key];
          if (v === undefined || v === null) continue;
          if (Array.isArray(v)) {
            for (const x of v) if (keep(x)) next.push({ data: x, type, path, element });
          } else if (keep(v)) {
            next.push({ data: v, type, path, element });
          }
        }
      }
      current = next;
      if (current.length === 0) return [];
    }
    return current;
  };
}
