import type { Request } from 'express';

/**
 * The query string as ordered [name, value] pairs of plain strings. Express's extended parser
 * would turn `name[$ne]=x` into an object that could reach a MongoDB filter; this server never
 * uses it (app.ts installs a flat parser) and reads parameters through here.
 */
export function queryPairs(req: Request): Array<[string, string]> {
  const q = req.originalUrl.indexOf('?');
  if (q === -1) return [];
  return [...new URLSearchParams(req.originalUrl.slice(q + 1))];
}

/** The first value of a parameter, always a string or undefined. */
export function queryParam(req: Request, name: string): string | undefined {
  for (const [k, v] of queryPairs(req)) if (k === name) return v;
  return undefined;
}

/** The flat query parser installed in app.ts: every value is a string, never an object. */
export function flatQueryParser(str: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of new URLSearchParams(str)) if (!(k in out)) out[k] = v;
  return out;
}
