/**
 * Bulk loader: `npm run import -- [options] <files or folders>`.
 *
 * Loads batch and transaction Bundles (.json, .json.gz) and NDJSON files (.ndjson, .ndjson.gz: one
 * resource per line, sent as batch Bundles of --chunk lines; a line with an id is a PUT, one
 * without is a POST) through the same code as POST [base] (interactions/bundle.ts): in-process on
 * DATA_DIR / MONGODB_URI by default, or over HTTP to a running server with --url.
 *
 * Resumable: a small state file records finished files (and, for NDJSON, finished lines); a
 * rerun skips them. Synthea's shared provider Bundles (hospitalInformation*, practitionerInformation*,
 * or any file whose name starts with `0-`) load first, one at a time, because patient Bundles
 * refer to them by conditional references.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import type { Bundle, BundleEntry, OperationOutcomeIssue } from 'fhir/r4';
import pino from 'pino';
import { openAccess } from '../src/auth/policy';
import { loadConfig } from '../src/config';
import { FhirError } from '../src/fhir/errors';
import { processBundle } from '../src/interactions/bundle';
import type { AppContext } from '../src/interactions/context';

const USAGE = `usage: npm run import -- [options] <files or folders>

  --url URL          POST to a running server's base URL instead of loading in-process
  --concurrency N    files loaded at once after the provider Bundles (default 2)
  --chunk N          NDJSON lines per batch Bundle (default 500)
  --state FILE       resume state (default: DATA_DIR/import-state.json in-process, ./import-state.json with --url)
  --restart          ignore the state file and load everything again
  --quiet            no progress bar`;

/** Sends one Bundle and returns the response Bundle; rejects with a FhirError when it fails as a whole. */
export type Sink = (bundle: Bundle) => Promise<Bundle>;

export interface ImportError {
  file: string;
  /** NDJSON: the line (1-based); Bundles: undefined for the whole file. */
  line?: number;
  /** Bundles: the entry index. */
  entry?: number;
  status?: number;
  message: string;
}

export interface ImportSummary {
  files: number;
  skipped: number;
  resources: Record<string, number>;
  errors: ImportError[];
  seconds: number;
}

export interface ImportOptions {
  inputs: string[];
  sink: Sink;
  statePath: string;
  concurrency?: number;
  chunk?: number;
  restart?: boolean;
  progress?: boolean;
  /** Stop taking new work (SIGINT); what is in flight finishes and is recorded. */
  stopped?: () => boolean;
}

interface FileState {
  size: number;
  mtimeMs: number;
  done: boolean;
  /** NDJSON: lines loaded so far. */
  lines?: number;
}

interface State {
  files: Record<string, FileState>;
}

const PATTERN = /\.(json|ndjson)(\.gz)?$/;

export function isProviderFile(file: string): boolean {
  return /^(0-|hospitalInformation|practitionerInformation)/.test(path.basename(file));
}

/** The files to load, providers first, each group in name order. */
export function collectFiles(inputs: string[]): string[] {
  const out: string[] = [];
  const visit = (p: string): void => {
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) visit(path.join(p, name));
    } else if (PATTERN.test(p)) out.push(path.resolve(p));
  };
  for (const i of inputs) visit(i);
  const key = (f: string): string => `${isProviderFile(f) ? 0 : 1}${path.basename(f)}`;
  return [...new Set(out)].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function readText(file: string): string {
  const raw = fs.readFileSync(file);
  return (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
}

function loadState(file: string, restart: boolean): State {
  if (restart || !fs.existsSync(file)) return { files: {} };
  try {
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as State;
    return s && typeof s.files === 'object' ? s : { files: {} };
  } catch {
    return { files: {} };
  }
}

function saveState(file: string, state: State): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state));
  fs.renameSync(tmp, file);
}

function messageOf(e: unknown): { status?: number; message: string } {
  if (e instanceof FhirError) return { status: e.status, message: e.message };
  return { message: e instanceof Error ? e.message : String(e) };
}

