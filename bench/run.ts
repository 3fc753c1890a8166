/**
 * Benchmark runner: `npm run bench -- [scenario] [options]` (scenarios in bench/scenarios/).
 *
 * Starts the built server (`node dist/main.js`, compiling first when dist/ is older than src/) as a
 * child process on a free loopback port, with a fresh temporary DATA_DIR (removed afterwards) and
 * LOG_LEVEL=warn, runs the scenario over keep-alive HTTP, then reports per phase resources/s and
 * latency median / p99, and for the server its peak RSS (VmHWM) and final DATA_DIR size.
 *
 * Rounds: only phases that leave the store unchanged are repeated (in `crud`: read); the report
 * shows the median over rounds of each figure. Phases that change the store (create, update) run
 * once, because a repeat would measure a different store. Requests are checked: any unexpected
 * status aborts the run, so a fast error never passes for a fast interaction.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { HttpClient } from './lib/http-client';
import { measureFloor } from './lib/floor';
import { type PhaseResult, useServerCpuClock } from './lib/phase';
import { Random } from './lib/random';
import type { ScenarioOptions } from './lib/scenario';
import { type RunningServer, directorySize, ensureBuilt, readCpuMs, startServer } from './lib/server';
import { benchSmart } from './lib/smart';
import { findScenario, scenarios } from './scenarios';

const ROOT_DIR = path.resolve(__dirname, '..');

const USAGE = `usage: npm run bench -- [scenario] [--n 10000] [--c 32] [--rounds 3] [--seed 1] [--auth none] [--audit on] [--json] [--server-log]

scenarios:
${scenarios.map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join('\n')}

  --n N          resources per phase (default 10000)
  --c C          concurrent requests and keep-alive sockets (default 32)
  --rounds R     repeats of phases that do not change the store; the median is reported (default 3)
  --seed S       seed of the synthetic data and of the random reads (default 1)
  --patients P   ingest: how many Synthea patient Bundles to load (default all 120)
  --kinds K,...  search: only these kinds (token, reference, identifier, date, condition)
  --auth A       none (default), smart (every request carries a bearer token; the bench mints the
                 key pair, a JWKS file and a system/*.cruds token), or both (one run each, then the ratio)
  --audit A      on (default: every request waits for its durable AuditEvent), off, or both (one run
                 each, then the on/off ratio)
  --floor F      on (default): also time a trivial Express route with the same client, --c and
                 --rounds (min(--n, 5000) requests), and give every phase as a fraction of it; off
  --json         print the report as JSON on stdout (progress stays on stderr)
  --server-log   forward the server's log lines to stderr`;

interface Report {
  scenario: string;
  auth: 'none' | 'smart';
  audit: 'on' | 'off';
  options: ScenarioOptions;
  environment: {
    node: string;
    platform: string;
    arch: string;
    cpus: number;
    cpuModel: string;
    commit?: string;
  };
  phases: PhaseResult[];
  server: { startupMs: number; peakRssBytes: number | null; dataDirBytes: number; dataDirFiles: number };
}

class UsageError extends Error {}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value.replace(/[_,]/g, ''));
  if (!Number.isSafeInteger(parsed) || parsed < 1)
    throw new UsageError(`--${name} must be a positive integer`);
  return parsed;
}

function gitCommit(): string | undefined {
  try {
    const out = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT_DIR, stdio: 'pipe' });
    return out.toString('utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The floor, and each phase of each run as a fraction of its requests per second. */
function formatFloor(floor: PhaseResult, reports: readonly Report[]): string {
  const cpu = floor.cpuMsPerRequest === undefined ? '' : `, ${floor.cpuMsPerRequest.toFixed(3)} ms CPU/req`;
  const lines = [
    `floor (a trivial Express route, same client, c=${reports[0]?.options.concurrency ?? '?'}): ${floor.perSecond.toFixed(0)} req/s, p50 ${floor.medianMs.toFixed(2)} ms${cpu}`,
  ];
  for (const r of reports) {
    const parts = r.phases.map((p) => `${p.name} ${(p.perSecond / floor.perSecond).toFixed(2)}`);
    lines.push(`  of the floor (AUTH=${r.auth}, AUDIT=${r.audit}): ${parts.join(', ')}`);
  }
  return lines.join('\n');
}

