import type { HttpClient } from './http-client';
import type { PhaseResult } from './phase';
import type { Random } from './random';
import type { Log } from './server';

export interface ScenarioOptions {
  /** Resources per phase. */
  n: number;
  /** Requests in flight (and keep-alive sockets). */
  concurrency: number;
  /** How often repeatable phases run; the report shows the median. */
  rounds: number;
  seed: number;
  /** ingest: how many Synthea patient Bundles to load (default all). */
  patients?: number;
  /** search: only these kinds of search (default all), e.g. to profile one. */
  kinds?: string[];
}

/** What a scenario gets: a running server with an empty store behind `client`. */
export interface ScenarioContext {
  client: HttpClient;
  options: ScenarioOptions;
  random: Random;
  log: Log;
}

export interface Scenario {
  name: string;
  description: string;
  run(context: ScenarioContext): Promise<PhaseResult[]>;
}

/** Indexed access that fails loudly instead of yielding undefined. */
export function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at index ${index} (of ${items.length})`);
  return item;
}