/** Loads the inputs; never throws for bad data (errors are in the summary). */
export async function runImport(o: ImportOptions): Promise<ImportSummary> {
  const started = Date.now();
  const files = collectFiles(o.inputs);
  const state = loadState(o.statePath, o.restart ?? false);
  const summary: ImportSummary = { files: files.length, skipped: 0, resources: {}, errors: [], seconds: 0 };
  const stats = files.map((f) => fs.statSync(f));
  const totalBytes = stats.reduce((n, s) => n + s.size, 0);
  let doneBytes = 0;
  let loaded = 0;
  const progress = new Progress(o.progress ?? false, totalBytes);
  const fresh = (f: string, i: number): FileState => {
    const st = stats[i] as fs.Stats;
    const prev = state.files[f];
    if (prev && prev.size === st.size && prev.mtimeMs === st.mtimeMs) return prev;
    return (state.files[f] = { size: st.size, mtimeMs: st.mtimeMs, done: false });
  };
  const count = (response: Bundle, file: string, lineOf?: (i: number) => number): void => {
    (response.entry ?? []).forEach((e: BundleEntry, i) => {
      const status = Number(e.response?.status.slice(0, 3));
      if (status >= 400 || !Number.isFinite(status)) {
        const diag = e.response?.outcome as { issue?: Array<{ diagnostics?: string }> } | undefined;
        const err: ImportError = { file, status, message: diag?.issue?.[0]?.diagnostics ?? 'failed' };
        if (lineOf) err.line = lineOf(i);
        else err.entry = i;
        summary.errors.push(err);
        return;
      }
      const type = /(?:^|\/)([A-Z][A-Za-z]+)\/[^/]+(?:\/_history\/[^/]+)?$/.exec(
        e.response?.location ?? '',
      )?.[1];
      if (type) {
        summary.resources[type] = (summary.resources[type] ?? 0) + 1;
        loaded++;
      }
    });
    progress.update(doneBytes, loaded);
  };
  const loadFile = async (f: string, i: number): Promise<void> => {
    const fs0 = fresh(f, i);
    const size = (stats[i] as fs.Stats).size;
    if (fs0.done) {
      summary.skipped++;
      doneBytes += size;
      return;
    }
    if (/\.ndjson(\.gz)?$/.test(f)) {
      if (!(await loadNdjson(f, fs0))) return; // stopped part-way: the state has the lines done
    } else await loadBundle(f);
    fs0.done = true;
    saveState(o.statePath, state);
    doneBytes += size;
    progress.update(doneBytes, loaded);
  };
  const loadBundle = async (f: string): Promise<void> => {
    let bundle: Bundle;
    try {
      bundle = JSON.parse(readText(f)) as Bundle;
    } catch (e) {
      summary.errors.push({ file: f, message: `not JSON: ${messageOf(e).message}` });
      return;
    }
    if (bundle.resourceType !== 'Bundle' || (bundle.type !== 'transaction' && bundle.type !== 'batch')) {
      summary.errors.push({ file: f, message: 'not a batch or transaction Bundle' });
      return;
    }
    try {
      count(await o.sink(bundle), f);
    } catch (e) {
      summary.errors.push({ file: f, ...messageOf(e) });
    }
  };
  const loadNdjson = async (f: string, st: FileState): Promise<boolean> => {
    const skip = st.lines ?? 0;
    let input: NodeJS.ReadableStream = fs.createReadStream(f);
    if (f.endsWith('.gz')) input = input.pipe(zlib.createGunzip());
    let lineNo = 0;
    let entries: BundleEntry[] = [];
    let lines: number[] = [];
    const flush = async (): Promise<void> => {
      if (entries.length > 0) {
        const sent = lines;
        try {
          const r = await o.sink({ resourceType: 'Bundle', type: 'batch', entry: entries });
          count(r, f, (k) => sent[k] ?? 0);
        } catch (e) {
          summary.errors.push({ file: f, line: sent[0], ...messageOf(e) });
        }
      }
      st.lines = lineNo;
      saveState(o.statePath, state);
      entries = [];
      lines = [];
    };
    for await (const text of readline.createInterface({ input, crlfDelay: Infinity })) {
      lineNo++;
      if (lineNo <= skip || text.trim() === '') continue;
      try {
        const r = JSON.parse(text) as { resourceType?: unknown; id?: unknown };
        if (typeof r.resourceType !== 'string') throw new Error('no resourceType');
        const url = typeof r.id === 'string' ? `${r.resourceType}/${r.id}` : r.resourceType;
        entries.push({
          resource: r as never,
          request: { method: typeof r.id === 'string' ? 'PUT' : 'POST', url },
        });
        lines.push(lineNo);
      } catch (e) {
        summary.errors.push({ file: f, line: lineNo, message: `not a resource: ${messageOf(e).message}` });
      }
      if (entries.length >= (o.chunk ?? 500)) {
        await flush();
        if (o.stopped?.()) return false;
      }
    }
    await flush();
    return true;
  };

  // Providers first, one at a time (patients refer to them); then the rest concurrently.
  let next = 0;
  while (next < files.length && isProviderFile(files[next] as string) && !o.stopped?.()) {
    await loadFile(files[next] as string, next);
    next++;
  }
  const worker = async (): Promise<void> => {
    while (next < files.length && !o.stopped?.()) {
      const i = next++;
      await loadFile(files[i] as string, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 2) }, worker));
  progress.done(doneBytes, loaded);
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

