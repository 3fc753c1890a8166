import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { CapabilityStatementRestResourceOperation, ParametersParameter, Resource } from 'fhir/r4';
import { noteAccess } from '../audit/note';
import { accessOf } from '../auth/policy';
import { badRequest, notAcceptable } from '../fhir/errors';
import { queryParam } from '../http/query';
import type { AppContext } from '../interactions/context';
import { CONTENT_TYPES, rowFormat, RowWriter, type RowFormat } from '../views/output';
import { VIEW_DEFINITION } from '../views/resource-type';
import { compileView } from '../views/runner';
import { Deidentifier, EXCLUDED_TYPES, Pseudonymizer } from './deidentify';
import { operationInput, paramString } from './params';
import { viewExportOperations } from './view-export';
import { parseInstantParam } from '../fhir/instant';
import {
  populationFilter,
  requestedPatients,
  resolveView,
  viewDigest,
  viewLabel,
  type Population,
} from './view-source';

/**
 * SQL-on-FHIR v2 `$run` (https://sql-on-fhir.org/ig/latest/OperationDefinition-ViewDefinitionRun.html):
 * POST [base]/ViewDefinition/$run and [base]/ViewDefinition/[id]/$run.
 * Rows come from the store (current, non-deleted documents the caller may search: the same scopes
 * and patient-compartment rules as search) or from inline `resource` parameters.
 */

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

export async function viewRun(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const { params } = await operationInput(ctx, req, false);
  const format = formatOf(req, params);
  const policy = accessOf(res);
  const id = req.params.id as string | undefined;
  noteAccess(res, { interaction: 'operation', operation: 'run', resourceType: VIEW_DEFINITION, id });
  const resolved = await resolveView(ctx, policy, { id, params });
  const { view } = resolved;
  const compiled = compileView(view);
  if (!ctx.registry.isResourceType(view.resource))
    throw badRequest(`ViewDefinition.resource ${view.resource} is not a resource type of this server`);

  const limitText = paramString(params, '_limit') ?? queryParam(req, '_limit');
  const limit = limitText === undefined ? Infinity : Number(limitText);
  if (!Number.isInteger(limit) && limit !== Infinity) throw badRequest('_limit must be a positive integer');
  if (limit < 1) throw badRequest('_limit must be a positive integer');
  const sinceText = paramString(params, '_since') ?? queryParam(req, '_since');
  const since = sinceText === undefined ? undefined : parseInstantParam('_since', sinceText);
  const inline = params.filter((p) => p.name === 'resource').map((p) => p.resource);

  const writer = new RowWriter(format, compiled.columns);
  const query = new URLSearchParams({
    view: viewLabel(resolved),
    sha256: viewDigest(view),
    resource: view.resource,
  });
  if (resolved.reference) query.set('viewReference', resolved.reference);
  for (const [k, v] of [
    ['_since', sinceText],
    ['_limit', limitText],
    ['_format', format],
  ] as const)
    if (v !== undefined) query.set(k, v);
  noteAccess(res, { query: query.toString() });

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
    // Query-string patient and group are in params already (operationInput).
    const patients = await requestedPatients(ctx, policy, params);
    const population: Population = {};
    if (since) population.since = new Date(since).toISOString();
    if (patients) {
      population.patients = patients;
      query.set('patient', population.patients.join(','));
      noteAccess(res, { patients: population.patients });
    }
    const filter = populationFilter(ctx, policy, view.resource, population);
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

/** The CapabilityStatement's operations on ViewDefinition ($run here, $export in view-export.ts). */
export function viewOperations(type: string): CapabilityStatementRestResourceOperation[] {
  if (type !== VIEW_DEFINITION) return [];
  return [
    {
      name: 'run',
      definition: 'http://sql-on-fhir.org/OperationDefinition/$run',
      documentation:
        'SQL-on-FHIR v2 ViewDefinition run: POST [base]/ViewDefinition/$run with a viewResource (inline) or ' +
        'viewReference (ViewDefinition/[id], [base]/ViewDefinition/[id], optionally /_history/[v], or a stored ' +
        "view's canonical url[|version]); GET or POST [base]/ViewDefinition/[id]/$run. Over the store (same " +
        'scopes and patient-compartment rules as search; a stored view needs read access to ViewDefinition) or ' +
        'inline resource parameters; patient, group, _since, _limit, _deidentify=safe-harbor; _format json ' +
        '(default), ndjson or csv. Every run is audited with the view and the row count.',
    },
    ...viewExportOperations(),
  ];
}
