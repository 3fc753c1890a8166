import { badRequest } from '../fhir/errors';
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

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

function optString(o: Record<string, unknown>, key: string, at: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw badRequest(`${at}.${key} must be a non-empty string`);
  return v;
}

function list(o: Record<string, unknown>, key: string, at: string): unknown[] {
  const v = o[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw badRequest(`${at}.${key} must be an array`);
  return v;
}

function parseColumn(v: unknown, at: string): ViewColumn {
  if (!isRecord(v)) throw badRequest(`${at} must be an object`);
  const name = optString(v, 'name', at);
  const path = optString(v, 'path', at);
  if (!name || !NAME.test(name)) throw badRequest(`${at}.name must match ${NAME.source}`);
  if (!path) throw badRequest(`${at}.path is required`);
  const collection = v.collection;
  if (collection !== undefined && typeof collection !== 'boolean')
    throw badRequest(`${at}.collection must be a boolean`);
  return {
    name,
    path,
    type: optString(v, 'type', at),
    collection,
    description: optString(v, 'description', at),
  };
}

function parseSelect(v: unknown, at: string): ViewSelect {
  if (!isRecord(v)) throw badRequest(`${at} must be an object`);
  const out: ViewSelect = {};
  const columns = list(v, 'column', at).map((c, i) => parseColumn(c, `${at}.column[${i}]`));
  if (columns.length) out.column = columns;
  const selects = list(v, 'select', at).map((s, i) => parseSelect(s, `${at}.select[${i}]`));
  if (selects.length) out.select = selects;
  const unions = list(v, 'unionAll', at).map((s, i) => parseSelect(s, `${at}.unionAll[${i}]`));
  if (unions.length) out.unionAll = unions;
  out.forEach = optString(v, 'forEach', at);
  out.forEachOrNull = optString(v, 'forEachOrNull', at);
  if (out.forEach && out.forEachOrNull) throw badRequest(`${at} has both forEach and forEachOrNull`);
  const repeat = list(v, 'repeat', at);
  if (repeat.length) {
    if (out.forEach || out.forEachOrNull) throw badRequest(`${at} combines repeat with forEach`);
    out.repeat = repeat.map((p, i) => {
      if (typeof p !== 'string' || !p) throw badRequest(`${at}.repeat[${i}] must be a non-empty string`);
      return p;
    });
  }
  return out;
}

function parseConstant(v: unknown, at: string): ViewConstant {
  if (!isRecord(v)) throw badRequest(`${at} must be an object`);
  const name = optString(v, 'name', at);
  if (!name || !NAME.test(name)) throw badRequest(`${at}.name must match ${NAME.source}`);
  const values = Object.keys(v).filter((k) => k.startsWith('value'));
  const key = values[0];
  if (values.length !== 1 || key === undefined) throw badRequest(`${at} needs exactly one value[x]`);
  const value = v[key];
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
    throw badRequest(`${at}.${key} must be a primitive value`);
  const type = key.slice(5);
  return { name, type: type.charAt(0).toLowerCase() + type.slice(1), value };
}

/** The column names a select produces, in order (unionAll branches must agree). */
export function columnsOf(s: ViewSelect, at = 'select'): string[] {
  const names = (s.column ?? []).map((c) => c.name);
  (s.select ?? []).forEach((c, i) => names.push(...columnsOf(c, `${at}.select[${i}]`)));
  if (s.unionAll) {
    const branches = s.unionAll.map((u, i) => columnsOf(u, `${at}.unionAll[${i}]`));
    const first = branches[0] ?? [];
    for (const b of branches)
      if (b.join('\u0000') !== first.join('\u0000'))
        throw badRequest(`${at}.unionAll branches must have the same columns in the same order`);
    names.push(...first);
  }
  return names;
}

/** Structural check of a ViewDefinition; throws a 400 FhirError naming the first problem. */
export function parseViewDefinition(v: unknown): ViewDefinition {
  if (!isRecord(v)) throw badRequest('A ViewDefinition must be a JSON object');
  if (v.resourceType !== undefined && v.resourceType !== 'ViewDefinition')
    throw badRequest(`Expected a ViewDefinition, got ${String(v.resourceType)}`);
  const resource = optString(v, 'resource', 'ViewDefinition');
  if (!resource) throw badRequest('ViewDefinition.resource is required');
  const select = list(v, 'select', 'ViewDefinition').map((s, i) =>
    parseSelect(s, `ViewDefinition.select[${i}]`),
  );
  if (select.length === 0) throw badRequest('ViewDefinition.select needs at least one element');
  const where = list(v, 'where', 'ViewDefinition').map((w, i) => {
    if (!isRecord(w)) throw badRequest(`ViewDefinition.where[${i}] must be an object`);
    const path = optString(w, 'path', `ViewDefinition.where[${i}]`);
    if (!path) throw badRequest(`ViewDefinition.where[${i}].path is required`);
    return { path };
  });
  const constant = list(v, 'constant', 'ViewDefinition').map((c, i) =>
    parseConstant(c, `ViewDefinition.constant[${i}]`),
  );
  const view: ViewDefinition = {
    resourceType: 'ViewDefinition',
    id: optString(v, 'id', 'ViewDefinition'),
    name: optString(v, 'name', 'ViewDefinition'),
    resource,
    status: optString(v, 'status', 'ViewDefinition'),
    constant,
    select,
    where,
  };
  const names = columnsOf({ select }, 'ViewDefinition');
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw badRequest(`ViewDefinition column name ${n} is used twice`);
    seen.add(n);
  }
  return view;
}
