import type { StructureDefinition } from 'fhir/r4';
import { errorLines, errorsOf, validatorWith } from './helpers';

/** References between the entries of a Bundle (bundle.html#references, documents.html). */
const base = 'http://hospital.test/fhir/';
const entry = (resource: Record<string, unknown>): Record<string, unknown> => ({
  fullUrl: `${base}${String(resource.resourceType)}/${String(resource.id)}`,
  resource,
});
const patient = { resourceType: 'Patient', id: 'p1', name: [{ family: 'F' }] };
const obs = (id: string, version?: string): Record<string, unknown> => ({
  resourceType: 'Observation',
  id,
  ...(version ? { meta: { versionId: version } } : {}),
  status: 'final',
  code: { text: 'x' },
  subject: { reference: 'Patient/p1' },
});
const composition = (refs: string[]): Record<string, unknown> => ({
  resourceType: 'Composition',
  id: 'c1',
  status: 'final',
  type: { text: 'summary' },
  subject: { reference: 'Patient/p1' },
  date: '2024-01-01',
  author: [{ reference: 'Patient/p1' }],
  title: 'Summary',
  section: [{ title: 'Results', entry: refs.map((reference) => ({ reference })) }],
});
const bundle = (type: string, entries: Array<Record<string, unknown>>): Record<string, unknown> => ({
  resourceType: 'Bundle',
  type,
  ...(type === 'document' ? { identifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:1' } } : {}),
  ...(type === 'document' ? { timestamp: '2024-01-01T00:00:00Z' } : {}),
  entry: entries,
});

const v = validatorWith();
const errors = (r: unknown): string[] => errorLines(v, r);

describe('references inside Bundles', () => {
  test('a document carries what its Composition references', () => {
    const ok = bundle('document', [entry(composition(['Observation/o1'])), entry(patient), entry(obs('o1'))]);
    expect(errors(ok)).toEqual([]);
    const missing = bundle('document', [
      entry(composition(['Observation/o2'])),
      entry(patient),
      entry(obs('o1')),
    ]);
    expect(errors(missing)).toEqual([
      expect.stringMatching(
        /^Bundle\.entry\[0\]\.resource\.section\[0\]\.entry\[0\]\.reference: 'Observation\/o2' is not in the document/,
      ),
    ]);
  });

  test('the same references are fine outside documents (a collection need not be closed)', () => {
    expect(errors(bundle('collection', [entry(composition(['Observation/o2'])), entry(patient)]))).toEqual(
      [],
    );
  });

  test('/_history/v selects the entry of that version; a reference matching two entries is an error', () => {
    const two = [entry(obs('o1', '1')), entry(obs('o1', '2'))];
    const versioned = bundle('document', [
      entry(composition(['Observation/o1/_history/1', 'Observation/o1/_history/2'])),
      entry(patient),
      ...two,
    ]);
    expect(errors(versioned)).toEqual([]);
    const ambiguous = bundle('document', [entry(composition(['Observation/o1'])), entry(patient), ...two]);
    expect(errors(ambiguous)).toEqual([expect.stringMatching(/Found 2 matches for 'Observation\/o1'/)]);
    const noSuchVersion = bundle('document', [
      entry(composition(['Observation/o1/_history/3'])),
      entry(patient),
      ...two,
    ]);
    expect(errors(noSuchVersion)).toEqual([expect.stringMatching(/_history\/3' is not in the document/)]);
  });

  test('a history Bundle may hold several versions of one resource', () => {
    const h = bundle('history', [entry(obs('o1', '1')), entry(obs('o1', '2')), entry(patient)]);
    expect(errors(h).filter((e) => /matches/.test(e))).toEqual([]);
  });

  test('relative references resolve against the fullUrl base: another server is not this entry', () => {
    const elsewhere = { fullUrl: 'http://other.test/fhir/Observation/o1', resource: obs('o1') };
    const doc = bundle('document', [entry(composition(['Observation/o1'])), entry(patient), elsewhere]);
    // Matching by type and id is the fallback, so it is found; strict fullUrl rules are not enforced.
    expect(errors(doc)).toEqual([]);
  });
});

describe('target profiles resolved inside a Bundle', () => {
  const P = 'http://hospital.test/fhir/StructureDefinition/';
  const sd = (id: string, type: string, element: Array<Record<string, unknown>>): StructureDefinition =>
    ({
      resourceType: 'StructureDefinition',
      url: `${P}${id}`,
      name: id.replace(/-/g, ''),
      status: 'active',
      kind: 'resource',
      abstract: false,
      type,
      baseDefinition: `http://hl7.org/fhir/StructureDefinition/${type}`,
      derivation: 'constraint',
      differential: { element: element.map((e) => ({ path: String(e.id), ...e })) },
    }) as StructureDefinition;
  const identified = sd('identified-patient', 'Patient', [{ id: 'Patient.identifier', min: 1 }]);
  const ofIdentified = sd('obs-of-identified', 'Observation', [
    { id: 'Observation.subject', type: [{ code: 'Reference', targetProfile: [`${P}identified-patient`] }] },
  ]);
  const results = sd('results-bundle', 'Bundle', [
    { id: 'Bundle.entry.resource', type: [{ code: 'Observation', profile: [`${P}obs-of-identified`] }] },
  ]);
  const pv = validatorWith([identified, ofIdentified, results]);
  // A category outside the preferred ValueSet gives a warning before the subject is reached:
  // conformance probes must stop at errors only.
  const observation = {
    ...obs('o1'),
    category: [{ coding: [{ system: 'http://hospital.test/cat', code: 'c' }] }],
  };
  const check = (p: Record<string, unknown>): string[] =>
    errorsOf(
      pv.validate(bundle('collection', [entry(observation), entry(p)]), [`${P}results-bundle`]).issues,
    ).map((i) => i.diagnostics ?? '');

  test('the referenced entry must conform to the target profile', () => {
    expect(check(patient)).toEqual([expect.stringMatching(/does not conform to .*obs-of-identified/)]);
    expect(check({ ...patient, identifier: [{ system: 'urn:mrn', value: '1' }] })).toEqual([]);
  });

  test('without the profile, the same Bundle is valid', () => {
    expect(errors(bundle('collection', [entry(observation), entry(patient)]))).toEqual([]);
  });
});
