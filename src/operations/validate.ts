import type { Request, Response } from 'express';
import type { CapabilityStatementRestResourceOperation, OperationOutcome, Resource } from 'fhir/r4';
import { noteAccess } from '../audit/note';
import { accessOf } from '../auth/policy';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { badRequest, issue, methodNotAllowed, notFound } from '../fhir/errors';
import { checkId, checkType } from '../fhir/resource';
import { sendJson } from '../http/respond';
import type { AppContext } from '../interactions/context';
import { ProfileValidator } from '../validation/resource-validator';
import { operationInput, paramString, paramStrings } from './params';

const shared = new WeakMap<DefinitionsRegistry, ProfileValidator>();

/** The server's validator (the write path's, when it is a ProfileValidator), for operations. */
export function validatorFor(ctx: AppContext): ProfileValidator {
  if (ctx.validator instanceof ProfileValidator) return ctx.validator;
  let v = shared.get(ctx.registry);
  if (!v) {
    v = new ProfileValidator(ctx.registry);
    shared.set(ctx.registry, v);
  }
  return v;
}

const MODES = new Set(['create', 'update', 'delete', 'profile']);

/**
 * $validate (resource-operation-validate): POST [base]/[type]/$validate and
 * [base]/[type]/[id]/$validate (GET validates the stored resource). The answer is an
 * OperationOutcome with 200 whether or not the resource is valid; only a malformed request is 4xx.
 */
export async function validateOperation(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const type = checkType(ctx.registry, req.params.type as string);
  const id = req.params.id === undefined ? undefined : checkId(req.params.id as string);
  noteAccess(res, { interaction: 'operation', operation: 'validate', resourceType: type, id });
  const policy = accessOf(res);
  policy.require(type, 'r');
  const input = await operationInput(ctx, req, true);
  const mode = paramString(input.params, 'mode');
  if (mode !== undefined && !MODES.has(mode)) {
    throw badRequest(`mode must be one of create, update, delete, profile; got "${mode}"`);
  }
  const profiles = paramStrings(input.params, 'profile');
  let resource: Resource | undefined =
    input.resource ?? (input.params.find((p) => p.name === 'resource')?.resource as Resource | undefined);
  if (!resource && id !== undefined) {
    const doc = await ctx.store.read(type, id);
    if (!doc || doc.deleted || !doc.resource || !policy.canSee(doc.resource, 'r')) {
      throw notFound(`${type}/${id} does not exist`);
    }
    if (mode === 'delete') {
      sendJson(req, res, 200, ok(`${type}/${id} may be deleted (the server keeps no referential integrity)`));
      return;
    }
    resource = doc.resource;
  }
  if (!resource)
    throw badRequest('Nothing to validate: send a resource, or Parameters with a resource parameter');
  if (resource.resourceType !== type) {
    throw badRequest(`The resource is a ${String(resource.resourceType)}, not a ${type}`);
  }
  const extra: OperationOutcome['issue'] = [];
  if (mode === 'update' && id !== undefined && resource.id !== id) {
    extra.push(
      issue('invalid', `For an update the resource id must be ${id}, got ${String(resource.id)}`, 'error', [
        `${type}.id`,
      ]),
    );
  }
  if (mode === 'update' && id === undefined && resource.id === undefined) {
    extra.push(issue('required', 'For an update the resource must have an id', 'error', [`${type}.id`]));
  }
  const result = validatorFor(ctx).validate(resource, profiles);
  const issues = [...extra, ...result.issues];
  sendJson(
    req,
    res,
    200,
    issues.length > 0
      ? { resourceType: 'OperationOutcome', issue: issues }
      : ok('Validation successful: no issues'),
  );
}

function ok(text: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [issue('informational', text, 'information')] };
}

/** GET [type]/$validate: there is nothing to validate without a body. */
export async function validateNeedsPost(_ctx: AppContext, req: Request): Promise<void> {
  throw methodNotAllowed(
    `${req.method} is not allowed on ${req.path}; POST the resource to validate`,
    'POST',
  );
}

/** What the CapabilityStatement says about $validate and the terminology operations of a type. */
export function validationOperations(type: string): CapabilityStatementRestResourceOperation[] {
  const out: CapabilityStatementRestResourceOperation[] = [
    {
      name: 'validate',
      definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
      documentation:
        'POST [type]/$validate or [type]/[id]/$validate (GET validates the stored resource): resource, ' +
        'mode (create, update, delete, profile) and profile parameters; structure, claimed and named ' +
        'profiles, required bindings to held ValueSets, invariants. 200 with an OperationOutcome.',
    },
  ];
  if (type === 'ValueSet') {
    out.push(
      {
        name: 'expand',
        definition: 'http://hl7.org/fhir/OperationDefinition/ValueSet-expand',
        documentation:
          'url, valueSet or [id]; filter, count, offset. Only ValueSets over code systems held in full.',
      },
      { name: 'validate-code', definition: 'http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code' },
    );
  }
  if (type === 'CodeSystem') {
    out.push(
      { name: 'lookup', definition: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup' },
      { name: 'subsumes', definition: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes' },
      {
        name: 'validate-code',
        definition: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code',
      },
    );
  }
  return out;
}
