import { FHIR_JSON, startHarness, type Harness } from './harness';

let h: Harness;
const ids: Record<string, string> = {};

async function post(resource: Record<string, unknown>): Promise<string> {
  const r = await h.request
    .post(`/fhir/${resource.resourceType as string}`)
    .set('Content-Type', FHIR_JSON)
    .send(JSON.stringify(resource));
  expect(r.status).toBe(201);
  return r.body.id as string;
}

function obs(subject: string, code: string, value: number, date: string): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' },
        ],
      },
    ],
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: `Patient/${subject}` },
    effectiveDateTime: date,
    valueQuantity: { value, unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
  };
}

beforeAll(async () => {
  h = await startHarness();
  ids.org = await post({ resourceType: 'Organization', name: 'General Hospital' });
  ids.anna = await post({
    resourceType: 'Patient',
    name: [{ family: 'Smith', given: ['Anna'] }],
    birthDate: '1980-02-29',
    gender: 'female',
    managingOrganization: { reference: `Organization/${ids.org}` },
  });
  ids.jose = await post({
    resourceType: 'Patient',
    name: [{ family: 'Núñez', given: ['José'] }],
    birthDate: '2001-07-04',
    gender: 'male',
  });
  for (let i = 0; i < 5; i++)
    await post(obs(ids.anna, '8480-6', 110 + i * 10, `2024-0${i + 1}-15T10:00:00Z`));
  await post(obs(ids.jose, '8480-6', 150, '2024-02-01T10:00:00Z'));
  await post(obs(ids.jose, '8462-4', 80, '2024-02-01T10:00:00Z'));
});
afterAll(async () => h.close());

const entries = (body: {
  entry?: Array<{ resource: { resourceType: string; id: string }; search?: { mode: string } }>;
}) => body.entry ?? [];

describe('search over HTTP', () => {
  test('string search is case- and accent-insensitive starts-with', async () => {
    const r = await h.request.get('/fhir/Patient?family=nun');
    expect(r.status).toBe(200);
    expect(r.body.type).toBe('searchset');
    expect(entries(r.body).map((e) => e.resource.id)).toEqual([ids.jose]);
  });

  test('date prefixes compare ranges', async () => {
    const r = await h.request.get('/fhir/Patient?birthdate=ge2000');
    expect(entries(r.body).map((e) => e.resource.id)).toEqual([ids.jose]);
  });

  test('token and reference parameters AND together', async () => {
    const r = await h.request.get(
      `/fhir/Observation?code=http://loinc.org|8480-6&subject=Patient/${ids.jose}`,
    );
    expect(r.body.total).toBe(1);
  });

  test('quantity search with a prefix', async () => {
    const r = await h.request.get('/fhir/Observation?value-quantity=gt135|http://unitsofmeasure.org|mm[Hg]');
    expect(r.body.total).toBe(3); // 140 and 150 of Anna, 150 of José
  });

  test('_sort, _count and next links page through all matches', async () => {
    const seen: string[] = [];
    let url: string | undefined = `/fhir/Observation?subject=Patient/${ids.anna}&_sort=-date&_count=2`;
    while (url) {
      const r = await h.request.get(url);
      expect(r.status).toBe(200);
      expect(r.body.total).toBe(5);
      for (const e of entries(r.body)) seen.push(e.resource.id);
      const next = (r.body.link as Array<{ relation: string; url: string }>).find(
        (l) => l.relation === 'next',
      );
      url = next ? next.url.replace('http://fhir.test', '') : undefined;
    }
    expect(new Set(seen).size).toBe(5);
    const first = await h.request.get(`/fhir/Observation?subject=Patient/${ids.anna}&_sort=-date&_count=1`);
    expect(first.body.entry[0].resource.effectiveDateTime).toBe('2024-05-15T10:00:00Z');
  });

  test('_include adds referenced resources with search mode include', async () => {
    const r = await h.request.get(`/fhir/Patient?_id=${ids.anna}&_include=Patient:organization`);
    const modes = entries(r.body).map((e) => `${e.resource.resourceType}:${e.search?.mode}`);
    expect(modes).toEqual(['Patient:match', 'Organization:include']);
  });

  test('_revinclude adds resources that refer to the matches', async () => {
    const r = await h.request.get(`/fhir/Patient?_id=${ids.jose}&_revinclude=Observation:subject`);
    expect(entries(r.body).filter((e) => e.search?.mode === 'include')).toHaveLength(2);
  });

  test('chaining follows a reference', async () => {
    const r = await h.request.get('/fhir/Observation?subject:Patient.family=smith');
    expect(r.body.total).toBe(5);
  });

  test('_has selects by resources that refer back', async () => {
    const r = await h.request.get('/fhir/Patient?_has:Observation:subject:code=8462-4');
    expect(entries(r.body).map((e) => e.resource.id)).toEqual([ids.jose]);
  });

  test('POST _search takes form parameters', async () => {
    const r = await h.request.post('/fhir/Patient/_search').type('form').send('gender=female');
    expect(r.status).toBe(200);
    expect(entries(r.body).map((e) => e.resource.id)).toEqual([ids.anna]);
  });

  test("the Patient compartment holds the patient's observations", async () => {
    const r = await h.request.get(`/fhir/Patient/${ids.jose}/Observation`);
    expect(r.body.total).toBe(2);
    const coded = await h.request.get(`/fhir/Patient/${ids.jose}/Observation?code=8462-4`);
    expect(coded.body.total).toBe(1);
  });

  test('system search with _type', async () => {
    const r = await h.request.get('/fhir?_type=Patient,Organization');
    expect(r.body.total).toBe(3);
  });

  test('_summary=count gives the total without entries', async () => {
    const r = await h.request.get('/fhir/Observation?_summary=count');
    expect(r.body.total).toBe(7);
    expect(r.body.entry).toBeUndefined();
  });

  test('unknown parameters are ignored and reported under lenient handling, 400 under strict', async () => {
    const lenient = await h.request.get('/fhir/Patient?nonsense=1');
    expect(lenient.status).toBe(200);
    expect(entries(lenient.body).some((e) => e.search?.mode === 'outcome')).toBe(true);
    const strict = await h.request.get('/fhir/Patient?nonsense=1').set('Prefer', 'handling=strict');
    expect(strict.status).toBe(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
  });

  test('deleted resources are not found by search', async () => {
    const id = await post({ resourceType: 'Patient', name: [{ family: 'Gone' }] });
    expect((await h.request.get('/fhir/Patient?family=gone')).body.total).toBe(1);
    await h.request.delete(`/fhir/Patient/${id}`);
    expect((await h.request.get('/fhir/Patient?family=gone')).body.total).toBe(0);
  });

  test('a malformed date is 400', async () => {
    const r = await h.request.get('/fhir/Patient?birthdate=notadate');
    expect(r.status).toBe(400);
    expect(r.body.resourceType).toBe('OperationOutcome');
  });
});
