import type { OperationOutcome, Resource } from 'fhir/r4';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { subset } from '../fhir/summary';
import { Deidentifier, Pseudonymizer } from '../operations/deidentify';
import type { Filter } from '../store/backend';
import type { CurrentDoc } from '../store/documents';
import type { ResourceStore } from '../store/resource-store';
import { parseViewDefinition } from '../views/definition';
import { headerLine, rowLine } from '../views/output';
import { compileView } from '../views/runner';
import { JobStore, type BulkJob, type OutputFile, type TypePlan } from './job';
import { OutputDir } from './ndjson';

/** How one plan's resources become lines of its files: the resources as NDJSON, or a view's rows. */
interface PlanOutput {
  /** Which files are this plan's: an OutputFile's `view ?? type`. */
  key: string;
  view?: string;
  fileName(n: number): string;
  /** Written first in every file (a CSV header row), or ''. */
  header: string;
  lines(resource: Resource): string[];
}

const keyOf = (f: OutputFile): string => f.view ?? f.type;

export interface RunnerDeps {
  config: Config;
  registry: DefinitionsRegistry;
  store: ResourceStore;
  log: Logger;
}

export interface RunnerOptions {
  /** Called after every checkpoint (tests use it to stop a job half way). */
  afterChunk?: (job: BulkJob) => void;
}

const yieldToRequests = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Runs bulk export jobs in the background. Each job streams the current documents of one type
 * after another in `_id` order, writes them to NDJSON in chunks of BULK_CHUNK resources, records
 * a checkpoint (cursor and file sizes) in its job document, and yields to the event loop
 * (setImmediate) so interactive requests are served between chunks. BULK_CONCURRENCY jobs make
 * progress at once; the others wait in a queue. Jobs that were queued or running when the
 * process stopped (gracefully or not) are resumed from their checkpoint by start().
 */
