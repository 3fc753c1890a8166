import type { OperationOutcomeIssue } from 'fhir/r4';
import { badRequest, FhirError, issue } from '../fhir/errors';
import { isRecord } from '../search/types/common';

/**
 * SQL-on-FHIR v2 ViewDefinition, as far as the runner reads it
 * (https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html).
 */
export interface ViewColumn {
  name: string;
  path: string;
  type?: string;
  collection?: boolean;
  description?: string;
}

export interface ViewSelect {
  column?: ViewColumn[];
  select?: ViewSelect[];
  forEach?: string;
  forEachOrNull?: string;
  repeat?: string[];
  unionAll?: ViewSelect[];
}

export interface ViewConstant {
  name: string;
  /** The constant's value[x], kept with its FHIR type name (e.g. 'date', 'string'). */
  type: string;
  value: string | number | boolean;
}

export interface ViewDefinition {
  resourceType: 'ViewDefinition';
  id?: string;
  name?: string;
  resource: string;
  status?: string;
  constant: ViewConstant[];
  select: ViewSelect[];
  where: Array<{ path: string }>;
}

/** The sql-name invariant of the IG: names usable as table and column names. */
export const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Collects every structural problem of a ViewDefinition, each with its location. */
export class Problems {
  readonly issues: OperationOutcomeIssue[] = [];

  add(message: string, at: string): void {
    this.issues.push(issue('invalid', message, 'error', [at]));
  }
}

function optString(o: Record<string, unknown>, key: string, at: string, p: Problems): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) {
    p.add(`${at}.${key} must be a non-empty string`, `${at}.${key}`);
    return undefined;
  }
  return v;
}

function list(o: Record<string, unknown>, key: string, at: string, p: Problems): unknown[] {
  const v = o[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    p.add(`${at}.${key} must be an array`, `${at}.${key}`);
    return [];
  }
  return v;
}

function parseColumn(v: unknown, at: string, p: Problems): ViewColumn | undefined {
  if (!isRecord(v)) {
    p.add(`${at} must be an object`, at);
    return undefined;
  }
  const name = optString(v, 'name', at, p);
  const path = optString(v, 'path', at, p);
  let ok = true;
  if (!name || !NAME.test(name)) {
    p.add(`${at}.name must match ${NAME.source}`, `${at}.name`);
    ok = false;
  }
  if (!path) {
    p.add(`${at}.path is required`, `${at}.path`);
    ok = false;
  }
  const collection = v.collection;
  if (collection !== undefined && typeof collection !== 'boolean')
    p.add(`${at}.collection must be a boolean`, `${at}.collection`);
  if (!ok || !name || !path) return undefined;
  return {
    name,
    path,
    type: optString(v, 'type', at, p),
    collection: typeof collection === 'boolean' ? collection : undefined,
    description: optString(v, 'description', at, p),
  };
}

function parseSelect(v: unknown, at: string, p: Problems): ViewSelect {
  const out: ViewSelect = {};
  if (!isRecord(v)) {
    p.add(`${at} must be an object`, at);
    return out;
  }
  const columns = list(v, 'column', at, p)
    .map((c, i) => parseColumn(c, `${at}.column[${i}]`, p))
    .filter((c): c is ViewColumn => c !== undefined);
  if (columns.length) out.column = columns;
  const selects = list(v, 'select', at, p).map((s, i) => parseSelect(s, `${at}.select[${i}]`, p));
  if (selects.length) out.select = selects;
  const unions = list(v, 'unionAll', at, p).map((s, i) => parseSelect(s, `${at}.unionAll[${i}]`, p));
  if (unions.length) out.unionAll = unions;
  out.forEach = optString(v, 'forEach', at, p);
  out.forEachOrNull = optString(v, 'forEachOrNull', at, p);
  if (out.forEach && out.forEachOrNull) p.add(`${at} has both forEach and forEachOrNull`, at);
  const repeat = list(v, 'repeat', at, p);
  if (repeat.length) {
    if (out.forEach || out.forEachOrNull) p.add(`${at} combines repeat with forEach`, at);
    out.repeat = repeat.filter((e, i) => {
      if (typeof e === 'string' && e) return true;
      p.add(`${at}.repeat[${i}] must be a non-empty string`, `${at}.repeat[${i}]`);
      return false;
    }) as string[];
  }
  return out;
}

