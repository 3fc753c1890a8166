import type { DefinitionsRegistry } from './definitions';
import type { Filter } from '../store/backend';

/**
 * The logical ids of the Patients whose compartment a resource is in (CompartmentDefinition
 * Patient), from its extracted search index: a Patient is in its own compartment; other types
 * through the reference parameters the definition names (Observation: subject, performer).
 */
export function patientsOf(
  registry: DefinitionsRegistry,
  type: string,
  id: string | undefined,
  idx: Record<string, unknown>,
): string[] {
  const out = new Set<string>();
  if (type === 'Patient' && id) out.add(id);
  for (const code of registry.patientCompartment.get(type) ?? []) {
    const refs = idx[code];
    if (!Array.isArray(refs)) continue;
    for (const r of refs as Array<{ t?: unknown; i?: unknown }>) {
      if (r && r.t === 'Patient' && typeof r.i === 'string') out.add(r.i);
    }
  }
  return [...out];
}

/** The reference parameters that put a resource of `type` in a Patient's compartment. */
export function compartmentCodes(registry: DefinitionsRegistry, type: string): readonly string[] {
  return registry.patientCompartment.get(type) ?? [];
}

/**
 * The store filter for the Patient compartment of `patients` (of any Patient when undefined) in
 * `type`; null for types outside the compartment.
 */
export function compartmentFilter(
  registry: DefinitionsRegistry,
  type: string,
  patients: readonly string[] | undefined,
): Filter | null {
  // One patient (the common case: patient context, $everything) gets plain equalities, which the
  // embedded engine answers by direct lookup.
  const one = patients?.length === 1 ? (patients[0] as string) : undefined;
  if (type === 'Patient')
    return one !== undefined ? { _id: one } : patients ? { _id: { $in: [...patients] } } : {};
  const codes = registry.patientCompartment.get(type);
  if (!codes || codes.length === 0) return null;
  const match =
    one !== undefined
      ? { r: `Patient/${one}` }
      : patients
        ? { r: { $in: patients.map((p) => `Patient/${p}`) } }
        : { t: 'Patient' };
  return { $or: codes.map((c) => ({ [`idx.${c}`]: { $elemMatch: match } })) };
}