function formatTable(report: Report): string {
  const { options, environment: env, server } = report;
  const rows = [
    ['phase', 'requests', 'res/s', 'p50 ms', 'p99 ms', 'cpu ms/req', ''],
    ...report.phases.map((phase) => [
      phase.name,
      String(phase.count),
      phase.perSecond.toFixed(0),
      phase.medianMs.toFixed(2),
      phase.p99Ms.toFixed(2),
      phase.cpuMsPerRequest === undefined ? '-' : phase.cpuMsPerRequest.toFixed(3),
      phase.rounds.length > 1 ? `median of ${phase.rounds.length} rounds` : '',
    ]),
  ];
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => row[col]?.length ?? 0))) ?? [];
  const lines = rows.map((row) =>
    row
      // Names and notes left-aligned, numbers right-aligned.
      .map((cell, col) => (col === 0 || col === 6 ? cell.padEnd : cell.padStart).call(cell, widths[col] ?? 0))
      .join('  ')
      .trimEnd(),
  );
  const rss = server.peakRssBytes === null ? 'n/a' : formatBytes(server.peakRssBytes);
  return [
    `${report.scenario} (AUTH=${report.auth}, AUDIT=${report.audit}): n=${options.n} c=${options.concurrency} rounds=${options.rounds} seed=${options.seed}` +
      ` | node ${env.node}, ${env.platform}/${env.arch}, ${env.cpus} CPUs${env.commit ? `, commit ${env.commit}` : ''}`,
    ...lines,
    `server: startup ${server.startupMs.toFixed(0)} ms, peak RSS ${rss}, DATA_DIR ${formatBytes(server.dataDirBytes)}` +
      ` in ${server.dataDirFiles} files`,
  ].join('\n');
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      n: { type: 'string' },
      c: { type: 'string' },
      rounds: { type: 'string' },
      seed: { type: 'string' },
      patients: { type: 'string' },
      kinds: { type: 'string' },
      auth: { type: 'string', default: 'none' },
      audit: { type: 'string', default: 'on' },
      floor: { type: 'string', default: 'on' },
      json: { type: 'boolean', default: false },
      'server-log': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`one scenario at a time, got: ${positionals.join(' ')}`);
  const scenarioName = positionals[0] ?? scenarios[0]?.name ?? 'crud';
  const scenario = findScenario(scenarioName);
  if (scenario === undefined) throw new UsageError(`unknown scenario "${scenarioName}"`);
  const options: ScenarioOptions = {
    n: positiveInt(values.n, 10_000, 'n'),
    concurrency: positiveInt(values.c, 32, 'c'),
    rounds: positiveInt(values.rounds, 3, 'rounds'),
    seed: positiveInt(values.seed, 1, 'seed'),
  };
  if (values.patients !== undefined) options.patients = positiveInt(values.patients, 120, 'patients');
  if (values.kinds !== undefined) options.kinds = values.kinds.split(',').filter((k) => k !== '');
  const log = (message: string): void => void process.stderr.write(`[bench] ${message}\n`);
  const authArg = values.auth ?? 'none';
  if (authArg !== 'none' && authArg !== 'smart' && authArg !== 'both')
    throw new UsageError(`--auth must be none, smart or both`);
  const modes: Array<'none' | 'smart'> = authArg === 'both' ? ['none', 'smart'] : [authArg];
  const auditArg = values.audit ?? 'on';
  if (auditArg !== 'on' && auditArg !== 'off' && auditArg !== 'both')
    throw new UsageError(`--audit must be on, off or both`);
  const audits: Array<'on' | 'off'> = auditArg === 'both' ? ['off', 'on'] : [auditArg];

  const floorArg = values.floor ?? 'on';
  if (floorArg !== 'on' && floorArg !== 'off') throw new UsageError(`--floor must be on or off`);

  const mainJs = await ensureBuilt(ROOT_DIR, log);
  let floor: PhaseResult | undefined;
  if (floorArg === 'on') {
    log('floor: a trivial Express route, same client and concurrency');
    floor = await measureFloor(ROOT_DIR, Math.min(options.n, 5000), options.concurrency, options.rounds);
  }
  const reports: Report[] = [];
  for (const auth of modes) {
    for (const audit of audits) {
      log(`AUTH=${auth} AUDIT=${audit}`);
      reports.push(await runOnce(mainJs, scenario, options, auth, audit, values['server-log'] === true, log));
    }
  }
  if (values.json === true) {
    const all = reports.length === 1 ? reports[0] : reports;
    console.log(JSON.stringify(floor ? { floor, reports: all } : all, null, 2));
  } else {
    console.log(reports.map(formatTable).join('\n\n'));
    if (floor) console.log(`\n${formatFloor(floor, reports)}`);
    if (reports.length === 2) {
      const [base, other] = reports as [Report, Report];
      const [otherLabel, baseLabel] =
        audits.length === 2 ? ['AUDIT=on', 'AUDIT=off'] : ['AUTH=smart', 'AUTH=none'];
      for (const phase of base.phases) {
        const o = other.phases.find((p) => p.name === phase.name);
        if (o)
          console.log(
            `${phase.name}: ${otherLabel} ${o.perSecond.toFixed(0)} res/s vs ${baseLabel} ${phase.perSecond.toFixed(0)} res/s` +
              ` (ratio ${(o.perSecond / phase.perSecond).toFixed(2)})` +
              (o.cpuMsPerRequest !== undefined && phase.cpuMsPerRequest !== undefined
                ? `; server CPU ${o.cpuMsPerRequest.toFixed(3)} vs ${phase.cpuMsPerRequest.toFixed(3)} ms/req (ratio ${(phase.cpuMsPerRequest / o.cpuMsPerRequest).toFixed(2)})`
                : ''),
          );
      }
    }
  }
  return 0;
}

