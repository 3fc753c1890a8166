/** A line diff (longest common subsequence) of two JSON texts, for version comparison. */

export type DiffLine = { kind: 'same' | 'added' | 'removed'; text: string };

/** JSON with keys in a stable order, so a diff shows changes, not reordering. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/**
 * Lines of `a` and `b` as kept, removed and added. The common prefix and suffix are trimmed first, so
 * the quadratic table covers only the changed middle (resource versions differ in a few places).
 */
export function diffLines(a: string, b: string): DiffLine[] {
  const x = a.split('\n');
  const y = b.split('\n');
  let start = 0;
  while (start < x.length && start < y.length && x[start] === y[start]) start++;
  let endX = x.length;
  let endY = y.length;
  while (endX > start && endY > start && x[endX - 1] === y[endY - 1]) {
    endX--;
    endY--;
  }
  const mx = x.slice(start, endX);
  const my = y.slice(start, endY);
  const out: DiffLine[] = x.slice(0, start).map((text) => ({ kind: 'same', text }));
  if (mx.length * my.length > 4_000_000) {
    // Too large to align line by line: show the middle as replaced.
    out.push(
      ...mx.map((text) => ({ kind: 'removed' as const, text })),
      ...my.map((text) => ({ kind: 'added' as const, text })),
    );
  } else {
    const n = mx.length;
    const m = my.length;
    const table: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      const row = table[i] as Uint32Array;
      const below = table[i + 1] as Uint32Array;
      for (let j = m - 1; j >= 0; j--)
        row[j] =
          mx[i] === my[j] ? (below[j + 1] as number) + 1 : Math.max(below[j] as number, row[j + 1] as number);
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (mx[i] === my[j]) {
        out.push({ kind: 'same', text: mx[i] as string });
        i++;
        j++;
      } else if (
        ((table[i + 1] as Uint32Array)[j] as number) >= ((table[i] as Uint32Array)[j + 1] as number)
      ) {
        out.push({ kind: 'removed', text: mx[i++] as string });
      } else {
        out.push({ kind: 'added', text: my[j++] as string });
      }
    }
    while (i < n) out.push({ kind: 'removed', text: mx[i++] as string });
    while (j < m) out.push({ kind: 'added', text: my[j++] as string });
  }
  out.push(...x.slice(endX).map((text) => ({ kind: 'same' as const, text })));
  return out;
}
