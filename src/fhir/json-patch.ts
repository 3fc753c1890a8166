import { badRequest, unprocessable } from './errors';

/**
 * JSON Patch (RFC 6902, https://www.rfc-editor.org/rfc/rfc6902) with JSON Pointer paths
 * (RFC 6901, https://www.rfc-editor.org/rfc/rfc6901), as used by the FHIR patch interaction
 * (https://hl7.org/fhir/R4/http.html#patch).
 *
 * Errors: a malformed patch document is 400 (badRequest); a well-formed patch that cannot be applied
 * to this document (missing path, failed test) is 422 (unprocessable). Messages name the operation
 * by its index in the patch.
 */

export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

type Container = Record<string, unknown> | unknown[];

/** A validated operation with its pointers already split into reference tokens. */
type Compiled = { index: number; operation: JsonPatchOperation; path: string[]; from: string[] };

const OPS: ReadonlySet<string> = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/**
 * Member names that must never be created or followed: they could reach a prototype, or (starting with
 * `$`) a MongoDB operator. The same rule as the JSON body parser (http/json.ts), which a patch would
 * otherwise bypass by adding such a member.
 */
function isForbiddenName(name: string): boolean {
  return name === '__proto__' || name === 'constructor' || name === 'prototype' || name.startsWith('$');
}

/**
 * Applies `patch` to `doc` and returns the result as a new document. `doc` and `patch` are never
 * modified (either may be deeply frozen), and the result shares no objects with them.
 * Operations apply in order; if one fails nothing is returned (the patch is atomic).
 */
export function applyJsonPatch(doc: unknown, patch: unknown): unknown {
  const ops = compile(patch);
  let root = cloneJson(doc, 'document');
  for (const c of ops) root = applyOne(root, c);
  return root;
}

/** Checks the shape of a JSON Patch document (400 on any fault) and returns its operations. */
export function parseJsonPatch(patch: unknown): JsonPatchOperation[] {
  return compile(patch).map((c) => c.operation);
}

function compile(patch: unknown): Compiled[] {
  if (!Array.isArray(patch)) throw badRequest('A JSON Patch document must be an array of operations');
  return patch.map((raw: unknown, index): Compiled => {
    const bad = (msg: string): never => {
      throw badRequest(`JSON Patch operation ${index}: ${msg}`);
    };
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return bad('must be an object');
    // Members other than op, path, from and value are ignored (RFC 6902 section 4).
    const o = raw as Record<string, unknown>;
    const op = own(o, 'op');
    if (typeof op !== 'string') return bad('"op" must be a string');
    if (!OPS.has(op)) return bad(`unknown op ${JSON.stringify(op)}`);
    const pathText = own(o, 'path');
    if (typeof pathText !== 'string') return bad('"path" must be a string');
    const path = parsePointer(pathText, bad);
    let operation: JsonPatchOperation;
    let from: string[] = [];
    if (op === 'add' || op === 'replace' || op === 'test') {
      if (!Object.prototype.hasOwnProperty.call(o, 'value') || o['value'] === undefined)
        return bad(`"value" is required for ${op}`);
      operation = { op, path: pathText, value: cloneJson(o['value'], `operation ${index} value`) };
    } else if (op === 'move' || op === 'copy') {
      const fromText = own(o, 'from');
      if (typeof fromText !== 'string') return bad(`"from" must be a string for ${op}`);
      from = parsePointer(fromText, bad);
      if (op === 'move' && from.length < path.length && from.every((t, k) => t === path[k]))
        return bad(`cannot move ${JSON.stringify(fromText)} into its own child ${JSON.stringify(pathText)}`);
      operation = { op, from: fromText, path: pathText };
    } else {
      operation = { op: 'remove', path: pathText };
    }
    return { index, operation, path, from };
  });
}

