import type { Request, Response } from 'express';
import type {
  CapabilityStatementRestResourceOperation,
  OperationOutcomeIssue,
  Parameters,
  ParametersParameter,
} from 'fhir/r4';
import { noteAccess } from '../audit/note';
import { accessOf } from '../auth/policy';
import type { BulkJob, TypePlan, ViewFileFormat, ViewPlan } from '../bulk/job';
import { isOutputName } from '../bulk/ndjson';
import { badRequest, FhirError, isFhirError, notFound } from '../fhir/errors';
import { parsePrefer } from '../http/headers';
import { sendJson } from '../http/respond';
import type { AppContext } from '../interactions/context';
import { NAME } from '../views/definition';
import { CONTENT_TYPES, rowFormat } from '../views/output';
import { VIEW_DEFINITION } from '../views/resource-type';
import { EXCLUDED_TYPES } from './deidentify';
import { operationInput, paramString } from './params';
import {
  admitExportJob,
  cancelExportJob,
  ownExportJob,
  sendExportFile,
  setProgressHeaders,
  startExportJob,
} from './export';
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
 * SQL-on-FHIR v2 ViewDefinition `$export` (https://sql-on-fhir.org/ig/latest/operations-export.html):
 * `POST [base]/ViewDefinition/$export` with `Prefer: respond-async` starts a job that writes every
 * view's rows over the store to files; the job is a bulk export job (bulk/job.ts, bulk/runner.ts:
 * persisted, resumed after a restart, chunked, BULK_* limits) whose plans carry the views. Status
 * and answers are the operation's Parameters; downloads and cancellation follow bulk data.
 */

const KNOWN = new Set(['view', 'clientTrackingId', '_format', 'patient', 'group', '_since', '_deidentify']);

const statusUrl = (ctx: AppContext, id: string): string =>
  `${ctx.config.baseUrl}/ViewDefinition/$export-status/${id}`;
const fileUrl = (ctx: AppContext, id: string, name: string): string =>
  `${ctx.config.baseUrl}/ViewDefinition/$export-file/${id}/${name}`;

/** Output files are CSV or NDJSON: the JSON-only content negotiation does not apply to them. */
export function isViewExportFileRequest(req: Request): boolean {
  return req.path.startsWith('/ViewDefinition/$export-file/');
}

interface KickOffParams {
  format: ViewFileFormat;
  clientTrackingId?: string;
  population: Population;
  deidentify: boolean;
  views: ParametersParameter[];
}

function readParams(params: readonly ParametersParameter[]): KickOffParams {
  for (const p of params) {
    if (p.name === 'source')
      throw badRequest('The source parameter is not supported: views run over this server', 'not-supported');
    if (!KNOWN.has(p.name))
      throw badRequest(`Unknown $export parameter ${p.name.slice(0, 80)}`, 'not-supported');
  }
  const formatText = paramString(params, '_format') ?? 'csv';
  // The row formats of $run but json: a file of rows is CSV or NDJSON.
  const format = rowFormat(formatText);
  if (!format || format === 'json')
    throw badRequest(
      `_format ${formatText.slice(0, 40)} is not supported; use csv or ndjson`,
      'not-supported',
    );
  const sinceText = paramString(params, '_since');
  const since = sinceText === undefined ? undefined : parseInstantParam('_since', sinceText);
  const deidentify = paramString(params, '_deidentify');
  if (deidentify !== undefined && deidentify !== 'safe-harbor')
    throw badRequest(`_deidentify supports only safe-harbor, got "${deidentify.slice(0, 80)}"`);
  const views = params.filter((p) => p.name === 'view');
  if (views.length === 0) throw badRequest('$export needs at least one view parameter');
  return {
    format,
    clientTrackingId: paramString(params, 'clientTrackingId'),
    population: since ? { since: new Date(since).toISOString() } : {},
    deidentify: deidentify !== undefined,
    views,
  };
}

