import type { ImplementationGuide } from 'fhir/r4';
import {
  errorLines,
  errorsOf,
  fixture,
  observation,
  observationProfile,
  studyResources,
  validatorWith,
  warningsOf,
} from './helpers';

/** Profiles (profiling.html): what a StructureDefinition constraint adds to the base definition. */
const P = 'http://example.org/fhir/StructureDefinition/';

const limits = observationProfile('limits', [
  { id: 'Observation.identifier', min: 1 },
  { id: 'Observation.identifier.value', maxLength: 5 },
  { id: 'Observation.value[x]', type: [{ code: 'integer' }], minValueInteger: 0, maxValueInteger: 10 },
  { id: 'Observation.note', max: '0' },
]);

const byValue = observationProfile('by-value', [
  {
    id: 'Observation.component',
    slicing: { discriminator: [{ type: 'value', path: 'code.coding.code' }], rules: 'closed' },
  },
  { id: 'Observation.component:systolic', sliceName: 'systolic', min: 1, max: '1' },
  { id: 'Observation.component:systolic.code.coding.code', fixedCode: '8480-6' },
  { id: 'Observation.component:diastolic', sliceName: 'diastolic', min: 0, max: '1' },
  { id: 'Observation.component:diastolic.code.coding.code', fixedCode: '8462-4' },
]);

const byType = observationProfile('by-type', [
  {
    id: 'Observation.value[x]',
    slicing: { discriminator: [{ type: 'type', path: '$this' }], rules: 'closed' },
  },
  { id: 'Observation.value[x]:valueQuantity', sliceName: 'valueQuantity', type: [{ code: 'Quantity' }] },
  { id: 'Observation.value[x]:valueQuantity.unit', min: 1 },
]);

const byProfile = observationProfile('by-profile', [
  {
    id: 'Observation.extension',
    slicing: { discriminator: [{ type: 'profile', path: '$this' }], rules: 'open' },
  },
  {
    id: 'Observation.extension:visit',
    sliceName: 'visit',
    min: 1,
    max: '1',
    type: [{ code: 'Extension', profile: [`${P}study-visit`] }],
  },
]);

const byExists = observationProfile('by-exists', [
  {
    id: 'Observation.component',
    slicing: { discriminator: [{ type: 'exists', path: 'value' }], rules: 'open' },
  },
  { id: 'Observation.component:measured', sliceName: 'measured', min: 0, max: '1' },
  { id: 'Observation.component:measured.value[x]', min: 1 },
]);

const v = validatorWith([...studyResources(), limits, byValue, byType, byProfile, byExists]);

function check(profile: string, r: Record<string, unknown>): string[] {
  return errorLines(v, r, [`${P}${profile}`]);
}

const component = (code: string, value?: number): Record<string, unknown> => ({
  code: { coding: [{ system: 'http://loinc.org', code }] },
  ...(value === undefined ? {} : { valueQuantity: { value, unit: 'mm[Hg]' } }),
});

