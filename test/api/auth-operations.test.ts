import { bulkRunnerFor } from '../../src/bulk/runner';
import { bearer, makeIssuer, patientToken, type TestIssuer } from '../auth/issuer';
import { download, exportAll, jobIdOf, type Agent } from '../export/helpers';
import { FHIR_JSON, startHarness, type Harness } from './harness';

/**
 * AUTH=smart end to end for the operations that gather many resources at once: $everything, bulk
 * export and transaction/batch entries, with tokens minted here. Patient A's token never reaches B.
 */
let iss: TestIssuer;
let h: Harness;
let system: string;
let asA: string;

type Entry = { resource?: { resourceType: string; id: string }; response?: { status: string } };

async function put(resource: Record<string, unknown>): Promise<void> {
  const res = await h.request
    .put(`/fhir/${resource.resourceType as string}/${resource.id as string}`)
    .set(bearer(system))
    .set('Content-Type', FHIR_JSON)
    .send(resource);
  expect([200, 201]).toContain(res.status);
}

/** supertest with the token set on every request (the export helpers take an agent). */
function withToken(token: string): Agent {
  const wrap = <T extends { set(h: Record<string, string>): T }>(r: T): T => r.set(bearer(token));
  return new Proxy(h.request, {
    get(target, prop: string) {
      const f = (target as unknown as Record<string, unknown>)[prop];
      if (typeof f !== 'function' || !['get', 'post', 'put', 'patch', 'delete'].includes(prop)) return f;
      return (url: string) =>
        wrap((f as (u: string) => { set(h: Record<string, string>): never }).call(target, url));
    },
  });
}

beforeAll(async () => {
  iss = await makeIssuer();
  h = await startHarness({ ...iss.env, AUDIT: 'off' });
  system = await iss.token({ scope: 'system/*.cruds' });
  await put({ resourceType: 'Practitioner', id: 'dr', name: [{ family: 'Doctor' }] });
  for (const p of ['pa', 'pb']) {
    await put({ resourceType: 'Patient', id: p, name: [{ family: `Family-${p}` }] });
    await put({
      resourceType: 'Observation',
      id: `obs-${p}`,
      status: 'final',
      code: { text: 'x' },
      subject: { reference: `Patient/${p}` },
      performer: [{ reference: 'Practitioner/dr' }],
    });
  }
  // In A's compartment, referring to B outside the compartment parameters.
  await put({
    resourceType: 'Observation',
    id: 'obs-pa-focus-pb',
    status: 'final',
    code: { text: 'x' },
    subject: { reference: 'Patient/pa' },
    focus: [{ reference: 'Patient/pb' }],
  });
  asA = await patientToken(iss, 'pa', 'patient/*.rs');
});

afterAll(async () => {
  await bulkRunnerFor(h.ctx).stop();
  await h.close();
  iss.cleanup();
});

describe('$everything', () => {
  test("of one's own record: the compartment and referenced shared resources, never the other patient", async () => {
    const res = await h.request.get('/fhir/Patient/pa/$everything').set(bearer(asA));
    expect(res.status).toBe(200);
    const got = (res.body.entry as Entry[])
      .map((e) => `${e.resource?.resourceType}/${e.resource?.id}`)
      .sort();
    expect(got).toContain('Patient/pa');
    expect(got).toContain('Observation/obs-pa');
    expect(got).not.toContain('Patient/pb');
    expect(got).not.toContain('Observation/obs-pb');
  });

  test("of another patient's record answers 404 like a missing patient", async () => {
    const other = await h.request.get('/fhir/Patient/pb/$everything').set(bearer(asA));
    const missing = await h.request.get('/fhir/Patient/nobody/$everything').set(bearer(asA));
    expect(other.status).toBe(404);
    expect(missing.status).toBe(404);
  });

  test('without a token answers 401', async () => {
    expect((await h.request.get('/fhir/Patient/pa/$everything')).status).toBe(401);
  });
});

