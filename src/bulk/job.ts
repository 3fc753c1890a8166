import type { OperationOutcome } from 'fhir/r4';
import type { Backend, Collection, Filter } from '../store/backend';

export type JobStatus = 'queued' | 'running' | 'completed' | 'failed';

/**
 * One output file of a job: `count` resources (or view rows) in `bytes` bytes (the last
 * checkpoint). A view's file names its view's output name in `view`.
 */
export interface OutputFile {
  type: string;
  name: string;
  count: number;
  bytes: number;
  view?: string;
}

/** The row formats a ViewDefinition export writes. */
export type ViewFileFormat = 'csv' | 'ndjson';

/**
 * A ViewDefinition of a ViewDefinition/$export job (operations/view-export.ts): its rows over the
 * plan's resources go to `<name>.<n>.<format>` files instead of the resources themselves.
 */
export interface ViewPlan {
  /** The output name (sql-name), unique within the job. */
  name: string;
  /** The ViewDefinition as JSON, fixed at kick-off: a later change of a stored view does not alter the job. */
  definition: string;
  format: ViewFileFormat;
}

/** What to export for one resource type, fixed at kick-off. */
export interface TypePlan {
  type: string;
  /**
   * The MongoDB filter over current documents of the type (JSON text: the caller's visibility,
   * the patients, _since, _typeFilter and the transaction time, compiled once at kick-off, so a
   * resumed job exports exactly what the original one would have).
   */
  filter: string;
  /** Top-level elements kept (_elements), undefined for all. */
  elements?: string[];
  /** Write this view's rows rather than the resources. */
  view?: ViewPlan;
}

/**
 * A bulk export job as stored in the `bulk_jobs` collection (not a FHIR resource). Every chunk
 * written moves the cursor and the output sizes in one update, so after a crash or a restart the
 * runner truncates the open file to the recorded size and goes on from the cursor.
 */
export interface BulkJob {
  _id: string;
  /** 'view' for ViewDefinition/$export jobs; absent for bulk data $export jobs. */
  kind?: 'view';
  /** ViewDefinition/$export: the client's clientTrackingId, echoed in the status. */
  clientTrackingId?: string;
  status: JobStatus;
  /** The agent (`who`) that started it; only that agent may see the status, cancel or download. */
  owner: string;
  /** The kick-off URL, as the manifest's `request`. */
  request: string;
  /** The instant the export is consistent with: nothing changed later is exported. */
  transactionTime: string;
  createdAt: string;
  updatedAt: string;
  completedAt?: string;
  plans: TypePlan[];
  /** _deidentify=safe-harbor: the per-job HMAC key (hex) for pseudonyms. Removed when the job ends. */
  deidentify?: { mode: 'safe-harbor'; key: string };
  /** Index into plans of the type being exported; plans.length when all are done. */
  typeIndex: number;
  /** The last resource id written of plans[typeIndex] (resources go in _id order). */
  lastId?: string;
  /** Resources written so far, over all types. */
  written: number;
  files: OutputFile[];
  /** Problems met while exporting (manifest `error`), and the reason of a failure. */
  errors: OperationOutcome[];
}

const JOBS_COLLECTION = 'bulk_jobs';

/** The jobs collection with the few queries the runner and the handlers need. */
export class JobStore {
  private readonly jobs: Collection<BulkJob>;

  constructor(backend: Backend) {
    this.jobs = backend.collection<BulkJob>(JOBS_COLLECTION);
  }

  /** A mutable copy (the embedded engine hands out frozen documents). */
  async get(id: string): Promise<BulkJob | null> {
    const job = await this.jobs.findOne({ _id: id });
    return job ? structuredClone(job) : null;
  }

  // Copies in and out: the embedded engine freezes what it stores, and the runner mutates its job.
  insert(job: BulkJob): Promise<void> {
    return this.jobs.insertOne(structuredClone(job));
  }

  async save(job: BulkJob): Promise<void> {
    await this.jobs.replaceOne({ _id: job._id }, structuredClone(job));
  }

  async remove(id: string): Promise<void> {
    await this.jobs.deleteOne({ _id: id });
  }

  /** Jobs that have not finished (queued or running), oldest first. */
  active(): Promise<BulkJob[]> {
    const filter: Filter = { status: { $in: ['queued', 'running'] } };
    return this.jobs.find(filter, { sort: { createdAt: 1, _id: 1 } });
  }

  countActive(): Promise<number> {
    return this.jobs.countDocuments({ status: { $in: ['queued', 'running'] } });
  }
}