function parseConstant(v: unknown, at: string, p: Problems): ViewConstant | undefined {
  if (!isRecord(v)) {
    p.add(`${at} must be an object`, at);
    return undefined;
  }
  const name = optString(v, 'name', at, p);
  if (!name || !NAME.test(name)) {
    p.add(`${at}.name must match ${NAME.source}`, `${at}.name`);
    return undefined;
  }
  const values = Object.keys(v).filter((k) => k.startsWith('value'));
  const key = values[0];
  if (values.length !== 1 || key === undefined) {
    p.add(`${at} needs exactly one value[x]`, at);
    return undefined;
  }
  const value = v[key];
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    p.add(`${at}.${key} must be a primitive value`, `${at}.${key}`);
    return undefined;
  }
  const type = key.slice(5);
  return { name, type: type.charAt(0).toLowerCase() + type.slice(1), value };
}

/**
 * The column names a select produces, in order. unionAll branches must agree: a mismatch is
 * reported to `p`, or thrown (400) without it.
 */
export function columnsOf(s: ViewSelect, at = 'select', p?: Problems): string[] {
  const names = (s.column ?? []).map((c) => c.name);
  (s.select ?? []).forEach((c, i) => names.push(...columnsOf(c, `${at}.select[${i}]`, p)));
  if (s.unionAll) {
    const branches = s.unionAll.map((u, i) => columnsOf(u, `${at}.unionAll[${i}]`, p));
    const first = branches[0] ?? [];
    if (branches.some((b) => b.join('\u0000') !== first.join('\u0000'))) {
      const message = `${at}.unionAll branches must have the same columns in the same order`;
      if (!p) throw badRequest(message);
      p.add(message, `${at}.unionAll`);
    }
    names.push(...first);
  }
  return names;
}

/**
 * Reads a ViewDefinition as far as the runner needs it, collecting every structural problem
 * (the view is only usable when there are none).
 */
export function readViewDefinition(v: unknown): { view: ViewDefinition; issues: OperationOutcomeIssue[] } {
  const p = new Problems();
  const at = 'ViewDefinition';
  const empty: ViewDefinition = {
    resourceType: 'ViewDefinition',
    resource: '',
    constant: [],
    select: [],
    where: [],
  };
  if (!isRecord(v)) {
    p.add('A ViewDefinition must be a JSON object', at);
    return { view: empty, issues: p.issues };
  }
  if (v.resourceType !== undefined && v.resourceType !== 'ViewDefinition') {
    p.add(`Expected a ViewDefinition, got ${String(v.resourceType)}`, `${at}.resourceType`);
    return { view: empty, issues: p.issues };
  }
  const resource = optString(v, 'resource', at, p);
  if (!resource) p.add('ViewDefinition.resource is required', `${at}.resource`);
  const select = list(v, 'select', at, p).map((s, i) => parseSelect(s, `${at}.select[${i}]`, p));
  if (select.length === 0) p.add('ViewDefinition.select needs at least one element', `${at}.select`);
  const where: Array<{ path: string }> = [];
  list(v, 'where', at, p).forEach((w, i) => {
    if (!isRecord(w)) return p.add(`${at}.where[${i}] must be an object`, `${at}.where[${i}]`);
    const path = optString(w, 'path', `${at}.where[${i}]`, p);
    if (!path) return p.add(`${at}.where[${i}].path is required`, `${at}.where[${i}].path`);
    where.push({ path });
  });
  const constant = list(v, 'constant', at, p)
    .map((c, i) => parseConstant(c, `${at}.constant[${i}]`, p))
    .filter((c): c is ViewConstant => c !== undefined);
  const view: ViewDefinition = {
    resourceType: 'ViewDefinition',
    id: optString(v, 'id', at, p),
    name: optString(v, 'name', at, p),
    resource: resource ?? '',
    status: optString(v, 'status', at, p),
    constant,
    select,
    where,
  };
  const seen = new Set<string>();
  for (const n of columnsOf({ select }, at, p)) {
    if (seen.has(n)) p.add(`ViewDefinition column name ${n} is used twice`, `${at}.select`);
    seen.add(n);
  }
  return { view, issues: p.issues };
}

/** Structural check of a ViewDefinition; throws a 400 FhirError listing every problem. */
export function parseViewDefinition(v: unknown): ViewDefinition {
  const { view, issues } = readViewDefinition(v);
  if (issues.length > 0) throw new FhirError(400, issues);
  return view;
}
