import type { Observation, Organization, Patient } from 'fhir/r4';
import { matches } from './helpers';

const obs: Observation = {
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'x' },
  subject: { reference: 'Patient/p1' },
  performer: [
    { reference: 'https://other.example/fhir/Practitioner/dr1' },
    { identifier: { system: 'http://npi.example', value: '12345' } },
  ],
};

describe('reference search', () => {
  it('subject=Patient/p1 matches', async () => {
    expect(await matches(obs, 'subject=Patient/p1')).toBe(true);
  });
  it('subject=p1 matches the id alone', async () => {
    expect(await matches(obs, 'subject=p1')).toBe(true);
  });
  it('subject=Patient/p2 does not match', async () => {
    expect(await matches(obs, 'subject=Patient/p2')).toBe(false);
  });
  it('subject:Patient=p1 matches with a type modifier', async () => {
    expect(await matches(obs, 'subject:Patient=p1')).toBe(true);
    expect(await matches(obs, 'subject:Group=p1')).toBe(false);
  });
  it('patient=p1 matches (expression with resolve() is Patient)', async () => {
    expect(await matches(obs, 'patient=p1')).toBe(true);
  });
  it('patient does not match a subject that is a Group', async () => {
    const groupObs: Observation = { ...obs, subject: { reference: 'Group/p1' } };
    expect(await matches(groupObs, 'patient=p1')).toBe(false);
  });
  it('an absolute reference matches by its absolute URL', async () => {
    expect(await matches(obs, 'performer=https://other.example/fhir/Practitioner/dr1')).toBe(true);
  });
  it('an absolute URL whose tail is Type/id matches a relative reference', async () => {
    expect(await matches(obs, 'subject=https://this.example/fhir/Patient/p1')).toBe(true);
  });
  it('performer:identifier=system|value matches Reference.identifier', async () => {
    expect(await matches(obs, 'performer:identifier=http://npi.example|12345')).toBe(true);
    expect(await matches(obs, 'performer:identifier=http://npi.example|999')).toBe(false);
  });
  it('subject:missing=false matches an Observation with a subject', async () => {
    expect(await matches(obs, 'subject:missing=false')).toBe(true);
    expect(await matches(obs, 'focus:missing=true')).toBe(true);
  });
  it('operator-like ids stay strings: subject={"$ne":null} is an invalid reference', async () => {
    await expect(matches(obs, 'subject={"$ne":null}')).rejects.toThrow(/Invalid reference/);
  });
  it('a canonical reference matches with and without version', async () => {
    const plan = {
      resourceType: 'CarePlan',
      status: 'active',
      intent: 'plan',
      subject: { reference: 'Patient/p1' },
      instantiatesCanonical: ['http://example.org/PlanDefinition/base|2.0'],
    } as const;
    expect(await matches(plan, 'instantiates-canonical=http://example.org/PlanDefinition/base')).toBe(true);
    expect(await matches(plan, 'instantiates-canonical=http://example.org/PlanDefinition/base|2.0')).toBe(
      true,
    );
  });
});

describe('chaining', () => {
  const patient: Patient = {
    resourceType: 'Patient',
    id: 'p1',
    name: [{ family: 'Smith' }],
    managingOrganization: { reference: 'Organization/o1' },
  };
  const org: Organization = { resourceType: 'Organization', id: 'o1', name: 'Acme Clinic' };

  it('subject:Patient.name=smith matches an Observation of Smith', async () => {
    expect(await matches(obs, 'subject:Patient.name=smith', [patient])).toBe(true);
  });
  it('subject:Patient.name=jones does not match', async () => {
    expect(await matches(obs, 'subject:Patient.name=jones', [patient])).toBe(false);
  });
  it('subject.name=smith resolves the target type from the parameter', async () => {
    expect(await matches(obs, 'subject.name=smith', [patient])).toBe(true);
  });
  it('multi-level: patient.organization.name=acme', async () => {
    expect(await matches(obs, 'patient.organization.name=acme', [patient, org])).toBe(true);
    expect(await matches(obs, 'patient.organization.name=other', [patient, org])).toBe(false);
  });
});

describe('_has', () => {
  const patient: Patient = { resourceType: 'Patient', id: 'p1' };
  const bp: Observation = {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '1234-5' }] },
    subject: { reference: 'Patient/p1' },
  };
  it('_has:Observation:patient:code=1234-5 matches the patient', async () => {
    expect(await matches(patient, '_has:Observation:patient:code=1234-5', [bp])).toBe(true);
  });
  it('_has:Observation:patient:code=9999-9 does not match', async () => {
    expect(await matches(patient, '_has:Observation:patient:code=9999-9', [bp])).toBe(false);
  });
  it('nested _has: a Patient with an Observation that has a Provenance', async () => {
    const obsWithId: Observation = { ...bp, id: 'o9' };
    const prov = {
      resourceType: 'Provenance',
      target: [{ reference: 'Observation/o9' }],
      recorded: '2024-01-01T00:00:00Z',
      agent: [{ who: { reference: 'Practitioner/x' } }],
    } as const;
    const q = '_has:Observation:patient:_has:Provenance:target:agent=Practitioner/x';
    expect(await matches(patient, q, [obsWithId, prov])).toBe(true);
  });
});

describe('_list', () => {
  const patient: Patient = { resourceType: 'Patient', id: 'p1' };
  const list = {
    resourceType: 'List',
    id: 'l1',
    status: 'current',
    mode: 'working',
    entry: [{ item: { reference: 'Patient/p1' } }],
  } as const;
  it('_list=l1 matches a member of the List', async () => {
    expect(await matches(patient, '_list=l1', [list])).toBe(true);
  });
  it('_list=l2 does not match when the List does not hold it', async () => {
    expect(await matches(patient, '_list=l2', [list])).toBe(false);
  });
});
