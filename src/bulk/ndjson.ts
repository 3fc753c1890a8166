import fs from 'node:fs';
import path from 'node:path';
import type { OutputFile } from './job';

/**
 * Job ids are UUIDs; file names are `<Type>.<n>.ndjson`, `errors.ndjson` or, for view exports,
 * `<view name>.<n>.csv|ndjson` (names are sql-names). Nothing else reaches a path.
 */
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const FILE_NAME = /^(?:[A-Z][A-Za-z]{1,63}\.\d{1,6}|errors)\.ndjson$/;
const VIEW_FILE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}\.\d{1,6}\.(?:csv|ndjson)$/;

export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

export function isOutputName(name: string): boolean {
  return FILE_NAME.test(name) || VIEW_FILE_NAME.test(name);
}

/** The output files of one job live in BULK_DIR/<job id>/. */
export class OutputDir {
  constructor(private readonly root: string) {}

  dirOf(jobId: string): string {
    if (!isJobId(jobId)) throw new Error(`not a job id: ${jobId}`);
    return path.join(this.root, jobId);
  }

  pathOf(jobId: string, name: string): string {
    if (!isOutputName(name)) throw new Error(`not an output file name: ${name}`);
    return path.join(this.dirOf(jobId), name);
  }

  async create(jobId: string): Promise<void> {
    await fs.promises.mkdir(this.dirOf(jobId), { recursive: true });
  }

  async append(jobId: string, name: string, text: string): Promise<void> {
    await fs.promises.appendFile(this.pathOf(jobId, name), text);
  }

  async write(jobId: string, name: string, text: string): Promise<void> {
    await fs.promises.writeFile(this.pathOf(jobId, name), text);
  }

  /**
   * Brings the folder back to the last checkpoint: recorded files are cut to their recorded size
   * (dropping lines written after it), unrecorded ones are removed.
   */
  async restore(jobId: string, files: readonly OutputFile[]): Promise<void> {
    await this.create(jobId);
    const known = new Map(files.map((f) => [f.name, f]));
    for (const name of await fs.promises.readdir(this.dirOf(jobId))) {
      const f = known.get(name);
      const p = path.join(this.dirOf(jobId), name);
      if (!f) await fs.promises.rm(p, { force: true });
      else if ((await fs.promises.stat(p)).size !== f.bytes) await fs.promises.truncate(p, f.bytes);
    }
    for (const f of files) {
      // A recorded file that vanished cannot be rebuilt from the cursor: fail loudly.
      if (!fs.existsSync(this.pathOf(jobId, f.name))) throw new Error(`output file ${f.name} is missing`);
    }
  }

  async remove(jobId: string): Promise<void> {
    await fs.promises.rm(this.dirOf(jobId), { recursive: true, force: true });
  }
}
