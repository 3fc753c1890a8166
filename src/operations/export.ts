import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Request, Response } from 'express';
import { accessOf, permits, restrict, type AccessPolicy } from '../auth/policy';
import { noteAccess } from '../audit/note';
import { bulkRunnerFor, type BulkRunner } from '../bulk/runner';
import type { BulkJob, TypePlan } from '../bulk/job';
import { isJobId, isOutputName } from '../bulk/ndjson';
import { compartmentFilter } from '../fhir/compartment';
import { badRequest, FhirError, issue, notFound } from '../fhir/errors';
import { checkId } from '../fhir/resource';
import { parsePrefer } from '../http/headers';
import { sendJson } from '../http/respond';
import type { AppContext } from '../interactions/context';
import { SearchService } from '../interactions/search';
import { parseSearchRequest } from '../search/parse';
import type { Filter } from '../store/backend';
import { VIEW_DEFINITION } from '../views/resource-type';
import { EXCLUDED_TYPES } from './deidentify';
import { groupMembers } from './group';
import { parseExportParams, readExportPairs, type ExportParams } from './export-params';

export type ExportLevel = 'system' | 'patient' | 'group';

/** Seconds a client is asked to wait between status polls, and after a 429. */
const RETRY_AFTER_SECONDS = 2;
const BUSY_RETRY_AFTER_SECONDS = 30;

/**
 * The job runner, when it may take one more export (bulk or view): BULK_MAX_JOBS in progress at
 * most, else 429 with Retry-After.
 */
export async function admitExportJob(ctx: AppContext): Promise<BulkRunner> {
  const runner = bulkRunnerFor(ctx);
  if ((await runner.jobs.countActive()) >= ctx.config.bulk.maxJobs)
    throw new FhirError(
      429,
      [
        issue(
          'throttled',
          `Too many export jobs in progress (limit ${ctx.config.bulk.maxJobs}); retry later`,
        ),
      ],
      { 'Retry-After': String(BUSY_RETRY_AFTER_SECONDS) },
    );
  return runner;
}

/**
 * Stores a new job (queued, nothing written) with its output folder, and queues it: the end of
 * every kick-off, bulk or view. `deidentify` gives it a fresh pseudonym key.
 */
export async function startExportJob(
  runner: BulkRunner,
  fields: Pick<
    BulkJob,
    'owner' | 'request' | 'transactionTime' | 'createdAt' | 'plans' | 'kind' | 'clientTrackingId'
  >,
  deidentify: boolean,
): Promise<BulkJob> {
  const job: BulkJob = {
    _id: randomUUID(),
    status: 'queued',
    ...fields,
    updatedAt: fields.createdAt,
    typeIndex: 0,
    written: 0,
    files: [],
    errors: [],
  };
  if (deidentify) job.deidentify = { mode: 'safe-harbor', key: randomBytes(32).toString('hex') };
  await runner.files.create(job._id);
  await runner.jobs.insert(job);
  runner.enqueue(job._id);
  return job;
}

/**
 * The caller's job of the given kind (a ViewDefinition/$export job or a bulk one), or 404 (also for
 * another agent's job: its existence is not disclosed). Each kind has its own status and file URLs.
 */
export async function ownExportJob(
  ctx: AppContext,
  res: Response,
  id: string,
  view: boolean,
): Promise<BulkJob> {
  noteAccess(res, {
    interaction: 'operation',
    operation: 'export',
    ...(view ? { resourceType: VIEW_DEFINITION } : {}),
  });
  const job = isJobId(id) ? await bulkRunnerFor(ctx).jobs.get(id) : null;
  if (!job || (job.kind === 'view') !== view || job.owner !== accessOf(res).agent.who)
    throw notFound(`No ${view ? 'ViewDefinition ' : ''}export job ${id.slice(0, 64)}`);
  return job;
}

/** X-Progress and Retry-After of a job still queued or running (its status poll answers 202). */
export function setProgressHeaders(res: Response, job: BulkJob): void {
  const plan = job.plans[job.typeIndex];
  const [unit, part] = job.kind === 'view' ? ['rows', 'view'] : ['resources', 'type'];
  const where = plan
    ? `; ${part} ${job.typeIndex + 1} of ${job.plans.length} (${plan.view?.name ?? plan.type})`
    : '';
  res.set('X-Progress', `${job.status}: ${job.written} ${unit} written${where}`);
  res.set('Retry-After', String(RETRY_AFTER_SECONDS));
}

