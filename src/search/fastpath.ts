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

const SIMPLE = /^([A-Z][A-Za-z]+)((?:\.[a-z][A-Za-z0-9]*)+)(?:\.ofType\(([A-Za-z]+)\))?$/;
const RELATIVE = /^([a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*)(?:\.ofType\(([A-Za-z]+)\))?$/;
const BACKBONE = new Set(['BackboneElement', 'Element']);

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
  const e = expression.replace(/\s+/g, '');
  if (e === resourceType) {
    return (resource) => [{ data: resource, type: resourceType, path: resourceType, element: resourceType }];
  }
  const m = SIMPLE.exec(e);
  if (!m || m[1] !== resourceType || !m[2]) return undefined;
  return build(resourceType, resourceType, m[2].slice(1).split('.'), m[3]);
}

/**
 * Compiles `expression` relative to a node at model path (or of type) `base`, e.g. `value.ofType(Quantity)`
 * under `Observation.component`: composite components.
 */
export function compileRelativeFastPath(expression: string, base: string): FastEvaluator | undefined {
  const m = RELATIVE.exec(expression.replace(/\s+/g, ''));
  if (!m || !m[1]) return undefined;
  return build(base, base, m[1].split('.'), m[2]);
}

function build(
  rootType: string,
  rootPath: string,
  names: string[],
  ofType: string | undefined,
): FastEvaluator | undefined {
  const steps: Step[] = [];
  let base = rootPath; // the model path or type the next name is looked up under
  for (const name of names) {
    let p = `${base}.${name}`;
    p = model.pathsDefinedElsewhere[p] ?? p;
    const choices = model.choiceTypePaths[p];
    if (choices) {
      steps.push({
        name,
        keys: choices.map((t) => ({ key: `${name}${t}`, type: choiceType(t) })),
        path: p,
      });
      base = ''; // navigation below a choice is not plain any more
      continue;
    }
    const type = model.path2Type[p];
    if (!type || !base) return undefined;
    steps.push({ name, keys: [{ key: name, type }], path: p });
    base = BACKBONE.has(type) ? p : type;
  }
  const last = steps[steps.length - 1];
  if (!last) return undefined;
  if (ofType && !last.keys.some((k) => isA(k.type, ofType))) {
    // ofType on a non-choice element whose type differs: nothing matches; keep fhirpath's answer.
    return undefined;
  }
  const lastIsChoice = last.keys.length > 1;
  if (lastIsChoice && !ofType && steps.length !== names.length) return undefined;

  // Everything that depends only on the expression, resolved here rather than per resource: the
  // keys ofType keeps on the last step, and each key's node path.
  const plan = steps.map((step) => ({
    element: step.path,
    keys: step.keys
      .filter(({ type }) => !(ofType && step === last && !isA(type, ofType)))
      .map(({ key, type }) => ({ key, type, path: BACKBONE.has(type) ? step.path : type })),
  }));

  return (resource: unknown): FastNode[] => {
    let current: FastNode[] = [{ data: resource, type: rootType, path: rootPath, element: rootPath }];
    for (const { element, keys } of plan) {
      const next: FastNode[] = [];
      for (const c of current) {
        if (!isRecord(c.data)) continue;
        for (const { key, type, path } of keys) {
          const v = c.data[key];
          if (v === undefined || v === null) continue;
          if (Array.isArray(v)) {
            for (const x of v) {
              if (x !== undefined && x !== null) next.push({ data: x, type, path, element });
            }
          } else {
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
