import type { Bundle } from 'fhir/r4';
import { bearer, createAs, makeIssuer, patientToken, type TestIssuer } from '../auth/issuer';
import { FHIR_JSON, startHarness, type Harness } from './harness';

/**
 * Bundles under SMART: every entry is authorised as the single interaction would be, and whether
 * a patient-context token may write a resource is decided on the resource as stored, after its
 * urn:uuid and conditional references are resolved.
 */
let iss: TestIssuer;
let h: Harness;
let system: string;
let asA: string;
const ids: Record<string, string> = {};

const create = (resource: Record<string, unknown>): Promise<string> => createAs(h, system, resource);

const obs = (subject: string, code: string) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'urn:test', code }] },
  subject: { reference: subject },
});

const post = (bundle: unknown, token = asA) =>
  h.request.post('/fhir').set(bearer(token)).set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle));

beforeAll(async () => {
  iss = await makeIssuer();
  h = await startHarness(iss.env);
  system = await iss.token({ scope: 'system/*.cruds' });
  ids.A = await create({
    resourceType: 'Patient',
    identifier: [{ system: 'urn:mrn', value: 'A' }],
    name: [{ family: 'Alpha' }],
  });
  ids.B = await create({
    resourceType: 'Patient',
    identifier: [{ system: 'urn:mrn', value: 'B' }],
    name: [{ family: 'Bravo' }],
  });
  asA = await patientToken(iss, ids.A as string, 'patient/*.cruds');
});

afterAll(async () => {
  await h.close();
  iss.cleanup();
});

async function count(code: string): Promise<number> {
  const r = await h.request.get(`/fhir/Observation?code=urn:test|${code}`).set(bearer(system));
  return r.body.total as number;
}

describe('transactions with a patient-context token', () => {
  test('may write into its own compartment through a conditional reference', async () => {
    const r = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:own-1',
          resource: obs('Patient?identifier=urn:mrn|A', 'own'),
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(r.status).toBe(200);
    expect(
      ((r.body as Bundle).entry?.[0]?.resource as unknown as { subject: { reference: string } }).subject,
    ).toEqual({
      reference: `Patient/${ids.A as string}`,
    });
  });

  test("may not write into another patient's compartment: 403 and nothing stored", async () => {
    const r = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:ok',
          resource: obs(`Patient/${ids.A as string}`, 'mixed'),
          request: { method: 'POST', url: 'Observation' },
        },
        {
          fullUrl: 'urn:uuid:other',
          resource: obs(`Patient/${ids.B as string}`, 'mixed'),
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(r.status).toBe(403);
    expect(JSON.stringify(r.body)).toContain('Bundle.entry[1]');
    expect(await count('mixed')).toBe(0);
  });

  test('a conditional reference sees only what the token may see: another patient matches nothing (400)', async () => {
    const r = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:hidden',
          resource: obs('Patient?identifier=urn:mrn|B', 'hidden'),
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(r.status).toBe(400);
    expect(await count('hidden')).toBe(0);
  });

  test('in a batch, only the entry outside the compartment is refused', async () => {
    const r = await post({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          resource: obs(`Patient/${ids.A as string}`, 'batch'),
          request: { method: 'POST', url: 'Observation' },
        },
        {
          resource: obs(`Patient/${ids.B as string}`, 'batch'),
          request: { method: 'POST', url: 'Observation' },
        },
        { request: { method: 'GET', url: `Patient/${ids.B as string}` } },
      ],
    });
    expect(r.status).toBe(200);
    expect((r.body as Bundle).entry?.map((e) => e.response?.status.slice(0, 3))).toEqual([
      '201',
      '403',
      '404',
    ]);
    expect(await count('batch')).toBe(1);
  });
});

describe('GET entries with a patient-context token', () => {
  test('a deleted resource of another patient reads like a missing id (404, not 410)', async () => {
    const hidden = await create(obs(`Patient/${ids.B}`, 'bundle-tombstone'));
    expect((await h.request.delete(`/fhir/Observation/${hidden}`).set(bearer(system))).status).toBe(204);
    const r = await post({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: `Observation/${hidden}` } },
        { request: { method: 'GET', url: 'Observation/never-existed' } },
        { request: { method: 'GET', url: `Observation/${hidden}/_history/1` } },
      ],
    });
    expect(r.status).toBe(200);
    const statuses = (r.body as Bundle).entry?.map((e) => e.response?.status?.split(' ')[0]);
    expect(statuses).toEqual(['404', '404', '404']);
  });

  test('the patient sees its own deletion as 410', async () => {
    const own = await create(obs(`Patient/${ids.A}`, 'bundle-own-tombstone'));
    expect((await h.request.delete(`/fhir/Observation/${own}`).set(bearer(system))).status).toBe(204);
    const r = await post({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ request: { method: 'GET', url: `Observation/${own}` } }],
    });
    expect((r.body as Bundle).entry?.[0]?.response?.status?.split(' ')[0]).toBe('410');
  });
});
