import type { DefinitionsRegistry } from '../fhir/definitions';
import type { IndexSpec } from '../store/backend';

/** Token parameters searched most, where a type has them. */
const HOT_TOKENS = ['code', 'identifier'];
/** Reference parameters searched most: a patient's data. */
const HOT_REFERENCES = ['subject', 'patient'];

/**
 * Compound indexes for the hot search paths on MongoDB, beside the wildcard index over `idx` (which
 * serves one field at a time): a token's code and system together, a reference, each with
 * lastUpdated for `_sort=-_lastUpdated` and `_lastUpdated` ranges. The embedded engine plans by its
 * own single-field indexes and gets none of these.
 */
export function hotSearchIndexes(registry: DefinitionsRegistry, type: string): IndexSpec[] {
  const params = registry.searchParametersFor(type);
  const out: IndexSpec[] = [];
  for (const code of HOT_TOKENS) {
    if (params.get(code)?.type !== 'token') continue;
    out.push({
      name: `hot_${code}`,
      key: { [`idx.${code}.c`]: 1, [`idx.${code}.s`]: 1, lastUpdated: -1 },
    });
  }
  for (const code of HOT_REFERENCES) {
    if (params.get(code)?.type !== 'reference') continue;
    out.push({ name: `hot_${code}`, key: { [`idx.${code}.r`]: 1, lastUpdated: -1 } });
  }
  return out;
}
