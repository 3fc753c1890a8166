import type { ElementDefinition, StructureDefinition } from 'fhir/r4';

/**
 * A snapshot from a differential (profiling.html#snapshot), for profiles shipped without one:
 * the base definition's snapshot, with each differential element merged onto the element of the
 * same id, slices inserted after the element they slice, and datatypes unrolled where the
 * differential constrains inside them. Enough for the constraints this validator checks; it does
 * not re-derive documentation, mappings or conditions.
 */
export function generateSnapshot(
  sd: StructureDefinition,
  lookup: (url: string) => StructureDefinition | undefined,
  depth = 0,
): ElementDefinition[] | undefined {
  if (sd.snapshot?.element?.length) return sd.snapshot.element;
  if (!sd.baseDefinition || depth > 10) return undefined;
  const base = lookup(sd.baseDefinition);
  if (!base) return undefined;
  const baseElements = generateSnapshot(base, lookup, depth + 1);
  if (!baseElements) return undefined;
  const out: ElementDefinition[] = baseElements.map((e) => structuredClone(e));
  const baseRoot = baseElements[0]?.path ?? sd.type;
  const rootPath = sd.type;
  // A profile of a profile keeps paths; a derivation from a datatype re-roots them (rare).
  if (baseRoot !== rootPath) {
    for (const e of out) {
      e.path = rootPath + e.path.slice(baseRoot.length);
      if (e.id) e.id = rootPath + e.id.slice(baseRoot.length);
    }
  }
  for (const diff of sd.differential?.element ?? []) {
    const id = diff.id ?? diff.path;
    let idx = out.findIndex((e) => (e.id ?? e.path) === id);
    if (idx < 0) idx = typedChoice(out, id);
    if (idx < 0) idx = insertElement(out, id, diff, lookup, baseElements);
    if (idx < 0) continue;
    const target = out[idx] as ElementDefinition;
    for (const [k, v] of Object.entries(diff)) {
      if (k === 'id' || k === 'path') continue;
      if (k === 'constraint') {
        const existing = target.constraint ?? [];
        const merged = [...existing];
        for (const c of v as NonNullable<ElementDefinition['constraint']>)
          if (!merged.some((x) => x.key === c.key)) merged.push(c);
        target.constraint = merged;
        continue;
      }
      (target as unknown as Record<string, unknown>)[k] = v;
    }
  }
  return out;
}

/** Where an element of the differential goes when the snapshot has no element of its id yet. */
function insertElement(
  out: ElementDefinition[],
  id: string,
  diff: ElementDefinition,
  lookup: (url: string) => StructureDefinition | undefined,
  pristine: readonly ElementDefinition[],
): number {
  const segs = id.split('.');
  const last = segs[segs.length - 1] ?? '';
  const parentId = segs.slice(0, -1).join('.');
  const colon = last.indexOf(':');
  if (colon >= 0) {
    // A new slice: a copy of the sliced element (and its children), after the last of its kind.
    const slicedId = [...segs.slice(0, -1), last.slice(0, colon)].join('.');
    const slicedIdx = out.findIndex((e) => (e.id ?? e.path) === slicedId);
    if (slicedIdx < 0) return -1;
    let end = slicedIdx + 1;
    while (end < out.length && isWithin(out[end]?.id ?? '', slicedId)) end++;
    const copies = out
      .slice(slicedIdx, end)
      .filter((e) => !(e.id ?? '').slice(slicedId.length).includes(':') || (e.id ?? '') === slicedId);
    const cloned = copies.map((e) => {
      const c = structuredClone(e);
      c.id = id + (e.id ?? '').slice(slicedId.length);
      if ((e.id ?? '') === slicedId) {
        c.sliceName = last.slice(colon + 1);
        delete c.slicing;
      }
      return c;
    });
    out.splice(end, 0, ...cloned);
    return end;
  }
  // A child inside a datatype the snapshot has not unrolled yet: unroll it from the type's definition.
  const existing = out.findIndex((e) => (e.id ?? e.path) === id);
  if (existing >= 0) return existing;
  let parentIdx = out.findIndex((e) => (e.id ?? e.path) === parentId);
  if (parentIdx < 0) {
    if (
      segs.length <= 2 ||
      insertElement(out, parentId, { path: parentId } as ElementDefinition, lookup, pristine) < 0
    ) {
      return -1;
    }
    parentIdx = out.findIndex((e) => (e.id ?? e.path) === parentId);
    if (parentIdx < 0) return -1;
  }
  // Children already unrolled: the element simply is not one of them.
  if ((out[parentIdx + 1]?.id ?? '').startsWith(`${parentId}.`)) return -1;
  const parent = out[parentIdx] as ElementDefinition;
  if (parent.contentReference) {
    // Unroll a recursive element (Parameters.parameter.part) from the element it refers to.
    const ref = parent.contentReference.replace(/^.*#/, '');
    // From the base definition: the profile's constraints on the referenced element stay there.
    const refEls = pristine.filter(
      (e) => (e.id ?? e.path).startsWith(`${ref}.`) && !(e.id ?? '').slice(ref.length).includes(':'),
    );
    const copies = refEls.map((e) => {
      const c = structuredClone(e);
      c.id = parentId + (e.id ?? e.path).slice(ref.length);
      c.path = parent.path + e.path.slice(ref.length);
      return c;
    });
    delete parent.contentReference;
    parent.type = [{ code: 'BackboneElement' }];
    out.splice(parentIdx + 1, 0, ...copies);
    return out.findIndex((e) => (e.id ?? e.path) === id);
  }
  const typeCode = parent.type?.length === 1 ? parent.type[0]?.code : undefined;
  const typeSd = typeCode ? lookup(`http://hl7.org/fhir/StructureDefinition/${typeCode}`) : undefined;
  const typeElements = typeSd?.snapshot?.element;
  if (!typeElements) return -1;
  const children = typeElements.slice(1).map((e) => {
    const c = structuredClone(e);
    c.path = parent.path + e.path.slice(typeCode?.length ?? 0);
    c.id = parentId + (e.id ?? e.path).slice(typeCode?.length ?? 0);
    return c;
  });
  out.splice(parentIdx + 1, 0, ...children);
  return out.findIndex((e) => (e.id ?? e.path) === id);
}

function isWithin(id: string, ancestor: string): boolean {
  return id === ancestor || id.startsWith(`${ancestor}.`) || id.startsWith(`${ancestor}:`);
}

/** Old-style differentials name a choice by its typed form (Observation.valueQuantity): the value[x] element. */
function typedChoice(out: ElementDefinition[], id: string): number {
  const dot = id.lastIndexOf('.');
  const parent = id.slice(0, dot);
  const last = id.slice(dot + 1);
  if (last.includes(':')) return -1;
  return out.findIndex((e) => {
    const eid = e.id ?? e.path;
    if (!eid.endsWith('[x]') || eid.slice(0, eid.lastIndexOf('.')) !== parent) return false;
    const name = eid.slice(eid.lastIndexOf('.') + 1, -3);
    return last.startsWith(name) && /^[A-Z]/.test(last.slice(name.length));
  });
}
