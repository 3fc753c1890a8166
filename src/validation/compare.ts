/** Deep equality of JSON values (fixed[x] matching, profile.html#fixed). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => jsonEqual(ao[k], bo[k]));
}

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
