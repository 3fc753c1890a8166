import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bundle } from 'fhir/r4';
import { FHIR_JSON, patient, startHarness, type Harness } from './harness';

/**
 * Stored search indexes follow the search parameters: a SearchParameter added to PROFILES_DIR finds
 * the resources stored before it was there, because the start rebuilds what was indexed under
 * another fingerprint (ResourceStore.reindexStale).
 */
const MARITAL_STATUS = {
  resourceType: 'SearchParameter',
  url: 'http://hospital.example/fhir/SearchParameter/patient-marital-status',
  name: 'marital-status',
  status: 'active',
  description: 'Marital status of the patient',
  code: 'marital-status',
  base: ['Patient'],
  type: 'token',
  expression: 'Patient.maritalStatus',
};

const V3_MARITAL = 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus';

describe('search indexes rebuilt when search parameters change', () => {
  let dataDir: string;
  let h: Harness | undefined;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-reindex-'));
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const start = async (): Promise<Harness> => {
    await h?.close();
    h = await startHarness({ DATA_DIR: dataDir, PROFILES_DIR: path.join(dataDir, 'profiles') });
    return h;
  };
  const ids = async (query: string): Promise<string[]> => {
    const res = await (h as Harness).request.get(`/fhir/Patient?${query}`).set('Prefer', 'handling=strict');
    expect(res.status).toBe(200);
    return ((res.body as Bundle).entry ?? []).map((e) => e.resource?.id as string).sort();
  };

  test('a SearchParameter added to PROFILES_DIR finds resources stored before it', async () => {
    let s = await start();
    const married = await s.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(patient({ maritalStatus: { coding: [{ system: V3_MARITAL, code: 'M' }] } }));
    const single = await s.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(patient({ maritalStatus: { coding: [{ system: V3_MARITAL, code: 'S' }] } }));
    expect([married.status, single.status]).toEqual([201, 201]);
    // Unknown so far: strict handling refuses it.
    const before = await s.request.get('/fhir/Patient?marital-status=M').set('Prefer', 'handling=strict');
    expect(before.status).toBe(400);

    fs.mkdirSync(path.join(dataDir, 'profiles'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'profiles', 'marital-status.json'), JSON.stringify(MARITAL_STATUS));
    s = await start();
    expect(await ids('marital-status=M')).toEqual([married.body.id]);
    expect(await ids(`marital-status=${encodeURIComponent(`${V3_MARITAL}|S`)}`)).toEqual([single.body.id]);
    // The new fingerprint is recorded: nothing is stale any more.
    expect(await s.ctx.store.reindexStale(['AuditEvent'])).toEqual([]);

    // A type first written after the start is indexed under today's parameters: no rebuild later.
    const obs = await s.request
      .post('/fhir/Observation')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    expect(obs.status).toBe(201);
    expect(await s.ctx.store.reindexStale(['AuditEvent'])).toEqual([]);

    // Taking the parameter away again rebuilds Patient without it (and leaves Observation alone).
    fs.rmSync(path.join(dataDir, 'profiles', 'marital-status.json'));
    s = await start();
    const after = await s.request.get('/fhir/Patient?marital-status=M').set('Prefer', 'handling=strict');
    expect(after.status).toBe(400);
    const doc = await s.ctx.store.read('Patient', married.body.id as string);
    expect(doc?.idx['marital-status']).toBeUndefined();
    // The history of each resource is untouched: one version each.
    const history = await s.request.get(`/fhir/Patient/${married.body.id as string}/_history`);
    expect((history.body as Bundle).total).toBe(1);
  });

  test('a store whose fingerprints were never recorded is rebuilt once at start', async () => {
    let s = await start();
    const p = await s.request.post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(patient());
    expect(p.status).toBe(201);
    // As a DATA_DIR from before fingerprints: no index_state, and an index missing a value.
    await s.ctx.store.backend.collection('index_state').deleteMany({});
    const stored = await s.ctx.store.read('Patient', p.body.id as string);
    const { family: _family, ...rest } = stored?.idx ?? {};
    await s.ctx.store.current('Patient').replaceOne({ _id: p.body.id as string }, { ...stored!, idx: rest });
    s = await start();
    expect(await ids('family=smith')).toEqual([p.body.id]);
    expect(await s.ctx.store.reindexStale(['AuditEvent'])).toEqual([]);
  });
});