export class BulkRunner {
  readonly jobs: JobStore;
  readonly files: OutputDir;
  private readonly queue: string[] = [];
  private readonly workers = new Map<string, Promise<void>>();
  private readonly cancelled = new Set<string>();
  private readonly waiters = new Map<string, Array<() => void>>();
  private stopping = false;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly options: RunnerOptions = {},
  ) {
    this.jobs = new JobStore(deps.store.backend);
    this.files = new OutputDir(deps.config.bulk.dir);
  }

  /** Resumes every job that had not finished. */
  async start(): Promise<void> {
    this.stopping = false;
    for (const job of await this.jobs.active()) this.enqueue(job._id);
  }

  /** Stops after the chunk in progress; unfinished jobs stay in the store and resume on start(). */
  async stop(): Promise<void> {
    this.stopping = true;
    const queued = this.queue.splice(0);
    for (const id of queued) this.settle(id);
    await Promise.all(this.workers.values());
  }

  enqueue(id: string): void {
    if (this.stopping || this.workers.has(id) || this.queue.includes(id)) return;
    this.queue.push(id);
    this.pump();
  }

  /** Resolves when the job is no longer queued or running here (finished, failed, cancelled or stopped). */
  settled(id: string): Promise<void> {
    if (!this.workers.has(id) && !this.queue.includes(id)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
    });
  }

  /** Stops the job, removes its files and its document. */
  async cancel(id: string): Promise<void> {
    this.cancelled.add(id);
    const at = this.queue.indexOf(id);
    if (at >= 0) {
      this.queue.splice(at, 1);
      this.settle(id);
    }
    try {
      await this.workers.get(id);
      await this.files.remove(id);
      await this.jobs.remove(id);
    } finally {
      this.cancelled.delete(id);
    }
  }

  private settle(id: string): void {
    for (const resolve of this.waiters.get(id) ?? []) resolve();
    this.waiters.delete(id);
  }

  private pump(): void {
    while (!this.stopping && this.workers.size < this.deps.config.bulk.concurrency && this.queue.length > 0) {
      const id = this.queue.shift() as string;
      const worker = this.run(id)
        .catch((e: unknown) => this.deps.log.error({ err: e, job: id }, 'bulk export job crashed'))
        .finally(() => {
          this.workers.delete(id);
          this.settle(id);
          this.pump();
        });
      this.workers.set(id, worker);
    }
  }

  private halted(id: string): boolean {
    return this.stopping || this.cancelled.has(id);
  }

  private async run(id: string): Promise<void> {
    await yieldToRequests();
    const job = await this.jobs.get(id);
    if (!job || job.status === 'completed' || job.status === 'failed' || this.halted(id)) return;
    try {
      await this.files.restore(id, job.files);
      if (job.status !== 'running') {
        job.status = 'running';
        await this.checkpoint(job);
      }
      const transform = this.transformer(job);
      while (job.typeIndex < job.plans.length) {
        if (this.halted(id)) return;
        const done = await this.exportType(job, job.plans[job.typeIndex] as TypePlan, transform);
        if (!done) return;
        job.typeIndex += 1;
        delete job.lastId;
        await this.checkpoint(job);
      }
      await this.finish(job);
    } catch (e) {
      if (this.halted(id)) return;
      this.deps.log.error({ err: e, job: id }, 'bulk export job failed');
      job.status = 'failed';
      job.errors.push(failure(`The export failed: ${e instanceof Error ? e.message : String(e)}`));
      if (job.deidentify) job.deidentify.key = '';
      job.updatedAt = new Date().toISOString();
      await this.jobs.save(job);
    }
  }

  /** Exports one type from the cursor on; false when stopped half way. */
  private async exportType(
    job: BulkJob,
    plan: TypePlan,
    transform: (r: Resource) => Resource | null,
  ): Promise<boolean> {
    const out = this.output(plan, transform);
    let filter = JSON.parse(plan.filter) as Filter;
    if (job.lastId !== undefined) filter = { $and: [filter, { _id: { $gt: job.lastId } }] };
    const chunk = this.deps.config.bulk.chunk;
    let batch: CurrentDoc[] = [];
    for await (const doc of this.deps.store.current(plan.type).stream(filter, { sort: { _id: 1 } })) {
      batch.push(doc);
      if (batch.length < chunk) continue;
      await this.writeChunk(job, plan, batch, out);
      batch = [];
      await yieldToRequests();
      if (this.halted(job._id)) return false;
    }
    if (batch.length > 0) await this.writeChunk(job, plan, batch, out);
    // Every view gets its file, also when it has no rows (a CSV header tells the columns).
    if (plan.view && !job.files.some((f) => keyOf(f) === out.key)) {
      const file = this.newFile(job, plan, out);
      await this.files.append(job._id, file.name, out.header);
      file.bytes = Buffer.byteLength(out.header);
      await this.checkpoint(job);
    }
    return true;
  }

  private output(plan: TypePlan, transform: (r: Resource) => Resource | null): PlanOutput {
    const view = plan.view;
    if (view) {
      const compiled = compileView(parseViewDefinition(JSON.parse(view.definition)));
      return {
        key: view.name,
        view: view.name,
        fileName: (n) => `${view.name}.${n}.${view.format}`,
        header: headerLine(view.format, compiled.columns),
        lines: (resource) => {
          const r = transform(resource);
          return r ? compiled.rows(r).map((row) => rowLine(view.format, compiled.columns, row)) : [];
        },
      };
    }
    return {
      key: plan.type,
      fileName: (n) => `${plan.type}.${n}.ndjson`,
      header: '',
      lines: (resource) => {
        let r = transform(resource);
        if (!r) return [];
        if (plan.elements) r = subset(r, this.deps.registry, undefined, plan.elements);
        return [`${JSON.stringify(r)}\n`];
      },
    };
  }

  private newFile(job: BulkJob, plan: TypePlan, out: PlanOutput): OutputFile {
    const n = job.files.filter((f) => keyOf(f) === out.key).length + 1;
    const file: OutputFile = { type: plan.type, name: out.fileName(n), count: 0, bytes: 0 };
    if (out.view) file.view = out.view;
    job.files.push(file);
    return file;
  }

  private async writeChunk(job: BulkJob, plan: TypePlan, docs: CurrentDoc[], out: PlanOutput): Promise<void> {
    const { fileMaxResources, fileMaxBytes } = this.deps.config.bulk;
    const pending = new Map<OutputFile, string[]>();
    let file = job.files.at(-1);
    if (file && keyOf(file) !== out.key) file = undefined;
    let fileBytes = file?.bytes ?? 0;
    for (const doc of docs) {
      if (!doc.resource) continue;
      for (const line of out.lines(doc.resource)) {
        if (!file || file.count >= fileMaxResources || fileBytes >= fileMaxBytes) {
          file = this.newFile(job, plan, out);
          pending.set(file, out.header ? [out.header] : []);
          fileBytes = Buffer.byteLength(out.header);
        }
        const lines = pending.get(file) ?? [];
        lines.push(line);
        pending.set(file, lines);
        file.count += 1;
        fileBytes += Buffer.byteLength(line);
        job.written += 1;
      }
    }
    for (const [f, lines] of pending) {
      const text = lines.join('');
      await this.files.append(job._id, f.name, text);
      f.bytes += Buffer.byteLength(text);
    }
    const last = docs.at(-1);
    if (last) job.lastId = last._id;
    await this.checkpoint(job);
    this.options.afterChunk?.(job);
  }

  private transformer(job: BulkJob): (r: Resource) => Resource | null {
    if (!job.deidentify) return (r) => r;
    const d = new Deidentifier(new Pseudonymizer(Buffer.from(job.deidentify.key, 'hex')), {
      baseUrl: this.deps.config.baseUrl,
      referenceYear: Number(job.transactionTime.slice(0, 4)),
    });
    return (r) => d.resource(r);
  }

  private async checkpoint(job: BulkJob): Promise<void> {
    job.updatedAt = new Date().toISOString();
    await this.jobs.save(job);
  }

  private async finish(job: BulkJob): Promise<void> {
    if (job.errors.length > 0)
      await this.files.write(
        job._id,
        'errors.ndjson',
        job.errors.map((e) => `${JSON.stringify(e)}\n`).join(''),
      );
    job.status = 'completed';
    job.completedAt = new Date().toISOString();
    // The pseudonym key is needed only while writing; without it nobody can re-link this export.
    if (job.deidentify) job.deidentify.key = '';
    await this.checkpoint(job);
  }
}

function failure(diagnostics: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics }] };
}

const runners = new WeakMap<object, BulkRunner>();

/** The runner of a server context, made on first use (app routes and main.ts share it). */
export function bulkRunnerFor(deps: RunnerDeps, options?: RunnerOptions): BulkRunner {
  let r = runners.get(deps);
  if (!r) {
    r = new BulkRunner(deps, options);
    runners.set(deps, r);
  }
  return r;
}
