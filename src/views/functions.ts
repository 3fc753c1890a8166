import type { UserInvocationTable } from 'fhirpath';

/**
 * The SQL-on-FHIR v2 FHIRPath functions fhirpath.js lacks, as a `userInvocationTable`
 * (https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#required-additional-functions).
 * Keys are the resource's logical id (the same for getResourceKey and getReferenceKey, so joins work).
 */

interface NodeLike {
  data?: unknown;
}

function dataOf(v: unknown): unknown {
  return typeof v === 'object' && v !== null && 'data' in v ? (v as NodeLike).data : v;
}

function getResourceKey(inputs: unknown[]): string[] {
  const out: string[] = [];
  for (const i of inputs) {
    const id = (dataOf(i) as { id?: unknown } | null)?.id;
    if (typeof id === 'string') out.push(id);
  }
  return out;
}

function getReferenceKey(inputs: unknown[], type?: unknown): string[] {
  const want = typeof type === 'object' && type !== null ? (type as { name?: unknown }).name : undefined;
  const out: string[] = [];
  for (const i of inputs) {
    const ref = (dataOf(i) as { reference?: unknown } | null)?.reference;
    if (typeof ref !== 'string') continue;
    // Bundle-internal `urn:uuid:` references (Synthea): the key is the uuid, which Synthea also uses as
    // the id; the target's type is not in the reference, so only an untyped call matches it.
    const uuid = /^urn:uuid:([0-9a-fA-F-]{36})$/.exec(ref);
    if (uuid) {
      if (typeof want !== 'string') out.push(uuid[1] as string);
      continue;
    }
    // Relative (Type/id), absolute (.../Type/id) and versioned (.../_history/n) references.
    const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref);
    if (!m) continue;
    if (typeof want === 'string' && m[1] !== want) continue;
    out.push(m[2] as string);
  }
  return out;
}

/** join(): the spec wants '' (not empty) for an empty input, so a column gets an empty string. */
function join(inputs: unknown[], separator?: unknown): string[] {
  const sep = typeof separator === 'string' ? separator : '';
  return [inputs.map((i) => String(dataOf(i))).join(sep)];
}

export const userInvocationTable: UserInvocationTable = {
  join: { fn: join, arity: { 0: [], 1: ['String'] } },
  getResourceKey: { fn: getResourceKey, arity: { 0: [] } },
  getReferenceKey: { fn: getReferenceKey, arity: { 0: [], 1: ['TypeSpecifier'] } },
};
