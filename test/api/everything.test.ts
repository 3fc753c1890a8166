import type { Bundle } from 'fhir/r4';
import { patient, startHarness, type Harness } from './harness';
import { patientPolicy, put, withPolicy } from '../export/helpers';

let h: Harness;

function encounter(id: string, start: string, end: string, subject = 'Patient/e1'): Record<string, unknown> {
  return {
    resourceType: 'Encounter',
    id,
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject: { reference: subject },
    period: { start, end },
    serviceProvider: { reference: 'Organization/org1' },
    location: [{ location: { reference: 'Location/loc1' } }],
    participant: [{ individual: { reference: 'Practitioner/dr1' } }],
  };
}

beforeAll(async () => {
  h = await startHarness({ AUDIT: 'off' });
  await put(h.request, { ...patient(), id: 'e1', managingOrganization: { reference: 'Organization/org1' } });
  await put(h.request, { ...patient(), id: 'e2' });
  await put(h.request, { resourceType: 'Organization', id: 'org1', name: 'Hospital' });
  await put(h.request, { resourceType: 'Organization', id: 'org2', name: 'Unrelated' });
  await put(h.request, { resourceType: 'Location', id: 'loc1', name: 'Ward 1' });
  await put(h.request, { resourceType: 'Practitioner', id: 'dr1', name: [{ family: 'Who' }] });
  await put(h.request, { resourceType: 'Medication', id: 'med1', code: { text: 'aspirin' } });
  await put(h.request, encounter('enc2019', '2019-05-01T10:00:00Z', '2019-05-01T11:00:00Z'));
  await put(h.request, encounter('enc2021', '2021-05-01T10:00:00Z', '2021-05-03T11:00:00Z'));
  await put(h.request, encounter('enc2023', '2023-05-01T10:00:00Z', '2023-05-01T11:00:00Z'));
  await put(h.request, encounter('other', '2021-05-01T10:00:00Z', '2021-05-01T11:00:00Z', 'Patient/e2'));
  await put(h.request, {
    resourceType: 'MedicationRequest',
    id: 'mr1',
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/e1' },
    medicationReference: { reference: 'Medication/med1' },
    authoredOn: '2021-06-01',
  });
});

afterAll(async () => {
  await h.close();
});

function ids(b: Bundle): string[] {
  return (b.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);
}

describe('Patient/[id]/$everything', () => {
  it('returns the patient, its compartment and the referenced Practitioner, Organization, Location, Medication', async () => {
    const res = await h.request.get('/fhir/Patient/e1/$everything');
    expect(res.status).toBe(200);
    const b = res.body as Bundle;
    expect(b.type).toBe('searchset');
    expect(ids(b).sort()).toEqual(
      [
        'Patient/e1',
        'Encounter/enc2019',
        'Encounter/enc2021',
        'Encounter/enc2023',
        'MedicationRequest/mr1',
        'Organization/org1',
        'Location/loc1',
        'Practitioner/dr1',
        'Medication/med1',
      ].sort(),
    );
    expect(b.total).toBe(9);
    expect(ids(b)[0]).toBe('Patient/e1');
  });

  it('pages with _count and next links that together give every resource once', async () => {
    const seen: string[] = [];
    let url: string | undefined = '/fhir/Patient/e1/$everything?_count=4';
    let pages = 0;
    while (url) {
      const res = await h.request.get(url);
      expect(res.status).toBe(200);
      const b = res.body as Bundle;
      expect((b.entry ?? []).length).toBeLessThanOrEqual(4);
      seen.push(...ids(b));
      const next = b.link?.find((l) => l.relation === 'next')?.url;
      url = next ? new URL(next).pathname + new URL(next).search : undefined;
      pages++;
    }
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(9);
    expect(seen).toHaveLength(9);
  });

  it('start and end keep the resources whose clinical date overlaps them (and undated ones)', async () => {
    const res = await h.request.get('/fhir/Patient/e1/$everything?start=2020-01-01&end=2021-12-31');
    const got = ids(res.body as Bundle);
    expect(got).toEqual(expect.arrayContaining(['Patient/e1', 'Encounter/enc2021', 'MedicationRequest/mr1']));
    expect(got).not.toContain('Encounter/enc2019');
    expect(got).not.toContain('Encounter/enc2023');
  });

  it('_type limits the resource types', async () => {
    const res = await h.request.get('/fhir/Patient/e1/$everything?_type=Encounter,Location');
    expect(ids(res.body as Bundle).sort()).toEqual(
      ['Encounter/enc2019', 'Encounter/enc2021', 'Encounter/enc2023', 'Location/loc1'].sort(),
    );
  });

  it('_since keeps only resources changed after the instant', async () => {
    const before = (await h.request.get('/fhir/MedicationRequest/mr1')).body as {
      meta: { lastUpdated: string };
    };
    let after = await put(h.request, {
      ...encounter('enc2021', '2021-05-01T10:00:00Z', '2021-05-03T11:00:00Z'),
    });
    while ((after.meta as { lastUpdated: string }).lastUpdated <= before.meta.lastUpdated)
      after = await put(h.request, encounter('enc2021', '2021-05-01T10:00:00Z', '2021-05-03T11:00:00Z'));
    const since = encodeURIComponent(before.meta.lastUpdated);
    const res = await h.request.get(`/fhir/Patient/e1/$everything?_since=${since}`);
    expect(ids(res.body as Bundle)).toEqual(['Encounter/enc2021']);
  });

  it('is 404 for an unknown patient', async () => {
    const res = await h.request.get('/fhir/Patient/nobody/$everything');
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('is 404 for a patient outside a patient-scoped token', async () => {
    const api = withPolicy(h.ctx, patientPolicy(h.ctx, 'e2'));
    expect((await api.get('/fhir/Patient/e1/$everything')).status).toBe(404);
    expect((await api.get('/fhir/Patient/e2/$everything')).status).toBe(200);
  });

  it('refuses unknown parameters (400)', async () => {
    expect((await h.request.get('/fhir/Patient/e1/$everything?foo=bar')).status).toBe(400);
    expect((await h.request.get('/fhir/Patient/e1/$everything?start=notadate')).status).toBe(400);
  });
});