describe('bulk export', () => {
  test('a patient token exports only its own compartment', async () => {
    const api = withToken(asA);
    const { manifest } = await exportAll(api, bulkRunnerFor(h.ctx), '/fhir/Patient/$export');
    const files = await download(api, manifest);
    expect(files.get('Patient')?.map((r) => r.id)).toEqual(['pa']);
    expect(
      files
        .get('Observation')
        ?.map((r) => r.id)
        .sort(),
    ).toEqual(['obs-pa', 'obs-pa-focus-pb']);
  });

  test('a patient token is refused a system level export (403)', async () => {
    const res = await h.request.get('/fhir/$export').set(bearer(asA)).set('Prefer', 'respond-async');
    expect(res.status).toBe(403);
  });

  test("another client cannot read a job's status or files", async () => {
    const kick = await h.request.get('/fhir/Patient/$export').set(bearer(asA)).set('Prefer', 'respond-async');
    const id = jobIdOf(kick);
    await bulkRunnerFor(h.ctx).settled(id);
    const b = await patientToken(iss, 'pb', 'patient/*.rs');
    expect((await h.request.get(`/fhir/$export-status/${id}`).set(bearer(b))).status).toBe(404);
    expect((await h.request.get(`/fhir/$export-status/${id}`)).status).toBe(401);
  });
});

describe('transaction and batch entries', () => {
  const bundle = (type: 'batch' | 'transaction', entry: unknown[]) => ({
    resourceType: 'Bundle',
    type,
    entry,
  });

  test("batch reads of another patient's resources answer 404 per entry", async () => {
    const res = await h.request
      .post('/fhir')
      .set(bearer(asA))
      .set('Content-Type', FHIR_JSON)
      .send(
        bundle('batch', [
          { request: { method: 'GET', url: 'Observation/obs-pa' } },
          { request: { method: 'GET', url: 'Observation/obs-pb' } },
          { request: { method: 'GET', url: 'Observation?subject=Patient/pb' } },
        ]),
      );
    expect(res.status).toBe(200);
    const entries = res.body.entry as Array<Entry & { resource?: { total?: number } }>;
    expect(entries[0]?.response?.status).toMatch(/^200/);
    expect(entries[1]?.response?.status).toMatch(/^404/);
    expect(entries[2]?.resource?.total).toBe(0);
  });

  test("a transaction writing into another patient's compartment fails as a whole and stores nothing", async () => {
    const writer = await patientToken(iss, 'pa', 'patient/*.cruds');
    const res = await h.request
      .post('/fhir')
      .set(bearer(writer))
      .set('Content-Type', FHIR_JSON)
      .send(
        bundle('transaction', [
          {
            request: { method: 'POST', url: 'Observation' },
            resource: {
              resourceType: 'Observation',
              status: 'final',
              code: { text: 'tx-own' },
              subject: { reference: 'Patient/pa' },
            },
          },
          {
            request: { method: 'POST', url: 'Observation' },
            resource: {
              resourceType: 'Observation',
              status: 'final',
              code: { text: 'tx-other' },
              subject: { reference: 'Patient/pb' },
            },
          },
        ]),
      );
    expect(res.status).toBe(403);
    const after = await h.request.get('/fhir/Observation?code:text=tx-own').set(bearer(system));
    expect(after.body.total).toBe(0);
  });

  test("a transaction cannot delete another patient's resource", async () => {
    const writer = await patientToken(iss, 'pa', 'patient/*.cruds');
    const res = await h.request
      .post('/fhir')
      .set(bearer(writer))
      .set('Content-Type', FHIR_JSON)
      .send(bundle('transaction', [{ request: { method: 'DELETE', url: 'Observation/obs-pb' } }]));
    // Exactly like a delete of a missing id inside a transaction: a no-op that deletes nothing.
    const missing = await h.request
      .post('/fhir')
      .set(bearer(writer))
      .set('Content-Type', FHIR_JSON)
      .send(bundle('transaction', [{ request: { method: 'DELETE', url: 'Observation/never-existed' } }]));
    expect(res.status).toBe(missing.status);
    expect(res.body.entry?.[0]?.response?.status).toBe(missing.body.entry?.[0]?.response?.status);
    expect((await h.request.get('/fhir/Observation/obs-pb').set(bearer(system))).status).toBe(200);
  });
});