/** DELETE of a job's status URL: stops the caller's job of the kind and removes its files (202). */
export async function cancelExportJob(
  ctx: AppContext,
  req: Request,
  res: Response,
  view: boolean,
): Promise<void> {
  const job = await ownExportJob(ctx, res, req.params.id as string, view);
  await bulkRunnerFor(ctx).cancel(job._id);
  sendJson(req, res, 202, {
    resourceType: 'OperationOutcome',
    issue: [issue('informational', `Export job ${job._id} cancelled and its files removed`, 'information')],
  });
}

/**
 * Sends one output file of a completed job (404 when it is gone). Read whole and sent with one
 * res.end: the audit middleware holds res.end until the AuditEvent is durable, and a streamed body
 * would leave before it (files are bounded by BULK_FILE_MAX_BYTES plus one chunk).
 */
export async function sendExportFile(
  ctx: AppContext,
  req: Request,
  res: Response,
  job: BulkJob,
  file: { name: string; count?: number },
  contentType: string,
): Promise<void> {
  const data = await fs.promises
    .readFile(bulkRunnerFor(ctx).files.pathOf(job._id, file.name))
    .catch(() => null);
  if (!data) throw notFound(`Output file ${file.name} is gone`);
  noteAccess(res, { count: file.count });
  res.status(200);
  res.set('Content-Type', contentType);
  // HEAD answers the length GET would send.
  res.set('Content-Length', String(data.length));
  res.end(req.method === 'HEAD' ? undefined : data);
}

function statusUrl(ctx: AppContext, id: string): string {
  return `${ctx.config.baseUrl}/$export-status/${id}`;
}

/** Types that may be asked for without _type: those with data, within the compartment for patient exports. */
async function candidateTypes(ctx: AppContext, level: ExportLevel): Promise<string[]> {
  const live = new Set(await ctx.store.backend.listCollections());
  return ctx.registry.resourceTypes.filter(
    (t) => live.has(t) && (level === 'system' || t === 'Patient' || ctx.registry.patientCompartment.has(t)),
  );
}

/** One TypePlan per exported type, every filter compiled now (with the caller's visibility). */
async function planTypes(
  ctx: AppContext,
  req: Request,
  policy: AccessPolicy,
  level: ExportLevel,
  params: ExportParams,
  transactionTime: string,
): Promise<TypePlan[]> {
  let types: string[];
  if (params.types) {
    for (const t of params.types) {
      if (level !== 'system' && t !== 'Patient' && !ctx.registry.patientCompartment.has(t))
        throw badRequest(`${t} is not in the Patient compartment; a ${level} level export cannot include it`);
      policy.require(t, 'r');
    }
    types = params.types;
  } else {
    types = (await candidateTypes(ctx, level)).filter((t) => permits(policy, t, 'r'));
  }
  if (params.deidentify) types = types.filter((t) => !EXCLUDED_TYPES.has(t));
  const searcher = ctx.searcher;
  if (!(searcher instanceof SearchService)) throw new Error('bulk export needs the SearchService');
  const lenient = parsePrefer(req).handling === 'lenient';
  const plans: TypePlan[] = [];
  for (const type of types) {
    const parts: Filter[] = [{ deleted: false }, { lastUpdated: { $lte: transactionTime } }];
    if (params.since) parts.push({ lastUpdated: { $gt: params.since } });
    if (level !== 'system' || params.patients) {
      const c = compartmentFilter(ctx.registry, type, params.patients);
      if (!c) continue;
      parts.push(c);
    }
    const queries = params.typeFilters.get(type);
    if (queries) {
      const ors: Filter[] = [];
      for (const q of queries) {
        const request = parseSearchRequest(type, [...new URLSearchParams(q)], ctx.registry, {
          strict: !lenient,
        });
        ors.push((await searcher.compile(request, policy)).filter);
      }
      parts.push(ors.length === 1 ? (ors[0] as Filter) : { $or: ors });
    }
    const filter = restrict({ $and: parts }, policy, type, 's');
    if (!filter) continue;
    const elements = [...(params.elements.get('') ?? []), ...(params.elements.get(type) ?? [])];
    const plan: TypePlan = { type, filter: JSON.stringify(filter) };
    if (params.elements.size > 0) plan.elements = elements.length > 0 ? elements : ['id'];
    plans.push(plan);
  }
  return plans;
}

