import type { CodeSystem, ValueSet } from 'fhir/r4';
import { TerminologyService } from '../../src/validation/terminology';
import {
  errorsOf,
  observation,
  observationProfile,
  registryWith,
  studyResources,
  validatorWith,
  warningsOf,
} from './helpers';

/** Bindings (terminologies.html#binding) and the terminology the server holds. */
const CS = 'http://example.org/fhir/CodeSystem/study-visit';
const withoutUnscheduled: ValueSet = {
  resourceType: 'ValueSet',
  url: 'http://example.org/fhir/ValueSet/scheduled',
  status: 'active',
  compose: {
    include: [{ system: CS }],
    exclude: [{ system: CS, concept: [{ code: 'unscheduled' }] }],
  },
};
const allOfSnomed: ValueSet = {
  resourceType: 'ValueSet',
  url: 'http://example.org/fhir/ValueSet/snomed',
  status: 'active',
  compose: { include: [{ system: 'http://snomed.info/sct' }] },
};
const fragment: CodeSystem = {
  resourceType: 'CodeSystem',
  url: 'http://example.org/fhir/CodeSystem/fragment',
  status: 'active',
  content: 'fragment',
  concept: [{ code: 'a' }],
};
const registry = registryWith([...studyResources(), withoutUnscheduled, allOfSnomed, fragment]);
const tx = new TerminologyService(registry);
const v = validatorWith();

describe('terminology', () => {
  test('expansion: explicit concepts and whole CodeSystems the server holds', () => {
    const exp = tx.expand('http://hl7.org/fhir/ValueSet/administrative-gender');
    expect([...(exp?.codes.get('http://hl7.org/fhir/administrative-gender')?.keys() ?? [])].sort()).toEqual([
      'female',
      'male',
      'other',
      'unknown',
    ]);
  });

  test('expansion: is-a filters walk the CodeSystem hierarchy', () => {
    const codes = [
      ...(tx.expand('http://example.org/fhir/ValueSet/study-visit')?.codes.get(CS)?.keys() ?? []),
    ];
    expect(codes.sort()).toEqual(['baseline', 'follow-up', 'visit', 'week-12', 'week-4']);
  });

  test('expansion: exclude removes codes', () => {
    expect(tx.membership(withoutUnscheduled.url as string, CS, 'unscheduled')).toBe('not-member');
    expect(tx.membership(withoutUnscheduled.url as string, CS, 'week-4')).toBe('member');
  });

  test('a system the server does not hold cannot be judged (unknown, not a failure)', () => {
    expect(tx.membership(allOfSnomed.url as string, 'http://snomed.info/sct', '12345')).toBe('unknown');
  });

  test('codes of a system the ValueSet does not include are not members', () => {
    expect(
      tx.membership('http://hl7.org/fhir/ValueSet/administrative-gender', 'http://other.example', 'male'),
    ).toBe('not-member');
  });

  test('a CodeSystem that is only a fragment does not make other codes invalid', () => {
    const vs: ValueSet = {
      resourceType: 'ValueSet',
      status: 'active',
      compose: { include: [{ system: fragment.url }] },
    };
    const exp = tx.expandValueSet(vs);
    expect(exp.openSystems.has(fragment.url as string)).toBe(true);
  });

  test('$lookup and $subsumes over a held hierarchy', () => {
    expect(tx.lookup(CS, 'week-4')).toMatchObject({ display: 'Week 4', parents: ['follow-up'] });
    expect(tx.subsumes(CS, 'visit', 'week-12')).toBe('subsumes');
    expect(tx.subsumes(CS, 'week-12', 'follow-up')).toBe('subsumed-by');
    expect(tx.subsumes(CS, 'baseline', 'week-4')).toBe('not-subsumed');
    expect(tx.subsumes(CS, 'baseline', 'baseline')).toBe('equivalent');
  });

  test('a required binding: a code outside the ValueSet is an error', () => {
    const e = errorsOf(v.validate({ resourceType: 'Patient', gender: 'mail' }).issues);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ code: 'code-invalid', expression: ['Patient.gender'] });
    expect(errorsOf(v.validate({ resourceType: 'Patient', gender: 'female' }).issues)).toEqual([]);
  });

  test('a required binding on a CodeableConcept: one coding in the ValueSet is enough', () => {
    const status = (code: string): Record<string, unknown> => ({
      resourceType: 'AllergyIntolerance',
      patient: { reference: 'Patient/1' },
      clinicalStatus: {
        coding: [
          { system: 'http://example.org/local', code: 'x' },
          { system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code },
        ],
      },
    });
    expect(errorsOf(v.validate(status('active')).issues)).toEqual([]);
    expect(errorsOf(v.validate(status('dormant')).issues)).toHaveLength(1);
  });

  test('extensible and preferred bindings give warnings, not errors', () => {
    // Observation.category is preferred (observation-category); Observation.interpretation extensible.
    const r = observation({
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'nope' }] },
      ],
      interpretation: [
        {
          coding: [
            { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'nope' },
          ],
        },
      ],
    });
    const { issues } = v.validate(r);
    expect(errorsOf(issues)).toEqual([]);
    const w = warningsOf(issues).filter((i) => i.code === 'code-invalid');
    expect(w.map((i) => i.expression?.[0]).sort()).toEqual([
      'Observation.category[0]',
      'Observation.interpretation[0]',
    ]);
  });

  test('codes from systems the server does not hold do not fail a binding', () => {
    const r = observation({ code: { coding: [{ system: 'http://snomed.info/sct', code: '27113001' }] } });
    expect(v.validate(r).issues.filter((i) => i.code === 'code-invalid')).toEqual([]);
  });
});