/** POST [base]/ViewDefinition/$export: 202 with Content-Location and the `accepted` Parameters. */
export async function viewExportKickOff(ctx: AppContext, req: Request, res: Response): Promise<void> {
  noteAccess(res, { interaction: 'operation', operation: 'export', resourceType: VIEW_DEFINITION });
  if (!parsePrefer(req).respondAsync) throw badRequest('$export needs the header Prefer: respond-async');
  const policy = accessOf(res);
  const { params } = await operationInput(ctx, req, false);
  const input = readParams(params);

  // Every view is resolved and checked before anything starts; all problems are reported together.
  const problems: Array<{ status: number; issues: OperationOutcomeIssue[] }> = [];
  const views: Array<{ name: string; plan: ViewPlan; resource: string; label: string }> = [];
  const names = new Set<string>();
  for (const [i, v] of input.views.entries()) {
    try {
      const parts = v.part ?? [];
      const resolved = await resolveView(ctx, policy, { params: parts });
      const given = paramString(parts, 'name');
      const name = given ?? resolved.view.name ?? `view_${i + 1}`;
      if (!NAME.test(name) || name.length > 64)
        throw badRequest(`view name ${name.slice(0, 80)} must match ${NAME.source} (at most 64 characters)`);
      if (names.has(name)) throw badRequest(`Two views are named ${name}; give each a distinct name part`);
      names.add(name);
      const { view } = resolved;
      if (!ctx.registry.isResourceType(view.resource))
        throw badRequest(`ViewDefinition.resource ${view.resource} is not a resource type of this server`);
      if (input.deidentify && EXCLUDED_TYPES.has(view.resource))
        throw badRequest(`${view.resource} is not available in a de-identified extract`);
      policy.require(view.resource, 's');
      views.push({
        name,
        resource: view.resource,
        label: `${viewLabel(resolved)}:${viewDigest(view)}`,
        plan: { name, definition: JSON.stringify(view), format: input.format },
      });
    } catch (e) {
      if (!isFhirError(e)) throw e;
      problems.push({
        status: e.status,
        issues: e.issues.map((x) => ({
          ...x,
          expression: [`parameter[${params.indexOf(v)}]`, ...(x.expression ?? [])],
        })),
      });
    }
  }
  if (problems.length > 0)
    throw new FhirError(
      problems.length === 1 ? (problems[0]?.status ?? 400) : 400,
      problems.flatMap((p) => p.issues),
    );

  const patients = await requestedPatients(ctx, policy, params);
  const population: Population = { ...input.population };
  if (patients) population.patients = patients;

  const runner = await admitExportJob(ctx);
  const transactionTime = new Date().toISOString();
  population.until = transactionTime;
  // The filters are compiled now with the caller's visibility, like a bulk export's: a resumed job
  // reads exactly what this one would have. Nothing visible is a filter that matches nothing.
  const plans: TypePlan[] = views.map((v) => ({
    type: v.resource,
    filter: JSON.stringify(populationFilter(ctx, policy, v.resource, population) ?? { _id: { $in: [] } }),
    view: v.plan,
  }));

  const query = new URLSearchParams();
  for (const v of views) query.append('view', v.label);
  query.set('_format', input.format);
  if (input.population.since) query.set('_since', input.population.since);
  if (population.patients) query.set('patient', population.patients.join(','));
  if (input.deidentify) query.set('_deidentify', 'safe-harbor');
  noteAccess(res, {
    query: query.toString(),
    ...(population.patients ? { patients: population.patients } : {}),
  });

  const job = await startExportJob(
    runner,
    {
      kind: 'view',
      ...(input.clientTrackingId !== undefined ? { clientTrackingId: input.clientTrackingId } : {}),
      owner: policy.agent.who,
      request: `${ctx.config.baseUrl}/ViewDefinition/$export?${query.toString()}`,
      transactionTime,
      createdAt: transactionTime,
      plans,
    },
    input.deidentify,
  );
  res.set('Content-Location', statusUrl(ctx, job._id));
  sendJson(req, res, 202, statusParameters(ctx, job, 'accepted'));
}

type ExportStatus = 'accepted' | 'in-progress' | 'completed' | 'failed';