async function runOnce(
  mainJs: string,
  scenario: NonNullable<ReturnType<typeof findScenario>>,
  options: ScenarioOptions,
  auth: 'none' | 'smart',
  audit: 'on' | 'off',
  forwardOutput: boolean,
  log: (message: string) => void,
): Promise<Report> {
  const smart = auth === 'smart' ? await benchSmart() : undefined;
  let server: RunningServer | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    server?.disposeSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    server = await startServer(mainJs, {
      rootDir: ROOT_DIR,
      log,
      forwardOutput,
      env: { ...smart?.env, AUDIT: audit },
    });
    const client = new HttpClient(server.baseUrl, options.concurrency, undefined, smart?.headers);
    const pid = server.pid;
    useServerCpuClock(() => readCpuMs(pid));
    let phases: PhaseResult[];
    try {
      phases = await scenario.run({ client, options, random: new Random(options.seed), log });
    } catch (error) {
      const exit = await server.exitStatus(1_000);
      if (exit === undefined) throw error;
      throw new Error(`server died (${exit}); its last output:\n${server.outputTail()}`, { cause: error });
    } finally {
      client.close();
      useServerCpuClock(undefined);
    }
    const peakRssBytes = await server.peakRssBytes();
    await server.stop();
    const size = await directorySize(server.dataDir);
    const cpus = os.cpus();
    const report: Report = {
      scenario: scenario.name,
      auth,
      audit,
      options,
      environment: {
        node: process.version,
        platform: process.platform,
        arch: process.arch,
        cpus: cpus.length,
        cpuModel: cpus[0]?.model.trim() ?? 'unknown',
        commit: gitCommit(),
      },
      phases,
      server: {
        startupMs: server.startupMs,
        peakRssBytes: peakRssBytes ?? null,
        dataDirBytes: size.bytes,
        dataDirFiles: size.files,
      },
    };
    return report;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server?.dispose();
    await smart?.cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (
      error instanceof UsageError ||
      (error instanceof Error && 'code' in error && /^ERR_PARSE_ARGS/.test(String(error.code)))
    ) {
      console.error(`${error.message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    console.error(`[bench] failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