/** GET|POST [base]/$export, [base]/Patient/$export, [base]/Group/[id]/$export (bulk data IG v2). */
export function kickOff(level: ExportLevel) {
  return async (ctx: AppContext, req: Request, res: Response): Promise<void> => {
    const groupId = level === 'group' ? checkId(req.params.id as string) : undefined;
    noteAccess(res, {
      interaction: 'operation',
      operation: 'export',
      resourceType: level === 'group' ? 'Group' : level === 'patient' ? 'Patient' : undefined,
      id: groupId,
      query: req.originalUrl.includes('?')
        ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1)
        : undefined,
    });
    if (!parsePrefer(req).respondAsync) throw badRequest('$export needs the header Prefer: respond-async');
    const policy = accessOf(res);
    const scopeLevel = policy.agent.scopeLevel;
    if (level === 'system' && scopeLevel !== undefined && scopeLevel !== 'system')
      throw new FhirError(403, [issue('forbidden', 'A system level export needs system/ scopes')]);
    const params = parseExportParams(await readExportPairs(req, ctx.config), ctx.registry, level);
    if (groupId) {
      const members = await groupMembers(ctx, policy, groupId);
      params.patients = params.patients ? params.patients.filter((p) => members.includes(p)) : members;
    }
    const runner = await admitExportJob(ctx);
    const transactionTime = new Date().toISOString();
    const plans = await planTypes(ctx, req, policy, level, params, transactionTime);
    if (params.patients) noteAccess(res, { patients: params.patients });
    const job = await startExportJob(
      runner,
      {
        owner: policy.agent.who,
        request: `${ctx.config.baseUrl}${req.originalUrl.slice(ctx.config.mountPath.replace(/\/$/, '').length)}`,
        transactionTime,
        createdAt: new Date().toISOString(),
        plans,
      },
      params.deidentify !== undefined,
    );
    res.set('Content-Location', statusUrl(ctx, job._id));
    sendJson(req, res, 202, {
      resourceType: 'OperationOutcome',
      issue: [
        issue(
          'informational',
          `Export job ${job._id} accepted; poll ${statusUrl(ctx, job._id)}`,
          'information',
        ),
      ],
    });
  };
}

function manifest(ctx: AppContext, job: BulkJob): Record<string, unknown> {
  const url = (name: string): string => `${ctx.config.baseUrl}/$export-file/${job._id}/${name}`;
  const m: Record<string, unknown> = {
    transactionTime: job.transactionTime,
    request: job.request,
    requiresAccessToken: ctx.config.auth.mode !== 'none',
    output: job.files.map((f) => ({ type: f.type, url: url(f.name), count: f.count })),
    error: job.errors.length > 0 ? [{ type: 'OperationOutcome', url: url('errors.ndjson') }] : [],
  };
  if (job.deidentify) m.extension = { deidentify: job.deidentify.mode };
  return m;
}

/** GET [base]/$export-status/[id]: 202 while running, 200 with the manifest, 500 when it failed. */
export async function exportStatus(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const job = await ownExportJob(ctx, res, req.params.id as string, false);
  if (job.status === 'queued' || job.status === 'running') {
    setProgressHeaders(res, job);
    res.status(202).end();
    return;
  }
  if (job.status === 'failed') {
    const last = job.errors.at(-1);
    sendJson(
      req,
      res,
      500,
      last ?? { resourceType: 'OperationOutcome', issue: [issue('exception', 'The export failed')] },
    );
    return;
  }
  noteAccess(res, { count: job.written });
  res
    .status(200)
    .type('application/json')
    .send(JSON.stringify(manifest(ctx, job)));
}

/** DELETE [base]/$export-status/[id]: stops the job and removes its files (202). */
export async function exportCancel(ctx: AppContext, req: Request, res: Response): Promise<void> {
  await cancelExportJob(ctx, req, res, false);
}

/** GET [base]/$export-file/[id]/[name]: one NDJSON output file, to the agent that started the job. */
export async function exportFile(ctx: AppContext, req: Request, res: Response): Promise<void> {
  const name = req.params.name as string;
  const job = await ownExportJob(ctx, res, req.params.id as string, false);
  const known = job.files.some((f) => f.name === name) || (name === 'errors.ndjson' && job.errors.length > 0);
  if (job.status !== 'completed' || !isOutputName(name) || !known)
    throw notFound(`No output file ${name.slice(0, 80)} in export job ${job._id}`);
  await sendExportFile(
    ctx,
    req,
    res,
    job,
    { name, count: job.files.find((f) => f.name === name)?.count },
    'application/fhir+ndjson',
  );
}

/** Output files are NDJSON: the JSON-only content negotiation does not apply to them. */
export function isExportFileRequest(req: Request): boolean {
  return req.path.startsWith('/$export-file/');
}
