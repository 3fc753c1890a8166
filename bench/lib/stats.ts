/** Order statistics for latency samples. Percentiles use the nearest-rank method: always a real sample. */

export interface LatencySummary {
  count: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
}

function sortedCopy(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Nearest-rank percentile (p in (0, 100]) of values already sorted ascending; NaN when empty. */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

/** Median; the mean of the two middle values when the count is even; NaN when empty. */
export function median(values: readonly number[]): number {
  const sorted = sortedCopy(values);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const upper = sorted[n >> 1] ?? Number.NaN;
  if (n % 2 === 1) return upper;
  return ((sorted[(n >> 1) - 1] ?? Number.NaN) + upper) / 2;
}

export function summarizeLatencies(latenciesMs: readonly number[]): LatencySummary {
  const sorted = sortedCopy(latenciesMs);
  return {
    count: sorted.length,
    medianMs: median(sorted),
    p99Ms: percentileOfSorted(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
  };
}
