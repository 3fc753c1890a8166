import type { Encounter, Observation, Patient } from 'fhir/r4';
import { matches } from './helpers';

const bp: Observation = {
  resourceType: 'Observation',
  status: 'final',
  code: {
    coding: [{ system: 'http://loinc.org', code: '8480-6', display: 'Systolic blood pressure' }],
    text: 'Systolic BP',
  },
};
const patient: Patient = {
  resourceType: 'Patient',
  gender: 'female',
  active: true,
  identifier: [
    {
      system: 'http://hospital.example/mrn',
      value: 'MRN-1',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
    },
  ],
  telecom: [{ system: 'phone', value: '555-1234' }],
};

describe('token search', () => {
  it('code=8480-6 matches the code in any system', async () => {
    expect(await matches(bp, 'code=8480-6')).toBe(true);
  });
  it('code=http://loinc.org|8480-6 matches system and code', async () => {
    expect(await matches(bp, 'code=http://loinc.org|8480-6')).toBe(true);
  });
  it('code=http://snomed.info/sct|8480-6 does not match another system', async () => {
    expect(await matches(bp, 'code=http://snomed.info/sct|8480-6')).toBe(false);
  });
  it('code=http://loinc.org| matches any code of the system', async () => {
    expect(await matches(bp, 'code=http://loinc.org|')).toBe(true);
  });
  it('code=|8480-6 matches only codes without a system', async () => {
    expect(await matches(bp, 'code=|8480-6')).toBe(false);
    const local: Observation = { ...bp, code: { coding: [{ code: '8480-6' }] } };
    expect(await matches(local, 'code=|8480-6')).toBe(true);
  });
  it('codes are case-sensitive', async () => {
    expect(await matches(patient, 'gender=Female')).toBe(false);
  });
  it('gender=female matches a code primitive', async () => {
    expect(await matches(patient, 'gender=female')).toBe(true);
  });
  it("gender=http://hl7.org/fhir/administrative-gender|female: a code gets its required binding's system", async () => {
    expect(await matches(patient, 'gender=http://hl7.org/fhir/administrative-gender|female')).toBe(true);
    expect(await matches(patient, 'gender=http://example.org/other|female')).toBe(false);
  });
  it('status=http://hl7.org/fhir/observation-status|final matches an Observation status', async () => {
    expect(await matches(bp, 'status=http://hl7.org/fhir/observation-status|final')).toBe(true);
  });
  it('active=true matches a boolean', async () => {
    expect(await matches(patient, 'active=true')).toBe(true);
    expect(await matches(patient, 'active=false')).toBe(false);
  });
  it('status:not=final does not match a final Observation', async () => {
    expect(await matches(bp, 'status:not=final')).toBe(false);
    expect(await matches(bp, 'status:not=preliminary')).toBe(true);
  });
  it(':not matches resources with no value at all', async () => {
    expect(await matches({ resourceType: 'Patient' }, 'gender:not=male')).toBe(true);
  });
  it('code:text=systolic matches the display', async () => {
    expect(await matches(bp, 'code:text=systolic')).toBe(true);
  });
  it('code:text=blood matches a later word of the text', async () => {
    expect(await matches(bp, 'code:text=blood')).toBe(true);
  });
  it('code:text=diastolic does not match', async () => {
    expect(await matches(bp, 'code:text=diastolic')).toBe(false);
  });
  it('identifier=http://hospital.example/mrn|MRN-1 matches an Identifier', async () => {
    expect(await matches(patient, 'identifier=http://hospital.example/mrn|MRN-1')).toBe(true);
  });
  it('identifier=MRN-1 matches the value alone', async () => {
    expect(await matches(patient, 'identifier=MRN-1')).toBe(true);
  });
  it('identifier:of-type=v2-0203|MR|MRN-1 matches by identifier type', async () => {
    const q = 'identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-1';
    expect(await matches(patient, q)).toBe(true);
    expect(await matches(patient, q.replace('|MR|', '|SS|'))).toBe(false);
  });
  it('phone=555-1234 matches a ContactPoint', async () => {
    expect(await matches(patient, 'phone=555-1234')).toBe(true);
  });
  it('code:in a ValueSet of concepts matches a listed code', async () => {
    // observation-vitalsignresult lists LOINC codes, 8480-6 among them.
    expect(await matches(bp, 'code:in=http://hl7.org/fhir/ValueSet/observation-vitalsignresult')).toBe(true);
  });
  it('gender:in a ValueSet including a whole CodeSystem matches its codes', async () => {
    expect(await matches(patient, 'gender:in=http://hl7.org/fhir/ValueSet/administrative-gender')).toBe(true);
  });
  it('code:not-in the ValueSet does not match a listed code', async () => {
    expect(await matches(bp, 'code:not-in=http://hl7.org/fhir/ValueSet/observation-vitalsignresult')).toBe(
      false,
    );
  });
  it('_id=x matches the logical id', async () => {
    expect(await matches({ ...patient, id: 'p-1' }, '_id=p-1')).toBe(true);
    expect(await matches({ ...patient, id: 'p-1' }, '_id=p-2')).toBe(false);
  });
  it('_tag=system|code matches meta.tag', async () => {
    const tagged: Patient = {
      ...patient,
      meta: { tag: [{ system: 'http://example.org/tags', code: 'vip' }] },
    };
    expect(await matches(tagged, '_tag=http://example.org/tags|vip')).toBe(true);
  });
  it('class:below=v3-ActCode|_ActEncounterCode matches AMB (a descendant)', async () => {
    const enc: Encounter = {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    };
    const sys = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
    expect(await matches(enc, `class:below=${sys}|_ActEncounterCode`)).toBe(true);
    expect(await matches(enc, `class:below=${sys}|_ActAccountCode`)).toBe(false);
  });
  it('class:above=v3-ActCode|AMB matches the code itself; an ancestor code is above it', async () => {
    const sys = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
    const enc = (code: string): Encounter => ({
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: sys, code },
    });
    expect(await matches(enc('AMB'), `class:above=${sys}|AMB`)).toBe(true);
    expect(await matches(enc('_ActEncounterCode'), `class:above=${sys}|AMB`)).toBe(true);
    expect(await matches(enc('EMER'), `class:above=${sys}|AMB`)).toBe(false);
  });
  it('class:in a ValueSet defined by an is-a filter and an exclude (v3-ActEncounterCode)', async () => {
    const sys = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
    const vs = 'http://terminology.hl7.org/ValueSet/v3-ActEncounterCode';
    const enc = (code: string): Encounter => ({
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: sys, code },
    });
    expect(await matches(enc('AMB'), `class:in=${vs}`)).toBe(true);
    expect(await matches(enc('EMER'), `class:in=${vs}`)).toBe(true);
    // The filter's root is excluded; a code outside the hierarchy is not in it.
    expect(await matches(enc('_ActEncounterCode'), `class:in=${vs}`)).toBe(false);
    expect(await matches(enc('_ActAccountCode'), `class:in=${vs}`)).toBe(false);
    expect(await matches(enc('_ActEncounterCode'), `class:not-in=${vs}`)).toBe(true);
  });
  it(':in an unknown ValueSet is a 400', async () => {
    await expect(matches(bp, 'code:in=http://example.org/ValueSet/none')).rejects.toMatchObject({
      status: 400,
    });
  });
  it(':below on a code system the server does not hold is a 501', async () => {
    await expect(matches(bp, 'code:below=http://loinc.org|8480-6')).rejects.toMatchObject({ status: 501 });
  });
});
