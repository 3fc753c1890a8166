import type { Resource } from 'fhir/r4';
import { badRequest, notFound } from './errors';
import type { DefinitionsRegistry } from './definitions';

/** FHIR ids: [A-Za-z0-9\-\.]{1,64} (datatypes.html#id). */
export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

export function checkId(id: string): string {
  if (!ID_PATTERN.test(id))
    throw badRequest(`Invalid resource id "${id.slice(0, 80)}": ids are 1-64 of A-Z a-z 0-9 - .`);
  return id;
}

export function checkType(registry: DefinitionsRegistry, type: string): string {
  if (!registry.isResourceType(type)) throw notFound(`Unknown resource type "${type.slice(0, 80)}"`);
  return type;
}

export function checkVersionId(v: string): number {
  if (!/^[1-9]\d{0,14}$/.test(v)) throw notFound(`Version "${v.slice(0, 40)}" does not exist`);
  return Number(v);
}

/**
 * The body of a create/update: a JSON object whose resourceType is the URL's type. The id rules
 * (must match on PUT; ignored on POST) are the caller's.
 */
export function asResource(body: unknown, type: string): Resource {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw badRequest('The request body must be a FHIR resource (a JSON object)');
  const rt = (body as { resourceType?: unknown }).resourceType;
  if (typeof rt !== 'string')
    throw badRequest('The resource has no resourceType', 'required', ['resourceType']);
  if (rt !== type)
    throw badRequest(
      `The resource's resourceType "${rt}" does not match the URL's type "${type}"`,
      'invalid',
      ['resourceType'],
    );
  const id = (body as { id?: unknown }).id;
  if (id !== undefined && (typeof id !== 'string' || !ID_PATTERN.test(id)))
    throw badRequest('Resource.id must be 1-64 of A-Z a-z 0-9 - .', 'invalid', [`${type}.id`]);
  const meta = (body as { meta?: unknown }).meta;
  if (meta !== undefined && (meta === null || typeof meta !== 'object' || Array.isArray(meta)))
    throw badRequest('Resource.meta must be an object', 'structure', [`${type}.meta`]);
  return body as Resource;
}
