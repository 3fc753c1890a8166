/**
 * Stored documents are deeply frozen: the engine hands out its own objects without copying, and a
 * caller that tried to mutate one would corrupt the store behind the journal's back. Freezing turns
 * that bug into an immediate TypeError.
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
