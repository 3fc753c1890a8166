import type { DefinitionsRegistry } from './definitions';

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
