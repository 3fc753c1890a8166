/**
 * Pattern matching (pattern[x]): every element of the pattern is present in the value with the same
 * value; for repeating elements, each pattern item matches some item of the value.
 */
export function jsonContains(value: unknown, pattern: unknown): boolean {
  if (pattern === null || typeof pattern !== 'object') return value === pattern;
  if (Array.isArray(pattern)) {
    const items = Array.isArray(value) ? value : [value];
    return pattern.every((p) => items.some((v) => jsonContains(v, p)));
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const vo = value as Record<string, unknown>;
  for (const [k, p] of Object.entries(pattern as Record<string, unknown>)) {
    if (!(k in vo)) return false;
    if (!jsonContains(vo[k], p)) return false;
  }
  return true;
}
