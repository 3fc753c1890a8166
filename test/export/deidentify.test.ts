import type { Resource } from 'fhir/r4';
import { Deidentifier, PSEUDONYM_SYSTEM, Pseudonymizer } from '../../src/operations/deidentify';

const BASE = 'http://fhir.test/fhir';

function deidentifier(key = 'k1', referenceYear = 2026): Deidentifier {
  return new Deidentifier(new Pseudonymizer(Buffer.from(key)), { baseUrl: BASE, referenceYear });
}

function clean(resource: Record<string, unknown>, d = deidentifier()): Record<string, unknown> {
  return d.resource(resource as unknown as Resource) as unknown as Record<string, unknown>;
}

const synthPatient = {
  resourceType: 'Patient',
  id: 'abc-123',
  meta: { versionId: '3', lastUpdated: '2024-05-01T10:11:12.000Z', source: '#x' },
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Anna Smith</div>' },
  extension: [
    {
      url: 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName',
      valueString: 'Mary Jones',
    },
    {
      url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
      valueAddress: { city: 'Boston', state: 'Massachusetts', country: 'US' },
    },
  ],
  identifier: [
    { system: 'https://github.com/synthetichealth/synthea', value: 'b0c8f9c2-7d1c' },
    {
      type: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'SS' }],
        text: 'SSN',
      },
      system: 'http://hl7.org/fhir/sid/us-ssn',
      value: '999-12-3456',
    },
  ],
  name: [{ use: 'official', family: 'Smith', given: ['Anna'], prefix: ['Mrs.'] }],
  telecom: [{ system: 'phone', value: '555-123-4567', use: 'home' }],
  gender: 'female',
  birthDate: '1980-02-29',
  address: [
    {
      line: ['12 Main Street'],
      city: 'Springfield',
      postalCode: '01101',
      state: 'Massachusetts',
      country: 'US',
      extension: [
        {
          url: 'http://hl7.org/fhir/StructureDefinition/geolocation',
          extension: [
            { url: 'latitude', valueDecimal: 42.1 },
            { url: 'longitude', valueDecimal: -72.5 },
          ],
        },
      ],
    },
  ],
  maritalStatus: {
    coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }],
  },
  photo: [{ contentType: 'image/png', data: 'iVBORw0KGgo=' }],
  contact: [{ name: { family: 'Smith', given: ['Bob'] }, telecom: [{ system: 'phone', value: '555' }] }],
  generalPractitioner: [{ reference: 'Practitioner/doc-1', display: 'Dr. Who' }],
  managingOrganization: { reference: `${BASE}/Organization/org-1`, display: 'General Hospital' },
};

describe('safe-harbor de-identification', () => {
  const out = clean(synthPatient);
  const text = JSON.stringify(out);

  it('removes names (HumanName anywhere, and names in extensions)', () => {
    expect(out.name).toBeUndefined();
    expect(text).not.toMatch(/Smith|Anna|Bob|Mary Jones/);
  });

  it('keeps only the state and country of addresses (no line, city, zip or geolocation)', () => {
    expect(out.address).toEqual([{ state: 'Massachusetts', country: 'US' }]);
    expect(text).not.toMatch(/Main Street|Springfield|01101|Boston|42\.1|-72\.5/);
  });

  it('removes telecoms', () => {
    expect(out.telecom).toBeUndefined();
    expect(text).not.toContain('555');
  });

  it('reduces dates to the year', () => {
    expect(out.birthDate).toBe('1980');
    const obs = clean({
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
      effectivePeriod: { start: '2024-03-01T10:00:00Z', end: '2024-03-02' },
      issued: '2024-03-01T10:00:00.000Z',
    });
    expect(obs.effectivePeriod).toEqual({ start: '2024', end: '2024' });
    expect(obs.issued).toBeUndefined();
  });

  it('replaces identifiers by pseudonyms that are stable within an export', () => {
    const ids = out.identifier as Array<{ system: string; value: string; type?: unknown }>;
    expect(ids).toHaveLength(2);
    for (const i of ids) {
      expect(i.system).toBe(PSEUDONYM_SYSTEM);
      expect(i.value).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(text).not.toMatch(/b0c8f9c2|999-12-3456|SSN/);
    expect(clean(synthPatient).identifier).toEqual(out.identifier);
  });

  it('gives different pseudonyms in exports with different keys', () => {
    const other = clean(synthPatient, deidentifier('k2'));
    expect(other.id).not.toBe(out.id);
    expect(other.identifier).not.toEqual(out.identifier);
  });

  it('pseudonymises the id and rewrites references with the same function', () => {
    expect(out.id).toMatch(/^[0-9a-f]{32}$/);
    expect(out.id).not.toBe('abc-123');
    const obs = clean({ resourceType: 'Observation', id: 'o', subject: { reference: 'Patient/abc-123' } });
    expect(obs.subject).toEqual({ reference: `Patient/${out.id as string}` });
    const org = clean({ resourceType: 'Organization', id: 'org-1', name: 'General Hospital' });
    expect(out.managingOrganization).toEqual({ reference: `Organization/${org.id as string}` });
  });

  it('drops reference displays, narrative, notes and photos', () => {
    expect(text).not.toMatch(/Dr\. Who|<div/);
    expect(out.text).toBeUndefined();
    expect(out.photo).toBeUndefined();
    const cond = clean({
      resourceType: 'Condition',
      id: 'c',
      note: [{ text: 'patient lives with daughter Jane' }],
      code: {
        coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes' }],
        text: 'x',
      },
    });
    expect(cond.note).toBeUndefined();
    expect(cond.code).toEqual({
      coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes' }],
    });
  });

  it('removes the data and URL of attachments', () => {
    const doc = clean({
      resourceType: 'DocumentReference',
      id: 'd',
      status: 'current',
      content: [
        {
          attachment: {
            contentType: 'text/plain',
            data: 'SGVsbG8=',
            url: 'http://x/y',
            title: 'Notes of Anna',
          },
        },
      ],
    });
    expect(doc.content).toEqual([{ attachment: { contentType: 'text/plain' } }]);
  });

  it('aggregates ages over 89: the birth year becomes the reference year minus 90', () => {
    const old = clean({ ...synthPatient, birthDate: '1920-06-01' });
    expect(old.birthDate).toBe('1936');
    const dead = clean({ ...synthPatient, birthDate: '1900-06-01', deceasedDateTime: '1995-01-01' });
    expect(dead.birthDate).toBe('1905');
    const young = clean({ ...synthPatient, birthDate: '1937-06-01' });
    expect(young.birthDate).toBe('1937');
  });

  it('marks resources PSEUDED and drops meta.lastUpdated and source', () => {
    expect(out.meta).toEqual({
      security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'PSEUDED' }],
    });
  });

  it('drops references it cannot keep consistent (external URLs, conditional references)', () => {
    const r = clean({
      resourceType: 'Observation',
      id: 'o',
      subject: { reference: 'http://elsewhere.example/fhir/Patient/9' },
      performer: [{ reference: 'Practitioner?identifier=x|1' }],
    });
    expect(JSON.stringify(r)).not.toMatch(/elsewhere|identifier=x/);
  });

  it('leaves Binary and AuditEvent out of a de-identified export', () => {
    expect(
      deidentifier().resource({ resourceType: 'Binary', id: 'b', contentType: 'text/plain' } as Resource),
    ).toBeNull();
  });
});
