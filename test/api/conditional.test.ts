import { FHIR_JSON, patient, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h.close());

const mrn = (v: string) => patient({ identifier: [{ system: 'http://hospital.example/mrn', value: v }] });

async function countByMrn(v: string): Promise<number> {
  const r = await h.request.get(
    `/fhir/Patient?identifier=${encodeURIComponent(`http://hospital.example/mrn|${v}`)}`,
  );
  expect(r.status).toBe(200);
  return r.body.total as number;
}

describe('conditional create (If-None-Exist)', () => {
  test('no match creates (201); one match returns the existing resource (200)', async () => {
    const first = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', 'identifier=http://hospital.example/mrn|C-1')
      .send(JSON.stringify(mrn('C-1')));
    expect(first.status).toBe(201);
    const second = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', 'identifier=http://hospital.example/mrn|C-1')
      .send(JSON.stringify(mrn('C-1')));
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(await countByMrn('C-1')).toBe(1);
  });

  test('several matches give 412', async () => {
    for (let i = 0; i < 2; i++)
      await h.request
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify(mrn('C-2')));
    const r = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', 'identifier=http://hospital.example/mrn|C-2')
      .send(JSON.stringify(mrn('C-2')));
    expect(r.status).toBe(412);
    expect(await countByMrn('C-2')).toBe(2);
  });

  test('concurrent conditional creates with the same criteria make exactly one resource and no 5xx', async () => {
    const results = await Promise.all(
      Array.from({ length: 16 }, () =>
        h.request
          .post('/fhir/Patient')
          .set('Content-Type', FHIR_JSON)
          .set('If-None-Exist', 'identifier=http://hospital.example/mrn|C-RACE')
          .send(JSON.stringify(mrn('C-RACE'))),
      ),
    );
    expect(results.every((r) => r.status === 200 || r.status === 201)).toBe(true);
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(await countByMrn('C-RACE')).toBe(1);
  });

  test('after the match is deleted, a conditional create makes a new resource', async () => {
    const a = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', 'identifier=http://hospital.example/mrn|C-3')
      .send(JSON.stringify(mrn('C-3')));
    await h.request.delete(`/fhir/Patient/${a.body.id}`);
    const b = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', 'identifier=http://hospital.example/mrn|C-3')
      .send(JSON.stringify(mrn('C-3')));
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
  });

  test('unknown parameters in the criteria are 400, never a wider match', async () => {
    const r = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', 'no-such-param=1')
      .send(JSON.stringify(mrn('C-4')));
    expect(r.status).toBe(400);
  });
});

describe('conditional update', () => {
  test('no match and no id creates; one match updates it; many give 412', async () => {
    const url = `/fhir/Patient?identifier=${encodeURIComponent('http://hospital.example/mrn|U-1')}`;
    const c = await h.request
      .put(url)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(mrn('U-1')));
    expect(c.status).toBe(201);
    const u = await h.request
      .put(url)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...mrn('U-1'), gender: 'male' }));
    expect(u.status).toBe(200);
    expect(u.body.id).toBe(c.body.id);
    expect(u.body.meta.versionId).toBe('2');
    await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(mrn('U-1')));
    const many = await h.request
      .put(url)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(mrn('U-1')));
    expect(many.status).toBe(412);
  });

  test('one match whose id differs from the body id is 400', async () => {
    const url = `/fhir/Patient?identifier=${encodeURIComponent('http://hospital.example/mrn|U-2')}`;
    await h.request
      .put(url)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(mrn('U-2')));
    const r = await h.request
      .put(url)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...mrn('U-2'), id: 'someone-else' }));
    expect(r.status).toBe(400);
  });
});

describe('conditional delete', () => {
  test('one match is deleted; many give 412; none is 200 with an OperationOutcome', async () => {
    const one = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(mrn('D-1')));
    const d = await h.request.delete(
      `/fhir/Patient?identifier=${encodeURIComponent('http://hospital.example/mrn|D-1')}`,
    );
    expect(d.status).toBe(204);
    expect((await h.request.get(`/fhir/Patient/${one.body.id}`)).status).toBe(410);
    for (let i = 0; i < 2; i++)
      await h.request
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify(mrn('D-2')));
    const many = await h.request.delete(
      `/fhir/Patient?identifier=${encodeURIComponent('http://hospital.example/mrn|D-2')}`,
    );
    expect(many.status).toBe(412);
    expect(await countByMrn('D-2')).toBe(2);
    const none = await h.request.delete(
      `/fhir/Patient?identifier=${encodeURIComponent('http://hospital.example/mrn|D-none')}`,
    );
    expect(none.status).toBe(200);
    expect(none.body.resourceType).toBe('OperationOutcome');
  });
});
