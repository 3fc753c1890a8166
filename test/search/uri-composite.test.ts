import type { Observation, Patient, ValueSet } from 'fhir/r4';
import { matches } from './helpers';

const vs: ValueSet = { resourceType: 'ValueSet', status: 'active', url: 'http://acme.org/fhir/ValueSet/123' };

describe('uri search', () => {
  it('url=http://acme.org/fhir/ValueSet/123 matches exactly', async () => {
    expect(await matches(vs, 'url=http://acme.org/fhir/ValueSet/123')).toBe(true);
    expect(await matches(vs, 'url=http://acme.org/fhir/ValueSet/12')).toBe(false);
  });
  it('url:below=http://acme.org/fhir/ matches everything under it', async () => {
    expect(await matches(vs, 'url:below=http://acme.org/fhir/')).toBe(true);
    expect(await matches(vs, 'url:below=http://acme.org/fhir/ValueSet/12')).toBe(false);
  });
  it('url:above=http://acme.org/fhir/ValueSet/123/_history/5 matches its ancestors', async () => {
    const base: ValueSet = { ...vs, url: 'http://acme.org/fhir/' };
    expect(await matches(base, 'url:above=http://acme.org/fhir/ValueSet/123/_history/5')).toBe(true);
    expect(await matches(vs, 'url:above=http://acme.org/fhir/ValueSet/123/_history/5')).toBe(true);
    expect(await matches(vs, 'url:above=http://acme.org/fhir/CodeSystem/1')).toBe(false);
  });
  it('_profile=url matches meta.profile', async () => {
    const p: Patient = {
      resourceType: 'Patient',
      meta: { profile: ['http://example.org/StructureDefinition/p'] },
    };
    expect(await matches(p, '_profile=http://example.org/StructureDefinition/p')).toBe(true);
  });
});

const bp: Observation = {
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
  component: [
    {
      code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] },
      valueQuantity: { value: 120, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
    },
    {
      code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] },
      valueQuantity: { value: 80, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
    },
  ],
};

describe('composite search', () => {
  it('component-code-value-quantity=http://loinc.org|8480-6$gt100 matches a systolic of 120', async () => {
    expect(await matches(bp, 'component-code-value-quantity=http://loinc.org|8480-6$gt100')).toBe(true);
  });
  it('components match within one tuple: diastolic 80 is not gt100', async () => {
    expect(await matches(bp, 'component-code-value-quantity=http://loinc.org|8462-4$gt100')).toBe(false);
  });
  it('code-value-quantity on the Observation itself', async () => {
    const weight: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
      valueQuantity: { value: 70, system: 'http://unitsofmeasure.org', code: 'kg' },
    };
    expect(
      await matches(weight, 'code-value-quantity=http://loinc.org|29463-7$70|http://unitsofmeasure.org|kg'),
    ).toBe(true);
    expect(await matches(weight, 'code-value-quantity=http://loinc.org|29463-7$lt60')).toBe(false);
  });
  it('code-value-concept matches a coded value', async () => {
    const o: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '72166-2' }] },
      valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '449868002' }] },
    };
    expect(
      await matches(o, 'code-value-concept=http://loinc.org|72166-2$http://snomed.info/sct|449868002'),
    ).toBe(true);
  });
  it('a composite value with the wrong number of components is a 400', async () => {
    await expect(matches(bp, 'component-code-value-quantity=8480-6')).rejects.toThrow(/takes 2/);
  });
});

describe('composite with a date component', () => {
  // The helpers' clock is 2024-06-01: `ap` on 2023-07-01 allows 10% of the 11 months to now
  // (about 33 days), whatever the date the test runs on.
  const dated: Observation = {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
    valueDateTime: '2023-06-10',
  };
  it('ap uses the search clock, not the wall clock', async () => {
    expect(await matches(dated, 'code-value-date=http://loinc.org|29463-7$ap2023-07-01')).toBe(true);
    const april: Observation = { ...dated, valueDateTime: '2023-04-01' };
    expect(await matches(april, 'code-value-date=http://loinc.org|29463-7$ap2023-07-01')).toBe(false);
  });
});
