import type { Request } from 'express';
import { badRequest, tooLarge, unsupportedMediaType } from '../fhir/errors';
import { decodeUtf8, parseJsonBody } from './json';

export type BodyKind = 'resource' | 'json-patch' | 'form';

const RESOURCE_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);

function mediaType(req: Request): string | undefined {
  return req.get('content-type')?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/** Reads the raw body, refusing more than `limit` bytes without buffering them (413). */
export function readRawBody(req: Request, limit: number): Promise<Buffer> {
  const declared = Number(req.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(`Request body of ${declared} bytes exceeds the limit of ${limit} bytes`));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge(`Request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks, size));
    });
    req.on('error', (e) => {
      if (!failed) {
        failed = true;
        reject(badRequest(`Could not read the request body: ${e.message}`));
      }
    });
  });
}

export interface BodyLimits {
  maxBody: number;
  maxJsonDepth: number;
}

/**
 * The request body as a checked JSON value. The Content-Type must name a FHIR JSON type (or, for
 * PATCH, JSON Patch); anything else is 415 before a byte is parsed.
 */
export async function readJson(
  req: Request,
  limits: BodyLimits,
  kinds: BodyKind[],
): Promise<{ kind: BodyKind; value: unknown }> {
  const mt = mediaType(req);
  let kind: BodyKind | undefined;
  if (mt && RESOURCE_TYPES.has(mt) && kinds.includes('resource')) kind = 'resource';
  else if (mt === 'application/json-patch+json' && kinds.includes('json-patch')) kind = 'json-patch';
  if (!kind) {
    req.resume();
    const accepted = kinds
      .map((k) =>
        k === 'resource' ? 'application/fhir+json' : k === 'json-patch' ? 'application/json-patch+json' : '',
      )
      .filter(Boolean)
      .join(' or ');
    throw unsupportedMediaType(
      mt
        ? `Content-Type ${mt} is not supported here; use ${accepted}`
        : `Content-Type is required; use ${accepted}`,
    );
  }
  const raw = await readRawBody(req, limits.maxBody);
  if (raw.length === 0) throw badRequest('The request body is empty');
  return { kind, value: parseJsonBody(raw, { maxDepth: limits.maxJsonDepth }) };
}

/** An application/x-www-form-urlencoded body (POST _search) as pairs of strings. */
export async function readForm(req: Request, limits: BodyLimits): Promise<Array<[string, string]>> {
  const mt = mediaType(req);
  if (mt !== 'application/x-www-form-urlencoded') {
    if (!mt && Number(req.get('content-length') ?? 0) === 0) return [];
    req.resume();
    throw unsupportedMediaType('POST _search takes application/x-www-form-urlencoded parameters');
  }
  const raw = await readRawBody(req, limits.maxBody);
  return [...new URLSearchParams(decodeUtf8(raw))];
}
