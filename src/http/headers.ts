import type { Request } from 'express';
import { badRequest } from '../fhir/errors';

/** `W/"3"` or `"3"` -> 3. Anything else is a client error on If-Match. */
export function parseETag(value: string, header: string): number {
  const m = /^\s*(?:W\/)?"(\d{1,15})"\s*$/.exec(value);
  if (!m) throw badRequest(`${header} must be a version ETag like W/"3", got ${JSON.stringify(value)}`);
  return Number(m[1]);
}

export function etag(versionId: number | string): string {
  return `W/"${versionId}"`;
}

export type PreferReturn = 'minimal' | 'representation' | 'OperationOutcome';

export interface Prefer {
  return?: PreferReturn;
  handling?: 'strict' | 'lenient';
  respondAsync: boolean;
}

/** RFC 7240 Prefer, the parts FHIR uses. Unknown preferences are ignored, as the RFC says. */
export function parsePrefer(req: Request): Prefer {
  const out: Prefer = { respondAsync: false };
  const raw = req.get('prefer');
  if (!raw) return out;
  for (const part of raw.split(/[,;]/)) {
    const [k, v] = part.split('=').map((s) => s.trim().replace(/^"|"$/g, ''));
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'OperationOutcome'))
      out.return = v;
    else if (k === 'handling' && (v === 'strict' || v === 'lenient')) out.handling = v;
    else if (k === 'respond-async') out.respondAsync = true;
  }
  return out;
}

/** HTTP-date (RFC 7231) parse; undefined when absent or unparsable (then the header is ignored). */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
