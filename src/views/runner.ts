import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import { badRequest, FhirError, issue } from '../fhir/errors';
import { columnsOf, type ViewConstant, type ViewDefinition, type ViewSelect } from './definition';
import { userInvocationTable } from './functions';

/** One output row: column name -> JSON value (null when the path gave nothing). */
export type Row = Record<string, unknown>;

type Vars = Record<string, unknown>;
type Compiled = (focus: unknown, vars: Vars) => unknown[];

/** Compiles every FHIRPath expression once; a syntax error is the client's (400). */
function compiler(): (expr: string, at: string) => Compiled {
  const cache = new Map<string, Compiled>();
  return (expr, at) => {
    const hit = cache.get(expr);
    if (hit) return hit;
    let fn: (resource: unknown, vars?: Vars) => unknown;
    try {
      fn = fhirpath.compile(expr, r4model, { userInvocationTable }) as typeof fn;
    } catch (e) {
      throw badRequest(`${at}: invalid FHIRPath ${JSON.stringify(expr)}: ${(e as Error).message}`);
    }
    const compiled: Compiled = (focus, vars) => {
      try {
        const out = fn(focus, vars);
        return Array.isArray(out) ? out : [out];
      } catch (e) {
        throw new FhirError(400, [issue('processing', `${at}: ${(e as Error).message}`)]);
      }
    };
    cache.set(expr, compiled);
    return compiled;
  };
}

/** A plan node: a select with its expressions compiled. */
interface Node {
  columns: Array<{ name: string; path: Compiled; collection: boolean; at: string }>;
  selects: Node[];
  unionAll: Node[];
  forEach?: Compiled;
  orNull: boolean;
  repeat?: Compiled[];
  /** Every column this node's subtree produces (for the all-null row of forEachOrNull). */
  names: string[];
}

function plan(s: ViewSelect, compile: ReturnType<typeof compiler>, at: string): Node {
  const each = s.forEach ?? s.forEachOrNull;
  return {
    columns: (s.column ?? []).map((c, i) => ({
      name: c.name,
      path: compile(c.path, `${at}.column[${i}]`),
      collection: c.collection === true,
      at: `${at}.column[${i}]`,
    })),
    selects: (s.select ?? []).map((c, i) => plan(c, compile, `${at}.select[${i}]`)),
    unionAll: (s.unionAll ?? []).map((c, i) => plan(c, compile, `${at}.unionAll[${i}]`)),
    forEach: each === undefined ? undefined : compile(each, `${at}.forEach`),
    orNull: s.forEachOrNull !== undefined,
    repeat: s.repeat?.map((p, i) => compile(p, `${at}.repeat[${i}]`)),
    names: columnsOf(s, at),
  };
}

function product(parts: Row[][]): Row[] {
  let acc: Row[] = [{}];
  for (const part of parts) {
    const next: Row[] = [];
    for (const a of acc) for (const b of part) next.push({ ...a, ...b });
    acc = next;
    if (acc.length === 0) break;
  }
  return acc;
}

/** JSON value of a FHIRPath result item (typed FHIRPath values print as their FHIR string form). */
function jsonValue(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto === Object.prototype || proto === null) return v;
  return String(v);
}

/** Every FHIRPath expression of a select tree. */
function expressionsOf(s: ViewSelect): string[] {
  return [
    ...(s.column ?? []).map((c) => c.path),
    ...[s.forEach, s.forEachOrNull].filter((e): e is string => e !== undefined),
    ...(s.repeat ?? []),
    ...(s.select ?? []).flatMap(expressionsOf),
    ...(s.unionAll ?? []).flatMap(expressionsOf),
  ];
}

/** An empty FHIRPath collection as a focus. */
const EMPTY: unknown[] = [];

const TEMPORAL = new Set(['date', 'dateTime', 'instant', 'time']);

/**
 * A constant as a FHIRPath value: temporal ones become typed literals (a plain string never equals a
 * FHIR date); the others are the JSON value.
 */
function constantValue(c: ViewConstant): unknown {
  if (!TEMPORAL.has(c.type) || typeof c.value !== 'string') return c.value;
  if (!/^[0-9T:.+\-Z]+$/.test(c.value)) throw badRequest(`Constant ${c.name} is not a valid ${c.type}`);
  const literal = c.type === 'time' ? `@T${c.value}` : `@${c.value}`;
  try {
    const [v] = fhirpath.evaluate({}, literal, undefined, r4model, {
      resolveInternalTypes: false,
    }) as unknown[];
    return v;
  } catch {
    throw badRequest(`Constant ${c.name} is not a valid ${c.type}`);
  }
}