/** The operation's status Parameters (exportId, status, location, times, output per view). */
function statusParameters(ctx: AppContext, job: BulkJob, status: ExportStatus): Parameters {
  const p: ParametersParameter[] = [{ name: 'exportId', valueString: job._id }];
  if (job.clientTrackingId !== undefined)
    p.push({ name: 'clientTrackingId', valueString: job.clientTrackingId });
  p.push({ name: 'status', valueCode: status }, { name: 'location', valueUri: statusUrl(ctx, job._id) });
  const format = job.plans[0]?.view?.format;
  if (format) p.push({ name: '_format', valueCode: format });
  p.push({ name: 'exportStartTime', valueInstant: job.createdAt });
  if (status === 'completed' && job.completedAt) {
    p.push({ name: 'exportEndTime', valueInstant: job.completedAt });
    const seconds = Math.round((Date.parse(job.completedAt) - Date.parse(job.createdAt)) / 1000);
    p.push({ name: 'exportDuration', valueInteger: seconds });
    for (const plan of job.plans) {
      const view = plan.view;
      if (!view) continue;
      const files = job.files.filter((f) => f.view === view.name);
      p.push({
        name: 'output',
        part: [
          { name: 'name', valueString: view.name },
          ...files.map((f) => ({ name: 'location', valueUri: fileUrl(ctx, job._id, f.name) })),
          // A server addition: the rows written for the view, over all its files.
          { name: 'rowCount', valueInteger: files.reduce((n, f) => n + f.count, 0) },
        ],
      });
    }
  }
  if (status === 'failed') for (const e of job.errors) p.push({ name: 'error', resource: e });
  return { resourceType: 'Parameters', parameter: p };
}

/**
 * GET [base]/ViewDefinition/$export-status/[id]: 202 with X-Progress and Retry-After while it runs,
 * 200 with the `completed` Parameters (one output per view) when done; a failed job is 202 with
 * status `failed` and the reason, as the operation defines it.
 */
export async function viewExportStatus(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const job = await ownExportJob(ctx, res, req.params.id as string, true);
  noteAccess(res, { query: new URLSearchParams({ job: job._id }).toString() });
  if (job.status === 'queued' || job.status === 'running') {
    setProgressHeaders(res, job);
    sendJson(req, res, 202, statusParameters(ctx, job, 'in-progress'));
    return;
  }
  if (job.status === 'failed') {
    sendJson(req, res, 202, statusParameters(ctx, job, 'failed'));
    return;
  }
  noteAccess(res, { count: job.written });
  sendJson(req, res, 200, statusParameters(ctx, job, 'completed'));
}

/** DELETE [base]/ViewDefinition/$export-status/[id]: stops the job and removes its files (202); then 404. */
export async function viewExportCancel(ctx: AppContext, req: Request, res: Response): Promise<void> {
  await cancelExportJob(ctx, req, res, true);
}

/** GET [base]/ViewDefinition/$export-file/[id]/[name]: one output file, to the agent that started the job. */
export async function viewExportFile(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const name = req.params.name as string;
  const job = await ownExportJob(ctx, res, req.params.id as string, true);
  const file = job.files.find((f) => f.name === name && f.view !== undefined);
  if (job.status !== 'completed' || !isOutputName(name) || !file)
    throw notFound(`No output file ${name.slice(0, 80)} in export job ${job._id}`);
  noteAccess(res, {
    query: new URLSearchParams({ job: job._id, view: file.view as string, file: name }).toString(),
  });
  await sendExportFile(
    ctx,
    req,
    res,
    job,
    file,
    `${CONTENT_TYPES[name.endsWith('.csv') ? 'csv' : 'ndjson']}; charset=utf-8`,
  );
}

/** What the CapabilityStatement says about ViewDefinition/$export. */
export function viewExportOperations(): CapabilityStatementRestResourceOperation[] {
  return [
    {
      name: 'export',
      definition: 'http://sql-on-fhir.org/OperationDefinition/$export',
      documentation:
        'SQL-on-FHIR v2 asynchronous view export: POST [base]/ViewDefinition/$export with Prefer: respond-async ' +
        'and a Parameters body: view (1..*, parts name, viewReference or viewResource), clientTrackingId, _format ' +
        '(csv, the default, or ndjson), patient, group, _since, and the server extension _deidentify=safe-harbor ' +
        '(the bulk export rules). 202 with Content-Location [base]/ViewDefinition/$export-status/[id]; polling ' +
        'answers 202 (X-Progress, Retry-After) then 200 with Parameters: status completed and one output (name, ' +
        'location per file, rowCount) per view; DELETE cancels. Files at [base]/ViewDefinition/$export-file/' +
        '[id]/[name] for the agent that started the job. Not supported: source, json and parquet output.',
    },
  ];
}
