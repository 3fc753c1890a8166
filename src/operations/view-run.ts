import { createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { CapabilityStatementRestResourceOperation, Group, ParametersParameter, Resource } from 'fhir/r4';
import { noteAccess } from '../audit/note';
import { accessOf, restrict, type AccessPolicy } from '../auth/policy';
import { compartmentFilter } from '../fhir/compartment';
import { badRequest, notFound, notAcceptable } from '../fhir/errors';
import { ID_PATTERN } from '../fhir/resource';
import { queryParam } from '../http/query';
import type { AppContext } from '../interactions/context';
import type { Filter } from '../store/backend';
import { parseViewDefinition, type ViewDefinition } from '../views/definition';
import { CONTENT_TYPES, rowFormat, RowWriter, type RowFormat } from '../views/output';
import { compileView } from '../views/runner';
import { Deidentifier, EXCLUDED_TYPES, Pseudonymizer } from './deidentify';
import { operationInput, paramString, paramStrings } from './params';

/**
 * SQL-on-FHIR v2 `$run` (https://sql-on-fhir.org/ig/latest/OperationDefinition-ViewDefinitionRun.html):
 * POST [base]/ViewDefinition/$run and [base]/ViewDefinition/[id]/$run.
 * Rows come from the store (current, non-deleted documents the caller may search: the same scopes
 * and patient-compartment rules as search) or from inline `resource` parameters.
 */

const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** $run paths: their `_format` (csv, ndjson) is not a FHIR format, so app.ts skips the negotiation. */
export function isViewRunRequest(req: Request): boolean {
  return /^\/ViewDefinition\/([^/]+\/)?\$run$/.test(req.path);
}

function formatOf(req: Request, params: readonly ParametersParameter[]): RowFormat {
  const named = paramString(params, '_format') ?? queryParam(req, '_format');
  if (named !== undefined) {
    const f = rowFormat(named);
    if (!f) throw badRequest(`_format ${named} is not supported; use json, ndjson or csv`);
    return f;
  }
  const accept = req.get('accept');
  if (!accept) return 'json';
  for (const t of accept.split(',').map((s) => s.split(';')[0]?.trim() ?? '')) {
    const f = rowFormat(t);
    if (f) return f;
    if (t === '*/*') return 'json';
  }
  throw notAcceptable(`None of the accepted types (${accept}) can be produced; use json, ndjson or csv`);
}

function patientId(v: string): string {
  const id = v.startsWith('Patient/') ? v.slice('Patient/'.length) : v;
  if (!ID_PATTERN.test(id)) throw badRequest(`patient ${v} is not a Patient reference`);
  return id;
}

/** References given as valueReference or as strings. */
function refParams(params: readonly ParametersParameter[], name: string): string[] {
  return [
    ...paramStrings(params, name),
    ...params
      .filter((p) => p.name === name && typeof p.valueReference?.reference === 'string')
      .map((p) => p.valueReference?.reference as string),
  ];
}

async function groupMembers(ctx: AppContext, policy: AccessPolicy, ref: string): Promise<string[]> {
  const id = ref.startsWith('Group/') ? ref.slice('Group/'.length) : ref;
  if (!ID_PATTERN.test(id)) throw badRequest(`group ${ref} is not a Group reference`);
  policy.require('Group', 's');
  const filter = restrict({ _id: id, deleted: false }, policy, 'Group', 's');
  const [doc] = filter ? await ctx.store.find('Group', filter, { limit: 1 }) : [];
  if (!doc?.resource) throw notFound(`Group/${id} does not exist`);
  const out: string[] = [];
  for (const m of (doc.resource as Group).member ?? []) {
    const hit = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(m.entity?.reference ?? '');
    if (hit) out.push(hit[1] as string);
  }
  return out;
}

function viewOf(id: string | undefined, params: readonly ParametersParameter[]): ViewDefinition {
  const inline = params.find((p) => p.name === 'viewResource')?.resource;
  if (inline) return parseViewDefinition(inline);
  const ref = id ?? paramString(params, 'viewReference') ?? refParams(params, 'viewReference')[0];
  if (ref !== undefined)
    // ViewDefinition is not an R4 resource type; this server does not store them (README).
    throw notFound(`ViewDefinition ${ref} does not exist: this server runs inline ViewDefinitions only`);
  throw badRequest('$run needs a viewResource parameter (an inline ViewDefinition)');
}

/** A digest of the view, so the audit trail identifies inline views too. */
function viewDigest(view: ViewDefinition): string {
  return createHash('sha256').update(JSON.stringify(view)).digest('hex').slice(0, 16);
}

export async function viewRun(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const { params } = await operationInput(ctx, req, false);
  const format = formatOf(req, params);
  const view = viewOf(req.params.id as string | undefined, params);
  const compiled = compileView(view);
  if (!ctx.registry.resourceTypes.includes(view.resource))
    throw badRequest(`ViewDefinition.resource ${view.resource} is not an R4 resource type`);

  const limitText = paramString(params, '_limit') ?? queryParam(req, '_limit');
  const limit = limitText === undefined ? Infinity : Number(limitText);
  if (!Number.isInteger(limit) && limit !== Infinity) throw badRequest('_limit must be a positive integer');
  if (limit < 1) throw badRequest('_limit must be a positive integer');
  const since = paramString(params, '_since') ?? queryParam(req, '_since');
  if (since !== undefined && !INSTANT.test(since)) throw badRequest('_since must be an instant');
  const patientRefs = [
    ...refParams(params, 'patient'),
    ...(queryParam(req, 'patient') ? [queryParam(req, 'patient') as string] : []),
  ];
  const groupRefs = [
    ...refParams(params, 'group'),
    ...(queryParam(req, 'group') ? [queryParam(req, 'group') as string] : []),
  ];
  const inline = params.filter((p) => p.name === 'resource').map((p) => p.resource);

  const policy = accessOf(res);
  const writer = new RowWriter(format, compiled.columns);
  const query = new URLSearchParams({
    view: view.name ?? view.id ?? 'inline',
    sha256: viewDigest(view),
    resource: view.resource,
  });
  for (const [k, v] of [
    ['_since', since],
    ['_limit', limitText],
    ['_format', format],
  ] as const)
    if (v !== undefined) query.set(k, v);
  noteAccess(res, {
    interaction: 'operation',
    operation: 'run',
    resourceType: 'ViewDefinition',
    query: query.toString(),
  });

  // _deidentify=safe-harbor (the bulk export's rules, README): each resource is de-identified before
  // the view sees it, with a pseudonym key that lives for this run only.
  const deidentify = paramString(params, '_deidentify') ?? queryParam(req, '_deidentify');
  if (deidentify !== undefined && deidentify !== 'safe-harbor')
    throw badRequest(`_deidentify ${deidentify} is not supported; use safe-harbor`);
  if (deidentify && EXCLUDED_TYPES.has(view.resource))
    throw badRequest(`${view.resource} is not available in a de-identified extract`);
  const deid = deidentify
    ? new Deidentifier(new Pseudonymizer(randomBytes(32)), {
        baseUrl: ctx.config.baseUrl,
        referenceYear: new Date().getUTCFullYear(),
      })
    : undefined;
  if (deidentify) query.set('_deidentify', deidentify);

  const emit = (original: unknown): boolean => {
    const resource = deid ? deid.resource(original as Resource) : original;
    if (resource === null) return true;
    for (const row of compiled.rows(resource)) {
      if (writer.rows >= limit) return false;
      writer.write(row);
    }
    return writer.rows < limit;
  };

  if (inline.length > 0) {
    // Rows over the resources the client sent: nothing is read from the store.
    for (const r of inline) if (r === undefined || !emit(r as Resource)) break;
  } else {
    policy.require(view.resource, 's');
    const patients = patientRefs.map(patientId);
    for (const g of groupRefs) patients.push(...(await groupMembers(ctx, policy, g)));
    const parts: Filter[] = [{ deleted: false }];
    if (since) parts.push({ lastUpdated: { $gt: since } });
    let runnable = true;
    if (patientRefs.length > 0 || groupRefs.length > 0) {
      const c = compartmentFilter(ctx.registry, view.resource, patients);
      if (c) parts.push(c);
      else runnable = false;
      query.set('patient', patients.join(','));
      noteAccess(res, { patients });
    }
    const filter = runnable ? restrict({ $and: parts }, policy, view.resource, 's') : null;
    if (filter)
      for await (const doc of ctx.store.current(view.resource).stream(filter, { sort: { _id: 1 } }))
        if (doc.resource && !emit(doc.resource)) break;
  }

  // The body goes out in one piece: the audit middleware holds the answer until its record (with
  // the row count) is durable.
  noteAccess(res, { count: writer.rows, query: query.toString() });
  const body = writer.finish();
  res.status(200);
  res.set('Content-Type', `${CONTENT_TYPES[format]}; charset=utf-8`);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * The CapabilityStatement entry (rest.operation: ViewDefinition is not an R4 resource type, so there
 * is no resource entry to hang it on).
 */
export function viewOperations(): CapabilityStatementRestResourceOperation[] {
  return [
    {
      name: 'run',
      definition: 'http://sql-on-fhir.org/OperationDefinition/$run',
      documentation:
        'SQL-on-FHIR v2 ViewDefinition run at POST [base]/ViewDefinition/$run: an inline viewResource ' +
        '(stored ViewDefinitions are not supported), over the store (same scopes and patient-compartment ' +
        'rules as search) or inline resource parameters; patient, group, _since, _limit; _format json ' +
        '(default), ndjson or csv. Every run is audited with the view digest and the row count.',
    },
  ];
}