/** A one-line progress bar on stderr (redrawn on a terminal, a line every 5 s otherwise). */
class Progress {
  private last = 0;
  private readonly started = Date.now();
  constructor(
    private readonly enabled: boolean,
    private readonly total: number,
  ) {}

  update(bytes: number, resources: number, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    const tty = process.stderr.isTTY;
    if (!force && now - this.last < (tty ? 200 : 5000)) return;
    this.last = now;
    const frac = this.total > 0 ? Math.min(1, bytes / this.total) : 1;
    const width = 30;
    const bar = '='.repeat(Math.round(frac * width)).padEnd(width, ' ');
    const rate = resources / Math.max(0.001, (now - this.started) / 1000);
    const line = `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}%  ${resources} resources  ${rate.toFixed(0)}/s`;
    process.stderr.write(tty ? `\r${line}` : `${line}\n`);
  }

  done(bytes: number, resources: number): void {
    this.update(bytes, resources, true);
    if (this.enabled && process.stderr.isTTY) process.stderr.write('\n');
  }
}

/** POST [base] over HTTP. */
export function httpSink(baseUrl: string): Sink {
  return async (bundle) => {
    const r = await fetch(baseUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', prefer: 'return=minimal' },
      body: JSON.stringify(bundle),
    });
    const body = (await r.json()) as Bundle & { issue?: OperationOutcomeIssue[] };
    if (r.status !== 200 || body.resourceType !== 'Bundle')
      throw new FhirError(
        r.status,
        body.issue ?? [{ severity: 'error', code: 'processing', diagnostics: `HTTP ${r.status}` }],
      );
    return body;
  };
}

/** The bundle service in this process (the same code as POST [base]). */
export function inProcessSink(ctx: AppContext): Sink {
  const policy = openAccess('import');
  return async (bundle) => (await processBundle(ctx, bundle, { policy, prefer: 'minimal' })).bundle;
}

export function formatSummary(s: ImportSummary): string {
  const total = Object.values(s.resources).reduce((a, b) => a + b, 0);
  const lines = [
    `${total} resources from ${s.files - s.skipped} files in ${s.seconds.toFixed(1)} s ` +
      `(${(total / Math.max(s.seconds, 0.001)).toFixed(0)}/s)` +
      (s.skipped > 0 ? `; ${s.skipped} files already loaded (state file) were skipped` : ''),
    ...Object.entries(s.resources)
      .sort((a, b) => b[1] - a[1])
      .map(([t, n]) => `  ${t.padEnd(32)} ${String(n).padStart(8)}`),
  ];
  if (s.errors.length > 0) {
    lines.push(`${s.errors.length} errors:`);
    for (const e of s.errors.slice(0, 200)) {
      const where = e.line !== undefined ? `:${e.line}` : e.entry !== undefined ? ` entry ${e.entry}` : '';
      lines.push(`  ${e.file}${where}: ${e.status ?? ''} ${e.message}`.replace(/ {2,}/g, ' '));
    }
    if (s.errors.length > 200) lines.push(`  ... and ${s.errors.length - 200} more`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      concurrency: { type: 'string' },
      chunk: { type: 'string' },
      state: { type: 'string' },
      restart: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  let stop = false;
  process.once('SIGINT', () => {
    stop = true;
    process.stderr.write('\nstopping after the work in flight; rerun to resume\n');
  });
  const common = {
    inputs: positionals,
    concurrency: Number(values.concurrency ?? 2),
    chunk: Number(values.chunk ?? 500),
    restart: values.restart,
    progress: !values.quiet,
    stopped: () => stop,
  };
  let summary: ImportSummary;
  if (values.url) {
    const statePath = values.state ?? path.resolve('import-state.json');
    summary = await runImport({ ...common, sink: httpSink(values.url.replace(/\/$/, '')), statePath });
  } else {
    const config = loadConfig();
    const { buildContext } = await import('../src/main');
    const ctx = await buildContext(config, pino({ level: 'warn' }, pino.destination(2)));
    const statePath = values.state ?? path.join(config.dataDir, 'import-state.json');
    try {
      summary = await runImport({ ...common, sink: inProcessSink(ctx), statePath });
    } finally {
      await ctx.store.backend.close();
    }
  }
  console.log(formatSummary(summary));
  return summary.errors.length > 0 ? 1 : stop ? 130 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`import failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
