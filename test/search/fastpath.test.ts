import type { ElementDefinition, Resource, StructureDefinition } from 'fhir/r4';
import { IndexExtractor } from '../../src/search/extract';
import { registry } from './helpers';

/** A resource of every element the type defines, filled with dummy values of the element's type. */

const PRIMS: Record<string, unknown> = {
  string: 'Xyz',
  boolean: true,
  integer: 3,
  decimal: 1.25,
  positiveInt: 2,
  unsignedInt: 0,
  date: '2020-02-03',
  dateTime: '2020-02-03T04:05:06Z',
  instant: '2020-02-03T04:05:06.789Z',
  time: '10:00:00',
  code: 'abc',
  id: 'id1',
  uri: 'http://example.org/u',
  url: 'http://example.org/url',
  canonical: 'http://example.org/c|1',
  oid: 'urn:oid:1.2',
  uuid: 'urn:uuid:0000',
  markdown: 'md',
  base64Binary: 'AAAA',
  xhtml: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
};
function gen(type: string, depth: number): unknown {
  if (type in PRIMS) return PRIMS[type];
  if (type === 'Reference')
    return { reference: 'Patient/p1', identifier: { system: 'http://s', value: 'v' } };
  if (type === 'Resource' || type === 'Extension' || type === 'Narrative' || depth > 2) return undefined;
  const sd = registry.structureDefinition(`http://hl7.org/fhir/StructureDefinition/${type}`);
  if (!sd) return undefined;
  return fromSd(sd, depth + 1);
}
function fromSd(sd: StructureDefinition, depth: number): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  const els = sd.snapshot?.element ?? [];
  const objects = new Map<string, Record<string, unknown>>([[sd.type, root]]);
  for (const e of els as ElementDefinition[]) {
    const p = e.path;
    const parentPath = p.slice(0, p.lastIndexOf('.'));
    const name = p.slice(p.lastIndexOf('.') + 1);
    const parent = objects.get(parentPath);
    if (
      !parent ||
      !p.includes('.') ||
      name === 'extension' ||
      name === 'modifierExtension' ||
      name === 'contained' ||
      (name === 'id' && depth > 1)
    )
      continue;
    if (e.contentReference) continue;
    const types = e.type ?? [];
    const many = e.max === '*';
    const choice = name.endsWith('[x]');
    const t = types[Math.floor(depth + p.length) % Math.max(types.length, 1)]?.code;
    if (!t) continue;
    const key = choice ? name.replace('[x]', t.charAt(0).toUpperCase() + t.slice(1)) : name;
    if (t === 'BackboneElement' || t === 'Element') {
      const o: Record<string, unknown> = {};
      objects.set(p, o);
      parent[key] = many ? [o, o] : o;
      continue;
    }
    const v = gen(t, depth);
    if (v === undefined) continue;
    parent[key] = many ? [v, v] : v;
  }
  return root;
}
describe('fast path evaluation', () => {
  it('indexes a generated resource of every R4 type exactly as fhirpath does', () => {
    const failures: string[] = [];
    const fast = new IndexExtractor(registry, {
      fastPaths: true,
      onError: (t, c) => failures.push(`${t}.${c}`),
    });
    const slow = new IndexExtractor(registry, {
      fastPaths: false,
      onError: (t, c) => failures.push(`${t}.${c}`),
    });
    const differences: string[] = [];
    let values = 0;
    for (const type of registry.resourceTypes) {
      const sd = registry.structureDefinition(`http://hl7.org/fhir/StructureDefinition/${type}`);
      if (!sd) continue;
      const r = { resourceType: type, ...fromSd(sd, 1) } as Resource;
      const a = fast.extract(r);
      const b = slow.extract(r);
      values += Object.keys(a).length;
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) differences.push(`${type}.${k}`);
      }
    }
    expect(values).toBeGreaterThan(2000);
    expect(differences).toEqual([]);
    expect(failures).toEqual([]);
  });
});

describe('fast path: where(field=literal), ofType mid-path, (x as T).y', () => {
  const fast = new IndexExtractor(registry, { fastPaths: true });
  const slow = new IndexExtractor(registry, { fastPaths: false });
  const resources = [
    {
      resourceType: 'Patient',
      telecom: [
        { system: 'email', value: 'A@Example.org' },
        { system: 'phone', value: '555-0100', use: 'home' },
        { system: 'sms', value: '555-0199' },
        { value: 'no-system' },
        { system: 'email', value: 'b@example.org' },
      ],
      deceasedDateTime: '2020-01-01',
    },
    { resourceType: 'Practitioner', telecom: [{ system: 'phone', value: '555-0101' }] },
    {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueCodeableConcept: {
        text: 'Never smoker',
        coding: [{ system: 'http://snomed.info/sct', code: '266919005' }],
      },
    },
    { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueString: 'free text' },
    {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueQuantity: { value: 1, unit: 'kg' },
    },
  ] as unknown as Resource[];

  it.each(resources.map((r) => [r.resourceType, r] as const))('%s: same index as fhirpath', (_type, r) => {
    expect(fast.extract(r)).toEqual(slow.extract(r));
  });

  it('finds the values (the comparison above is not between two empty indexes)', () => {
    const patient = fast.extract(resources[0] as Resource);
    expect(JSON.stringify(patient.email)).toContain('A@Example.org');
    expect(JSON.stringify(patient.email)).not.toContain('555');
    expect(JSON.stringify(patient.phone)).toContain('555-0100');
    expect(JSON.stringify(patient.phone)).not.toContain('555-0199');
    expect(JSON.stringify(fast.extract(resources[2] as Resource)['value-string'])).toContain('never smoker');
  });
});