function own(o: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/** RFC 6901 section 3-4: "" is the whole document; otherwise "/"-separated tokens with ~1 -> /, ~0 -> ~. */
function parsePointer(pointer: string, bad: (msg: string) => never): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    return bad(`pointer ${JSON.stringify(pointer)} must be empty or start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~(?![01])/.test(token)) bad(`pointer ${JSON.stringify(pointer)} has a "~" not followed by 0 or 1`);
      const name = token.replace(/~1/g, '/').replace(/~0/g, '~');
      if (isForbiddenName(name))
        bad(`pointer ${JSON.stringify(pointer)} names the forbidden member "${name}"`);
      return name;
    });
}

/**
 * Applies one operation to `root`, which is the private copy made by applyJsonPatch and may be
 * changed in place. Operation values were copied by compile(), so inserting them shares nothing.
 */
function applyOne(root: unknown, c: Compiled): unknown {
  const { operation: o, index, path } = c;
  const fail = (msg: string): never => {
    throw unprocessable(`JSON Patch operation ${index} (${o.op} ${JSON.stringify(o.path)}): ${msg}`);
  };
  switch (o.op) {
    case 'add':
      return add(root, path, o.value, fail);
    case 'remove':
      if (path.length === 0) return fail('cannot remove the whole document');
      remove(root, path, fail);
      return root;
    case 'replace': {
      if (path.length === 0) return o.value;
      get(root, path, fail); // the target must exist
      const { parent, token } = resolveParent(root, path, fail);
      if (Array.isArray(parent)) parent[arrayIndex(parent, token, false, fail)] = o.value;
      else parent[token] = o.value;
      return root;
    }
    case 'move': {
      const value = get(root, c.from, fail);
      if (c.from.length === path.length && c.from.every((t, k) => t === path[k])) return root;
      remove(root, c.from, fail);
      return add(root, path, value, fail);
    }
    case 'copy':
      return add(root, path, cloneJson(get(root, c.from, fail), 'value'), fail);
    case 'test':
      if (!jsonEqual(get(root, path, fail), o.value)) fail('test failed: the value differs');
      return root;
  }
}

/** RFC 6902 section 4.1: the parent must exist; "-" appends; an index may equal the length. */
function add(root: unknown, path: string[], value: unknown, fail: (msg: string) => never): unknown {
  if (path.length === 0) return value;
  const { parent, token } = resolveParent(root, path, fail);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, true, fail), 0, value);
  else parent[token] = value;
  return root;
}

function remove(root: unknown, path: string[], fail: (msg: string) => never): void {
  const { parent, token } = resolveParent(root, path, fail);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(parent, token, false, fail), 1);
  } else {
    if (!Object.prototype.hasOwnProperty.call(parent, token)) fail(`path ${pointerOf(path)} does not exist`);
    delete parent[token];
  }
}

function get(root: unknown, path: string[], fail: (msg: string) => never): unknown {
  let node = root;
  for (let k = 0; k < path.length; k++) {
    const token = path[k] as string;
    if (Array.isArray(node)) {
      node = node[arrayIndex(node, token, false, fail, path.slice(0, k + 1))];
    } else if (isObject(node) && Object.prototype.hasOwnProperty.call(node, token)) {
      node = node[token];
    } else {
      fail(`path ${pointerOf(path.slice(0, k + 1))} does not exist`);
    }
  }
  return node;
}

function resolveParent(
  root: unknown,
  path: string[],
  fail: (msg: string) => never,
): { parent: Container; token: string } {
  const parentPath = path.slice(0, -1);
  const parent = get(root, parentPath, fail);
  if (!Array.isArray(parent) && !isObject(parent))
    return fail(`path ${pointerOf(parentPath)} is not an object or array`);
  return { parent, token: path[path.length - 1] as string };
}

/** RFC 6901 section 4: an array index is "0" or digits without a leading zero; "-" only where allowed. */
function arrayIndex(
  array: unknown[],
  token: string,
  forInsert: boolean,
  fail: (msg: string) => never,
  at?: string[],
): number {
  const where = at ? ` at ${pointerOf(at)}` : '';
  if (token === '-') return forInsert ? array.length : fail(`"-" does not name an existing element${where}`);
  if (!/^(0|[1-9][0-9]*)$/.test(token)) return fail(`${JSON.stringify(token)} is not an array index${where}`);
  const i = Number(token);
  if (i > array.length || (!forInsert && i === array.length))
    return fail(`array index ${token} is out of bounds${where}`);
  return i;
}

function pointerOf(path: string[]): string {
  return JSON.stringify(path.map((t) => '/' + t.replace(/~/g, '~0').replace(/\//g, '~1')).join(''));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Deep copy of a JSON value into fresh plain objects and arrays, so the result never shares (possibly
 * frozen) objects with its inputs. Non-JSON values (undefined, functions, NaN, ...) are a 400.
 */
function cloneJson(value: unknown, what: string): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw badRequest(`The ${what} contains a number that is not finite`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => cloneJson(v, what));
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (isForbiddenName(key)) throw badRequest(`The ${what} contains the forbidden member "${key}"`);
      out[key] = cloneJson(value[key], what);
    }
    return out;
  }
  throw badRequest(`The ${what} is not JSON`);
}

/**
 * RFC 6902 section 4.6: equal types and values; objects ignore member order, arrays do not. Also the
 * deep equality of validation (fixed[x], profile.html#fixed).
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a))
    return Array.isArray(b) && a.length === b.length && a.every((v, k) => jsonEqual(v, b[k]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]))
    );
  }
  return false;
}
