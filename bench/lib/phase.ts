import { performance } from 'node:perf_hooks';
import { median, summarizeLatencies } from './stats';

/** Raw timings of one pass over a batch of requests. */
export interface Timings {
  seconds: number;
  latenciesMs: number[];
  /** CPU time the server spent meanwhile (user + system), when the runner can read it. */
  serverCpuMs?: number;
}

let serverCpuClock: (() => number | undefined) | undefined;

/**
 * The runner sets this to read the server's CPU time so far (ms). Rounds then report CPU per
 * request, which a busy machine disturbs much less than requests per second.
 */
export function useServerCpuClock(clock: (() => number | undefined) | undefined): void {
  serverCpuClock = clock;
}

export interface RoundResult {
  count: number;
  seconds: number;
  perSecond: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
  /** Server CPU milliseconds per request (or per resource, for phases counted in resources). */
  cpuMsPerRequest?: number;
}

/** One phase of a scenario; the summary fields are medians over its rounds. */
export interface PhaseResult {
  name: string;
  count: number;
  perSecond: number;
  medianMs: number;
  p99Ms: number;
  cpuMsPerRequest?: number;
  rounds: RoundResult[];
}

/**
 * Runs task(0..count-1) with `concurrency` workers pulling the next index, so at most `concurrency`
 * requests are in flight and a slow request never idles the other workers. Latency is the time of
 * the task's promise; tasks should do no more than send one request and check its answer.
 * The first failing task fails the batch: workers stop taking new indexes.
 */
export async function runConcurrently(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<Timings> {
  const latenciesMs = new Array<number>(count).fill(0);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < count) {
      const index = next++;
      const start = performance.now();
      try {
        await task(index);
      } catch (error) {
        failed = true;
        throw error;
      }
      latenciesMs[index] = performance.now() - start;
    }
  };
  const cpuBefore = serverCpuClock?.();
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const seconds = (performance.now() - start) / 1000;
  const cpuAfter = serverCpuClock?.();
  const serverCpuMs = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
  return { seconds, latenciesMs, serverCpuMs };
}

/** Timings of batches run one after the other, as if they were one batch. */
export function concatTimings(parts: readonly Timings[]): Timings {
  const cpu = parts.map((part) => part.serverCpuMs);
  return {
    seconds: parts.reduce((sum, part) => sum + part.seconds, 0),
    latenciesMs: parts.flatMap((part) => part.latenciesMs),
    serverCpuMs: cpu.every((ms) => ms !== undefined) ? cpu.reduce((sum, ms) => sum + ms, 0) : undefined,
  };
}

export function toRound(timings: Timings): RoundResult {
  const latency = summarizeLatencies(timings.latenciesMs);
  return {
    count: latency.count,
    seconds: timings.seconds,
    perSecond: timings.seconds > 0 ? latency.count / timings.seconds : Number.NaN,
    medianMs: latency.medianMs,
    p99Ms: latency.p99Ms,
    maxMs: latency.maxMs,
    cpuMsPerRequest:
      timings.serverCpuMs !== undefined && latency.count > 0
        ? timings.serverCpuMs / latency.count
        : undefined,
  };
}

export function toPhase(name: string, rounds: readonly RoundResult[]): PhaseResult {
  return {
    name,
    count: rounds[0]?.count ?? 0,
    perSecond: median(rounds.map((r) => r.perSecond)),
    medianMs: median(rounds.map((r) => r.medianMs)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    cpuMsPerRequest: rounds.every((r) => r.cpuMsPerRequest !== undefined)
      ? median(rounds.map((r) => r.cpuMsPerRequest ?? 0))
      : undefined,
    rounds: [...rounds],
  };
}

/**
 * A phase run once whose count is not the number of timed requests (resources in Bundles, an export
 * timed as a whole): resources per second over `seconds`, latencies as given.
 */
export function singleRound(
  name: string,
  count: number,
  seconds: number,
  latenciesMs: number[],
): PhaseResult {
  const latency = summarizeLatencies(latenciesMs);
  return toPhase(name, [
    {
      count,
      seconds,
      perSecond: count / seconds,
      medianMs: latency.medianMs,
      p99Ms: latency.p99Ms,
      maxMs: latency.maxMs,
    },
  ]);
}
