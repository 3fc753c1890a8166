import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpClient } from './http-client';

/** Lines written to stderr, never stdout, so that `--json` output stays parseable. */
export type Log = (message: string) => void;

export interface ServerOptions {
  rootDir: string;
  log: Log;
  /** Forward the server's own log lines to stderr as they come. */
  forwardOutput?: boolean;
  readyTimeoutMs?: number;
  /** Extra environment for the server (e.g. AUTH=smart and its SMART_* settings). */
  env?: Record<string, string>;
}

export interface RunningServer {
  readonly pid: number;
  readonly baseUrl: URL;
  readonly dataDir: string;
  /** From spawn to the first 200 of GET /fhir/metadata. */
  readonly startupMs: number;
  /** Peak resident set size (VmHWM) so far; undefined where /proc is not available. */
  peakRssBytes(): Promise<number | undefined>;
  /** SIGTERM, then SIGKILL if the server does not exit in time. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server if needed and removes DATA_DIR. Idempotent. */
  dispose(): Promise<void>;
  /** For signal handlers: kill and remove without waiting. */
  disposeSync(): void;
  /**
   * Why the server exited ("exit code 1", "SIGKILL"), waiting up to `graceMs` for the exit to be
   * noticed (a reset connection often arrives first); undefined while it runs.
   */
  exitStatus(graceMs?: number): Promise<string | undefined>;
  /** The server's last output lines, to explain a failure. */
  outputTail(): string;
}

const OUTPUT_TAIL_LINES = 40;

async function newestMtimeMs(entry: string): Promise<number> {
  const info = await stat(entry);
  if (!info.isDirectory()) return info.mtimeMs;
  const children = await readdir(entry);
  const times = await Promise.all(children.map((child) => newestMtimeMs(path.join(entry, child))));
  return Math.max(info.mtimeMs, ...times);
}

/**
 * Returns the path of dist/main.js, compiling first (the repository's own tsc with
 * tsconfig.build.json) when it is missing or older than anything under src/ or the tsconfigs.
 */
export async function ensureBuilt(rootDir: string, log: Log): Promise<string> {
  const mainJs = path.join(rootDir, 'dist', 'main.js');
  const sources = ['src', 'tsconfig.json', 'tsconfig.build.json'].map((p) => path.join(rootDir, p));
  if (!existsSync(path.join(rootDir, 'src', 'main.ts')) && !existsSync(mainJs)) {
    throw new Error('neither src/main.ts nor dist/main.js exists: nothing to benchmark yet');
  }
  const sourceMtime = Math.max(...(await Promise.all(sources.filter(existsSync).map(newestMtimeMs))));
  if (existsSync(mainJs) && (await stat(mainJs)).mtimeMs >= sourceMtime) return mainJs;

  log('building: tsc -p tsconfig.build.json');
  const tsc = path.join(rootDir, 'node_modules', 'typescript', 'bin', 'tsc');
  const code = await new Promise<number | null>((resolve, reject) => {
    // The compiler's output goes to stderr: stdout belongs to the benchmark's report.
    const child = spawn(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
      cwd: rootDir,
      stdio: ['ignore', process.stderr, process.stderr],
    });
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0 || !existsSync(mainJs)) throw new Error(`build failed (tsc exit code ${String(code)})`);
  return mainJs;
}

/** A port that was free a moment ago; the server binds it right after. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export async function readPeakRssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux, whatever the kernel's HZ). */
const USER_HZ = 100;

/** CPU time (user + system, ms) the process has used so far, or undefined where /proc is missing. */
export function readCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / USER_HZ : undefined;
  } catch {
    return undefined;
  }
}

/** Apparent size (sum of file sizes) of everything under a directory. */
export async function directorySize(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = await directorySize(full);
      bytes += sub.bytes;
      files += sub.files;
    } else if (entry.isFile()) {
      bytes += (await stat(full)).size;
      files += 1;
    }
  }
  return { bytes, files };
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts `node dist/main.js` on a free loopback port with a fresh temporary DATA_DIR and
 * LOG_LEVEL=warn, and resolves once GET /fhir/metadata answers 200. MONGODB_URI and MONGODB_DB are
 * removed from the child's environment: the benchmark measures the embedded store, whose DATA_DIR
 * size it reports. NODE_ENV=production, as in the container image.
 */
export async function startServer(mainJs: string, options: ServerOptions): Promise<RunningServer> {
  const { rootDir, log } = options;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const port = await freePort();
  const baseUrl = new URL(`http://127.0.0.1:${port}/fhir`);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'fhir-bench-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    BASE_URL: baseUrl.href,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // Production refuses AUTH=none unless told; the default bench measures the open server.
    ALLOW_NO_AUTH: 'true',
    ...options.env,
  };
  delete env.MONGODB_URI;
  delete env.MONGODB_DB;

  const started = performance.now();
  // BENCH_SERVER_NODE_ARGS passes flags to the server process only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...nodeArgs, mainJs], {
    cwd: rootDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const keep = (chunk: Buffer): void => {
    if (options.forwardOutput === true) process.stderr.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = signal ?? `exit code ${String(code)}`));
  const spawnError = new Promise<never>((_, reject) => child.on('error', reject));
  spawnError.catch(() => undefined);

  let stopped = false;
  let disposed = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    if (!(await waitForExit(child, 15_000))) {
      log('server did not exit within 15 s of SIGTERM; killing it');
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    } else if (exited !== 'exit code 0' && exited !== 'SIGTERM') {
      log(`server shut down with ${exited}; its last output:\n${tail.join('\n')}`);
    }
  };
  const server: RunningServer = {
    pid: child.pid ?? -1,
    baseUrl,
    dataDir,
    startupMs: 0,
    peakRssBytes: () => readPeakRssBytes(child.pid ?? -1),
    stop,
    dispose: async () => {
      if (disposed) return;
      await stop();
      disposed = true;
      await rm(dataDir, { recursive: true, force: true });
    },
    disposeSync: () => {
      if (disposed) return;
      disposed = true;
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
    exitStatus: async (graceMs = 0) => {
      await waitForExit(child, graceMs);
      return exited;
    },
    outputTail: () => tail.join('\n'),
  };

  const probe = new HttpClient(baseUrl, 1, 2_000);
  try {
    for (;;) {
      if (exited !== undefined) {
        throw new Error(
          `server exited before it was ready (${exited}); its last output:\n${tail.join('\n')}`,
        );
      }
      if (performance.now() - started > readyTimeoutMs) {
        throw new Error(`server not ready after ${readyTimeoutMs} ms; its last output:\n${tail.join('\n')}`);
      }
      const ok = await Promise.race([
        probe.request('GET', 'metadata').then(
          (res) => res.status === 200,
          () => false,
        ),
        spawnError,
      ]);
      if (ok) break;
      await sleep(100);
    }
  } catch (error) {
    await server.dispose();
    throw error;
  } finally {
    probe.close();
  }
  const startupMs = performance.now() - started;
  log(
    `server pid ${server.pid} ready at ${baseUrl.href} in ${startupMs.toFixed(0)} ms (DATA_DIR ${dataDir})`,
  );
  return { ...server, startupMs };
}