export interface CompiledView {
  readonly view: ViewDefinition;
  /** Output column names, in order. */
  readonly columns: string[];
  /** The rows one resource contributes (none when it fails a where or is of another type). */
  rows(resource: unknown): Row[];
}

/** Compiles a parsed ViewDefinition for running over many resources. */
export function compileView(view: ViewDefinition): CompiledView {
  const compile = compiler();
  const root = plan({ select: view.select }, compile, 'ViewDefinition');
  const where = view.where.map((w, i) => compile(w.path, `ViewDefinition.where[${i}]`));
  const constants: Vars = {};
  for (const c of view.constant) constants[c.name] = constantValue(c);
  const known = new Set(view.constant.map((c) => c.name));

  // fhirpath resolves an unknown %variable to an error at evaluation; check the names up front too,
  // so an empty input still reports the mistake.
  const exprs = [...view.select.flatMap(expressionsOf), ...view.where.map((w) => w.path)].join('\n');
  // Only outside string literals: '%' inside quotes is text.
  for (const m of exprs.replace(/'(?:[^'\\]|\\.)*'/g, "''").matchAll(/%([A-Za-z_][A-Za-z0-9_]*)/g)) {
    const name = m[1] as string;
    if (!known.has(name) && !['rowIndex', 'resource', 'context', 'ucum', 'rootResource'].includes(name))
      throw badRequest(`ViewDefinition refers to an undefined constant %${name}`);
  }

  /**
   * Rows of one select over one focus. `nulls` is set inside the single row forEachOrNull makes for an
   * empty collection: every path then sees an empty focus and every nested forEach gives one null row.
   */
  function evalNode(node: Node, focus: unknown, rowIndex: number, nulls = false): Row[] {
    let foci: Array<[unknown, number]>;
    if (node.forEach) {
      const items = nulls ? [] : node.forEach(focus, { ...constants, rowIndex });
      if (items.length === 0) {
        if (!node.orNull && !nulls) return [];
        return evalNode({ ...node, forEach: undefined }, EMPTY, 0, true);
      }
      foci = items.map((f, i) => [f, i]);
    } else if (node.repeat) {
      const out: unknown[] = [];
      const walk = (from: unknown): void => {
        for (const p of node.repeat ?? [])
          for (const child of p(from, { ...constants, rowIndex })) {
            out.push(child);
            walk(child);
          }
      };
      walk(focus);
      foci = out.map((f, i) => [f, i]);
    } else {
      foci = [[focus, rowIndex]];
    }
    const rows: Row[] = [];
    for (const [f, index] of foci) {
      const vars = { ...constants, rowIndex: index };
      const own: Row = {};
      for (const c of node.columns) {
        const values = c.path(f, vars).map(jsonValue);
        if (c.collection) own[c.name] = values;
        else if (values.length > 1)
          throw new FhirError(400, [
            issue(
              'processing',
              `${c.at} (${c.name}) gave ${values.length} values; mark the column collection: true`,
            ),
          ]);
        else own[c.name] = values.length ? values[0] : null;
      }
      const parts: Row[][] = [[own]];
      for (const s of node.selects) parts.push(evalNode(s, f, index, nulls));
      // In the null row a unionAll is one null row too, not one per branch.
      const branches = nulls ? node.unionAll.slice(0, 1) : node.unionAll;
      if (branches.length) parts.push(branches.flatMap((u) => evalNode(u, f, index, nulls)));
      rows.push(...product(parts));
    }
    return rows;
  }

  return {
    view,
    columns: root.names,
    rows(resource: unknown): Row[] {
      if ((resource as { resourceType?: unknown } | null)?.resourceType !== view.resource) return [];
      for (const [i, w] of where.entries()) {
        const out = w(resource, { ...constants, rowIndex: 0 });
        if (out.length > 1 || (out.length === 1 && typeof out[0] !== 'boolean'))
          throw badRequest(`ViewDefinition.where[${i}] must give a boolean`);
        if (out[0] !== true) return [];
      }
      return evalNode(root, resource, 0);
    },
  };
}
