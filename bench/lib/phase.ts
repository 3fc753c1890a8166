import { performance } from 'node:perf_hooks';
import { median, summarizeLatencies } from './stats';

/** Raw timings of one pass over a batch of requests. */
export interface Timings {
  seconds: number;
  latenciesMs: number[];
}

export interface RoundResult {
  count: number;
  seconds: number;
  perSecond: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
}

/** One phase of a scenario; the summary fields are medians over its rounds. */
export interface PhaseResult {
  name: string;
  count: number;
  perSecond: number;
  medianMs: number;
  p99Ms: number;
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
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { seconds: (performance.now() - start) / 1000, latenciesMs };
}

/** Timings of batches run one after the other, as if they were one batch. */
export function concatTimings(parts: readonly Timings[]): Timings {
  return {
    seconds: parts.reduce((sum, part) => sum + part.seconds, 0),
    latenciesMs: parts.flatMap((part) => part.latenciesMs),
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
  };
}

export function toPhase(name: string, rounds: readonly RoundResult[]): PhaseResult {
  return {
    name,
    count: rounds[0]?.count ?? 0,
    perSecond: median(rounds.map((r) => r.perSecond)),
    medianMs: median(rounds.map((r) => r.medianMs)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
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
