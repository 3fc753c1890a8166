import type { Request } from 'express';
import type { Parameters, ParametersParameter, Resource } from 'fhir/r4';
import { badRequest } from '../fhir/errors';
import { readJson } from '../http/body';
import { queryPairs } from '../http/query';
import type { AppContext } from '../interactions/context';

/**
 * An operation's input parameters (operations.html#request): URL parameters, plus for POST a
 * Parameters body (or, where the operation allows, a bare resource, returned as `resource`).
 */
export interface OperationInput {
  params: ParametersParameter[];
  /** A body that was a resource rather than Parameters. */
  resource?: Resource;
}

export async function operationInput(
  ctx: AppContext,
  req: Request,
  allowResource: boolean,
): Promise<OperationInput> {
  const params: ParametersParameter[] = queryPairs(req)
    .filter(([k]) => !k.startsWith('_'))
    .map(([name, valueString]) => ({ name, valueString }));
  if (req.method !== 'POST') return { params };
  const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
  if (!hasBody) return { params };
  const { value } = await readJson(req, ctx.config, ['resource']);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('The body must be a FHIR resource or Parameters');
  }
  const body = value as Resource;
  if (body.resourceType === 'Parameters') {
    params.push(...((body as Parameters).parameter ?? []));
    return { params };
  }
  if (!allowResource) throw badRequest('The body must be a Parameters resource');
  return { params, resource: body };
}

/** The value of a parameter as a string (valueString, valueCode, valueUri, ...), if it has one. */
export function paramString(params: readonly ParametersParameter[], name: string): string | undefined {
  const p = params.find((x) => x.name === name);
  if (!p) return undefined;
  for (const [k, v] of Object.entries(p)) {
    if (k.startsWith('value') && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
      return String(v);
    }
  }
  return undefined;
}

export function paramStrings(params: readonly ParametersParameter[], name: string): string[] {
  return params
    .filter((x) => x.name === name)
    .flatMap((p) => Object.entries(p).filter(([k, v]) => k.startsWith('value') && typeof v === 'string'))
    .map(([, v]) => v as string);
}

export function paramInt(params: readonly ParametersParameter[], name: string): number | undefined {
  const s = paramString(params, name);
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s)) throw badRequest(`Parameter ${name} must be a non-negative integer, got "${s}"`);
  return Number(s);
}