describe('profiles', () => {
  test('the shipped example conforms to the shipped study profile', () => {
    expect(errorsOf(v.validate(fixture('validation-study-heart-rate.json')).issues)).toEqual([]);
  });

  test('profiles in meta.profile are checked without being asked for', () => {
    const r = fixture('validation-study-heart-rate.json');
    r.status = 'amended';
    expect(errorsOf(v.validate(r).issues).map((i) => i.expression?.[0])).toEqual(['Observation.status']);
  });

  test('a profile the server does not hold gives a warning, not an error', () => {
    const r = observation({ meta: { profile: ['http://nowhere.example/StructureDefinition/x'] } });
    const { issues } = v.validate(r);
    expect(errorsOf(issues)).toEqual([]);
    expect(
      warningsOf(issues)
        .map((i) => i.diagnostics)
        .join(),
    ).toMatch(/not known to this server/);
  });

  test('cardinality: min raised and max lowered by the profile', () => {
    expect(check('limits', observation({ identifier: [{ value: 'a' }], valueInteger: 1 }))).toEqual([]);
    expect(check('limits', observation({ valueInteger: 1 }))[0]).toMatch(
      /^Observation\.identifier: .*minimum required = 1/,
    );
    expect(
      check(
        'limits',
        observation({ identifier: [{ value: 'a' }], valueInteger: 1, note: [{ text: 'n' }] }),
      )[0],
    ).toMatch(/maximum allowed = 0/);
  });

  test('types: a choice restricted by the profile', () => {
    expect(check('limits', observation({ identifier: [{ value: 'a' }], valueString: 'x' }))[0]).toMatch(
      /Unrecognised element 'valueString'/,
    );
  });

  test('maxLength', () => {
    expect(check('limits', observation({ identifier: [{ value: 'abcdef' }], valueInteger: 1 }))[0]).toMatch(
      /^Observation\.identifier\[0\]\.value: .*length 6 exceeds maxLength 5/,
    );
  });

  test('minValue and maxValue', () => {
    expect(check('limits', observation({ identifier: [{ value: 'a' }], valueInteger: 11 }))[0]).toMatch(
      /above the maximum 10/,
    );
    expect(check('limits', observation({ identifier: [{ value: 'a' }], valueInteger: -1 }))[0]).toMatch(
      /below the minimum 0/,
    );
  });

  test('fixed values must match exactly', () => {
    const r = fixture('validation-study-heart-rate.json');
    (r.valueQuantity as Record<string, unknown>).code = '/h';
    expect(errorsOf(v.validate(r).issues)[0]?.diagnostics).toMatch(/must be exactly "\/min"/);
  });

  test('pattern values must be contained in the value', () => {
    const r = fixture('validation-study-heart-rate.json');
    r.code = {
      coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'extra fields are fine' }],
      text: 'HR',
    };
    expect(errorsOf(v.validate(r).issues)).toEqual([]);
    r.code = { coding: [{ system: 'http://loinc.org', code: '8310-5' }] };
    expect(errorsOf(v.validate(r).issues)[0]?.diagnostics).toMatch(/must match the pattern/);
  });

  test('target profiles of references', () => {
    const r = fixture('validation-study-heart-rate.json');
    r.subject = { reference: 'Group/g1' };
    expect(errorsOf(v.validate(r).issues)[0]?.diagnostics).toMatch(
      /reference to Group is not allowed here \(allowed: Patient\)/,
    );
  });

  test('slicing by value: slices are recognised and their cardinality checked', () => {
    expect(
      check('by-value', observation({ component: [component('8480-6', 120), component('8462-4', 80)] })),
    ).toEqual([]);
    expect(check('by-value', observation({ component: [component('8462-4', 80)] }))[0]).toMatch(
      /Slice 'systolic' of Observation\.component: minimum required = 1, but only found 0/,
    );
    expect(
      check('by-value', observation({ component: [component('8480-6', 1), component('8480-6', 2)] }))[0],
    ).toMatch(/Slice 'systolic'.*maximum allowed = 1, but found 2/);
  });

  test('closed slicing: an item in no slice is an error', () => {
    expect(
      check('by-value', observation({ component: [component('8480-6', 120), component('9999-9', 1)] }))[0],
    ).toMatch(/^Observation\.component\[1\]: .*does not match any slice of a closed slicing/);
  });

  test('slicing by pattern (category VSCat in the study profile)', () => {
    const r = fixture('validation-study-heart-rate.json');
    r.category = [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'exam' }] },
    ];
    expect(errorsOf(v.validate(r).issues)[0]?.diagnostics).toMatch(
      /Slice 'VSCat' of Observation\.category: minimum required = 1/,
    );
  });

  test('slicing by type: the slice of the JSON type applies its own constraints', () => {
    expect(check('by-type', observation({ valueQuantity: { value: 1, unit: 'kg' } }))).toEqual([]);
    expect(check('by-type', observation({ valueQuantity: { value: 1 } }))[0]).toMatch(
      /^Observation\.value\.ofType\(Quantity\)\.unit: .*minimum required = 1/,
    );
    expect(check('by-type', observation({ valueString: 'x' }))[0]).toMatch(
      /does not match any slice of a closed slicing/,
    );
  });

  test('slicing by profile: an item belongs to the slice when it conforms to the slice profile', () => {
    const ext = (valueCode: string): Record<string, unknown> => ({ url: `${P}study-visit`, valueCode });
    expect(check('by-profile', observation({ extension: [ext('week-4')] }))).toEqual([]);
    // An extension that fails the profile matches no slice, so the required slice is missing.
    expect(check('by-profile', observation({ extension: [ext('unscheduled')] })).join()).toMatch(
      /Slice 'visit'.*minimum required = 1/,
    );
  });

  test('slicing by exists: items with a value belong to the slice', () => {
    expect(check('by-exists', observation({ component: [component('1', 1), component('2')] }))).toEqual([]);
    expect(check('by-exists', observation({ component: [component('1', 1), component('2', 2)] }))[0]).toMatch(
      /Slice 'measured'.*maximum allowed = 1, but found 2/,
    );
  });

  test('extensions are checked against their definition by URL', () => {
    const r = observation({ extension: [{ url: `${P}study-visit`, valueString: 'week-4' }] });
    expect(
      errorsOf(v.validate(r).issues)
        .map((i) => i.diagnostics)
        .join(),
    ).toMatch(/Unrecognised element 'valueString'/);
    const ok = observation({ extension: [{ url: `${P}study-visit`, valueCode: 'week-4' }] });
    expect(errorsOf(v.validate(ok).issues)).toEqual([]);
  });

  test('extensions the server does not know are accepted', () => {
    expect(
      errorsOf(
        v.validate(observation({ extension: [{ url: 'http://unknown.example/e', valueString: 'x' }] }))
          .issues,
      ),
    ).toEqual([]);
  });

  test('a profile for another resource type is an error', () => {
    expect(check('limits', { resourceType: 'Patient' })[0]).toMatch(/is for Observation, not Patient/);
  });
});

describe('global profiles (ImplementationGuide.global)', () => {
  const ig: ImplementationGuide = {
    resourceType: 'ImplementationGuide',
    url: 'http://example.org/fhir/ImplementationGuide/study',
    name: 'Study',
    status: 'active',
    packageId: 'example.study',
    fhirVersion: ['4.0.1'],
    global: [{ type: 'Observation', profile: `${P}limits` }],
  };
  const withIg = validatorWith([limits, ig]);

  test('apply to every resource of the type, without meta.profile, as profile errors', () => {
    const r = withIg.validate(observation({ valueInteger: 11 }));
    expect(r.errors).toEqual({ base: 0, profile: 2 }); // identifier missing, value above 10
    expect(
      withIg.validate(observation({ identifier: [{ value: 'a' }], valueInteger: 3 })).errors.profile,
    ).toBe(0);
  });

  test('and to nothing else', () => {
    expect(withIg.validate({ resourceType: 'Patient' }).errors).toEqual({ base: 0, profile: 0 });
    expect(validatorWith([limits]).validate(observation({ valueInteger: 11 })).errors.profile).toBe(0);
  });
});