describe('additional bindings (R5 binding.additional, as its cross-version extension)', () => {
  const internal: ValueSet = {
    resourceType: 'ValueSet',
    url: 'http://example.org/fhir/ValueSet/internal-codes',
    status: 'active',
    compose: { include: [{ system: 'http://loinc.org', concept: [{ code: '100065-2' }] }] },
  };
  const additional = (purpose: string, usage = false): Record<string, unknown> => ({
    url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.binding.additional',
    extension: [
      { url: 'purpose', valueCode: purpose },
      { url: 'valueSet', valueCanonical: internal.url },
      ...(usage
        ? [
            {
              url: 'usage',
              valueUsageContext: { code: { code: 'focus' }, valueCodeableConcept: { text: 'x' } },
            },
          ]
        : []),
    ],
  });
  const profile = (id: string, ext: Record<string, unknown>): ReturnType<typeof observationProfile> =>
    observationProfile(id, [
      {
        id: 'Observation.code',
        binding: {
          strength: 'example',
          valueSet: 'http://hl7.org/fhir/ValueSet/observation-codes',
          extension: [ext],
        },
      },
    ]);
  const required = profile('ab-required', additional('required'));
  const extensible = profile('ab-extensible', additional('extensible'));
  const withUsage = profile('ab-usage', additional('required', true));
  const va = validatorWith([internal, required, extensible, withUsage]);
  const obs = (code: string): Record<string, unknown> =>
    observation({ code: { coding: [{ system: 'http://loinc.org', code }] } });

  test('purpose required: a code outside the ValueSet is an error, inside it is fine', () => {
    expect(errorsOf(va.validate(obs('100066-0'), [required.url]).issues)).toEqual([
      expect.objectContaining({
        diagnostics: expect.stringMatching(/not in the additional required value set/),
      }),
    ]);
    expect(errorsOf(va.validate(obs('100065-2'), [required.url]).issues)).toEqual([]);
  });

  test('purpose extensible gives a warning; one with a usage context is not applied', () => {
    const r = va.validate(obs('100066-0'), [extensible.url]);
    expect(errorsOf(r.issues)).toEqual([]);
    expect(warningsOf(r.issues).some((i) => /additional extensible/.test(i.diagnostics ?? ''))).toBe(true);
    expect(errorsOf(va.validate(obs('100066-0'), [withUsage.url]).issues)).toEqual([]);
  });
});
