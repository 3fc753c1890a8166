import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FHIR_JSON, patient, startHarness, type Harness } from './harness';

/** Validation on write and the $validate operation (resource-operation-validate). */
const STUDY = path.join(__dirname, '../../profiles/study-heart-rate.json');
const study = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../../fixtures/validation-study-heart-rate.json'), 'utf8'),
) as Record<string, unknown>;

async function harnessWithStudyProfile(env: Record<string, string> = {}): Promise<Harness> {
  // The server reads PROFILES_DIR at start: give it the shipped profile.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-profiles-'));
  fs.copyFileSync(STUDY, path.join(dir, 'study-heart-rate.json'));
  return startHarness({ PROFILES_DIR: dir, ...env });
}

describe('validation on write', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harnessWithStudyProfile();
  });
  afterAll(async () => h.close());

  const post = (type: string, body: unknown) =>
    h.request.post(`/fhir/${type}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));

  test('an invalid resource is rejected with 400 and an OperationOutcome with expressions; nothing is stored', async () => {
    const r = await post('Patient', patient({ birthDate: '1980-13-01', colour: 'blue' }));
    expect(r.status).toBe(400);
    expect(r.body.resourceType).toBe('OperationOutcome');
    const exprs = (r.body.issue as Array<{ expression?: string[]; severity: string }>)
      .filter((i) => i.severity === 'error')
      .map((i) => i.expression?.[0]);
    expect(exprs.sort()).toEqual(['Patient.birthDate', 'Patient.colour']);
    const s = await h.request.get('/fhir/Patient');
    expect(s.body.total ?? s.body.entry?.length ?? 0).toBe(0);
  });

  test('a resource that fails only its claimed profile is rejected with 422', async () => {
    const r = await post('Observation', { ...study, status: 'amended' });
    expect(r.status).toBe(422);
    expect(r.body.issue[0]).toMatchObject({ severity: 'error', expression: ['Observation.status'] });
  });

  test('a resource that meets its claimed profile is stored', async () => {
    expect((await post('Observation', study)).status).toBe(201);
  });

  test('an unknown profile in meta.profile does not fail a write', async () => {
    const r = await post(
      'Patient',
      patient({ meta: { profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient'] } }),
    );
    expect(r.status).toBe(201);
  });

  test('update and patch are validated too', async () => {
    const c = await post('Patient', patient());
    const id = c.body.id as string;
    const u = await h.request
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...c.body, gender: 'mail' }));
    expect(u.status).toBe(400);
    const p = await h.request
      .patch(`/fhir/Patient/${id}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'add', path: '/active', value: 'yes' }]));
    expect(p.status).toBe(400);
    const g = await h.request.get(`/fhir/Patient/${id}`);
    expect(g.body.meta.versionId).toBe('1');
  });
});

describe('VALIDATION modes', () => {
  test('lenient: profile failures do not reject, structural errors still do', async () => {
    const h = await harnessWithStudyProfile({ VALIDATION: 'lenient' });
    try {
      const ok = await h.request
        .post('/fhir/Observation')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify({ ...study, status: 'amended' }));
      expect(ok.status).toBe(201);
      const bad = await h.request
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify(patient({ colour: 'x' })));
      expect(bad.status).toBe(400);
    } finally {
      await h.close();
    }
  });

  test('off: only the JSON representation rules apply', async () => {
    const h = await startHarness({ VALIDATION: 'off' });
    try {
      const ok = await h.request
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify(patient({ colour: 'x' })));
      expect(ok.status).toBe(201);
      const bad = await h.request
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify(patient({ name: [] })));
      expect(bad.status).toBe(400);
    } finally {
      await h.close();
    }
  });
});

describe('$validate', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harnessWithStudyProfile();
  });
  afterAll(async () => h.close());

  test('POST [type]/$validate with a valid resource: 200 and an information issue', async () => {
    const r = await h.request
      .post('/fhir/Patient/$validate')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    expect(r.status).toBe(200);
    expect(r.body.resourceType).toBe('OperationOutcome');
    expect(r.body.issue.every((i: { severity: string }) => i.severity !== 'error')).toBe(true);
  });

  test('an invalid resource still gives 200, with the errors', async () => {
    const r = await h.request
      .post('/fhir/Patient/$validate')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient({ gender: 'x' })));
    expect(r.status).toBe(200);
    expect(r.body.issue.find((i: { severity: string }) => i.severity === 'error')).toMatchObject({
      code: 'code-invalid',
      expression: ['Patient.gender'],
    });
  });

  test('Parameters with resource and profile validate against the profile asked for', async () => {
    const obs = { ...study, meta: undefined, status: 'amended' };
    const body = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: obs },
        { name: 'profile', valueUri: 'http://example.org/fhir/StructureDefinition/study-heart-rate' },
      ],
    };
    const r = await h.request
      .post('/fhir/Observation/$validate')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(body));
    expect(r.status).toBe(200);
    expect(
      r.body.issue
        .filter((i: { severity: string }) => i.severity === 'error')
        .map((i: { expression: string[] }) => i.expression[0]),
    ).toEqual(['Observation.status']);
  });

  test('the profile may be given in the URL', async () => {
    const r = await h.request
      .post(
        '/fhir/Observation/$validate?profile=http://example.org/fhir/StructureDefinition/study-heart-rate',
      )
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...study, meta: undefined, effectiveDateTime: undefined }));
    expect(r.body.issue.some((i: { diagnostics: string }) => /shr-1/.test(i.diagnostics))).toBe(true);
  });

  test('[type]/[id]/$validate validates the stored resource (GET) and checks ids for mode=update', async () => {
    const c = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    const id = c.body.id as string;
    const g = await h.request.get(`/fhir/Patient/${id}/$validate`);
    expect(g.status).toBe(200);
    expect(g.body.issue.every((i: { severity: string }) => i.severity !== 'error')).toBe(true);
    const body = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'mode', valueCode: 'update' },
        { name: 'resource', resource: { ...c.body, id: 'other' } },
      ],
    };
    const u = await h.request
      .post(`/fhir/Patient/${id}/$validate`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(body));
    expect(u.status).toBe(200);
    expect(u.body.issue[0]).toMatchObject({ severity: 'error', expression: ['Patient.id'] });
  });

  test('$validate stores nothing', async () => {
    const before = await h.request.get('/fhir/Patient?_summary=count');
    await h.request
      .post('/fhir/Patient/$validate')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    const after = await h.request.get('/fhir/Patient?_summary=count');
    expect(after.body.total).toBe(before.body.total);
  });

  test('a resource of another type than the URL is 400', async () => {
    const r = await h.request
      .post('/fhir/Observation/$validate')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    expect(r.status).toBe(400);
  });

  test('$validate of a resource that does not exist is 404; GET [type]/$validate is 405', async () => {
    expect((await h.request.get('/fhir/Patient/nope/$validate')).status).toBe(404);
    expect((await h.request.get('/fhir/Patient/$validate')).status).toBe(405);
  });
});
