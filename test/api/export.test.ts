import fs from 'node:fs';
import path from 'node:path';
import { FHIR_JSON, patient, startHarness, type Harness } from './harness';
import {
  create,
  download,
  exportAll,
  jobIdOf,
  openPolicy,
  pathOf,
  put,
  runnerOf,
  textParser,
  withPolicy,
  type Agent,
  type Manifest,
} from '../export/helpers';

let h: Harness;
let api: Agent;

function observation(
  patientId: string,
  code: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: '2024-03-01T10:00:00Z',
    ...extra,
  };
}

beforeAll(async () => {
  h = await startHarness();
  api = h.request;
  await put(api, { ...patient(), id: 'p1' });
  await put(api, { ...patient({ name: [{ family: 'Jones' }] }), id: 'p2' });
  await create(api, observation('p1', '8867-4'));
  await put(api, { ...observation('p1', '8867-4'), id: 'o1' });
  await put(api, { ...observation('p1', '29463-7'), id: 'o2' });
  await put(api, { ...observation('p2', '8867-4'), id: 'o3' });
  await put(api, { resourceType: 'Organization', id: 'org1', name: 'General Hospital' });
  await put(api, {
    resourceType: 'Group',
    id: 'g1',
    type: 'person',
    actual: true,
    member: [{ entity: { reference: 'Patient/p2' } }],
  });
});

afterAll(async () => {
  await runnerOf(h).stop();
  await h.close();
});

describe('kick-off', () => {
  it('refuses a kick-off without Prefer: respond-async (400)', async () => {
    const res = await api.get('/fhir/$export');
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('refuses an unsupported _outputFormat (400)', async () => {
    const res = await api.get('/fhir/$export?_outputFormat=text/csv').set('Prefer', 'respond-async');
    expect(res.status).toBe(400);
  });

  it('refuses an unknown type in _type (400)', async () => {
    const res = await api.get('/fhir/$export?_type=Nonsense').set('Prefer', 'respond-async');
    expect(res.status).toBe(400);
  });

  it('refuses a malformed _since (400)', async () => {
    const res = await api.get('/fhir/$export?_since=yesterday').set('Prefer', 'respond-async');
    expect(res.status).toBe(400);
  });

  it('answers 202 with Content-Location pointing at the status URL', async () => {
    const res = await api.get('/fhir/$export?_type=Patient').set('Prefer', 'respond-async');
    expect(res.status).toBe(202);
    expect(res.headers['content-location']).toMatch(
      /^http:\/\/fhir\.test\/fhir\/\$export-status\/[0-9a-f-]{36}$/,
    );
    await runnerOf(h).settled(jobIdOf(res));
  });

  it('accepts the ndjson aliases of _outputFormat', async () => {
    for (const f of ['application/fhir+ndjson', 'application/ndjson', 'ndjson']) {
      const res = await api
        .get(`/fhir/$export?_type=Patient&_outputFormat=${encodeURIComponent(f)}`)
        .set('Prefer', 'respond-async');
      expect(res.status).toBe(202);
      await runnerOf(h).settled(jobIdOf(res));
    }
  });

  it('takes the parameters as a Parameters resource on POST', async () => {
    const res = await api
      .post('/fhir/Patient/$export')
      .set('Prefer', 'respond-async')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: '_type', valueString: 'Patient,Observation' },
          { name: 'patient', valueReference: { reference: 'Patient/p2' } },
        ],
      });
    const id = jobIdOf(res);
    await runnerOf(h).settled(id);
    const m = JSON.parse((await api.get(`/fhir/$export-status/${id}`)).text) as Manifest;
    const files = await download(api, m);
    expect(files.get('Patient')?.map((r) => r.id)).toEqual(['p2']);
    expect(files.get('Observation')?.map((r) => r.id)).toEqual(['o3']);
  });
});

describe('status and manifest', () => {
  it('answers 202 with X-Progress and Retry-After while the job has not finished', async () => {
    const runner = runnerOf(h);
    await runner.stop();
    const kick = await api.get('/fhir/$export?_type=Patient').set('Prefer', 'respond-async');
    const id = jobIdOf(kick);
    const res = await api.get(`/fhir/$export-status/${id}`);
    expect(res.status).toBe(202);
    expect(res.headers['x-progress']).toMatch(/queued/);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    await runner.start();
    await runner.settled(id);
    expect((await api.get(`/fhir/$export-status/${id}`)).status).toBe(200);
  });

  it('gives the manifest with transactionTime, request, requiresAccessToken, output counts and error', async () => {
    const { manifest } = await exportAll(
      api,
      runnerOf(h),
      '/fhir/$export?_type=Patient,Observation,Organization',
    );
    expect(Date.parse(manifest.transactionTime)).not.toBeNaN();
    expect(manifest.request).toBe('http://fhir.test/fhir/$export?_type=Patient,Observation,Organization');
    expect(manifest.requiresAccessToken).toBe(false);
    expect(manifest.error).toEqual([]);
    const counts = Object.fromEntries(manifest.output.map((o) => [o.type, o.count]));
    expect(counts).toEqual({ Patient: 2, Observation: 4, Organization: 1 });
  });

  it('answers 404 for an unknown job', async () => {
    const res = await api.get('/fhir/$export-status/00000000-0000-4000-8000-000000000000');
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it("answers 404 for another agent's job (status and files)", async () => {
    const alice = withPolicy(h.ctx, openPolicy('alice'));
    const bob = withPolicy(h.ctx, openPolicy('bob'));
    const { id, manifest } = await exportAll(alice, runnerOf(h), '/fhir/$export?_type=Patient');
    expect((await bob.get(`/fhir/$export-status/${id}`)).status).toBe(404);
    expect((await bob.get(pathOf(manifest.output[0]?.url as string))).status).toBe(404);
    expect((await bob.delete(`/fhir/$export-status/${id}`)).status).toBe(404);
    expect((await alice.get(pathOf(manifest.output[0]?.url as string))).status).toBe(200);
  });
});

describe('output files', () => {
  it('serves NDJSON, one resource per line, as application/fhir+ndjson', async () => {
    const { manifest } = await exportAll(api, runnerOf(h), '/fhir/$export?_type=Observation');
    const url = manifest.output[0]?.url as string;
    const res = await api
      .get(pathOf(url))
      .set('Accept', 'application/fhir+ndjson')
      .buffer(true)
      .parse(textParser);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+ndjson/);
    const lines = (res.body as string).trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    for (const l of lines)
      expect((JSON.parse(l) as { resourceType: string }).resourceType).toBe('Observation');
  });

  it('splits a type into several files at BULK_FILE_MAX_RESOURCES', async () => {
    const small = await startHarness({ BULK_FILE_MAX_RESOURCES: '2', BULK_CHUNK: '3' });
    try {
      for (let i = 0; i < 5; i++) await put(small.request, { ...patient(), id: `s${i}` });
      const { manifest } = await exportAll(small.request, runnerOf(small), '/fhir/$export?_type=Patient');
      expect(manifest.output.map((o) => o.count)).toEqual([2, 2, 1]);
      const files = await download(small.request, manifest);
      expect(files.get('Patient')?.map((r) => r.id)).toEqual(['s0', 's1', 's2', 's3', 's4']);
    } finally {
      await runnerOf(small).stop();
      await small.close();
    }
  });

  it('answers 404 for a file name that is not part of the job', async () => {
    const { id } = await exportAll(api, runnerOf(h), '/fhir/$export?_type=Patient');
    expect((await api.get(`/fhir/$export-file/${id}/Observation.1.ndjson`)).status).toBe(404);
    expect((await api.get(`/fhir/$export-file/${id}/..%2F..%2Fjournal`)).status).toBe(404);
  });
});

describe('cancel', () => {
  it('DELETE on the status URL cancels the job (202), removes its files, and the status is then 404', async () => {
    const runner = runnerOf(h);
    await runner.stop();
    const id = jobIdOf(await api.get('/fhir/$export?_type=Patient').set('Prefer', 'respond-async'));
    const dir = path.join(h.ctx.config.bulk.dir, id);
    expect(fs.existsSync(dir)).toBe(true);
    const res = await api.delete(`/fhir/$export-status/${id}`);
    expect(res.status).toBe(202);
    expect(fs.existsSync(dir)).toBe(false);
    expect((await api.get(`/fhir/$export-status/${id}`)).status).toBe(404);
    await runner.start();
  });

  it('DELETE of a completed job removes its output files', async () => {
    const { id, manifest } = await exportAll(api, runnerOf(h), '/fhir/$export?_type=Patient');
    expect((await api.delete(`/fhir/$export-status/${id}`)).status).toBe(202);
    expect((await api.get(pathOf(manifest.output[0]?.url as string))).status).toBe(404);
    expect(fs.existsSync(path.join(h.ctx.config.bulk.dir, id))).toBe(false);
  });
});

describe('parameters', () => {
  it('_type limits the export to the named types', async () => {
    const { manifest } = await exportAll(api, runnerOf(h), '/fhir/$export?_type=Organization');
    expect(manifest.output.map((o) => o.type)).toEqual(['Organization']);
  });

  it('_since exports only resources changed after the instant', async () => {
    const before = await put(api, { ...patient(), id: 'since-a' });
    const since = (before.meta as { lastUpdated: string }).lastUpdated;
    let after = await put(api, { ...patient({ gender: 'male' }), id: 'since-b' });
    // A later write within the same millisecond is not "after"; write again until the clock moved.
    while ((after.meta as { lastUpdated: string }).lastUpdated <= since)
      after = await put(api, { ...patient({ gender: 'other' }), id: 'since-b' });
    const { manifest } = await exportAll(
      api,
      runnerOf(h),
      `/fhir/$export?_type=Patient&_since=${encodeURIComponent(since)}`,
    );
    const files = await download(api, manifest);
    expect(files.get('Patient')?.map((r) => r.id)).toEqual(['since-b']);
  });

  it('_typeFilter exports only the matching resources of its type', async () => {
    const q = encodeURIComponent('Observation?code=http://loinc.org|29463-7');
    const { manifest } = await exportAll(
      api,
      runnerOf(h),
      `/fhir/$export?_type=Observation,Organization&_typeFilter=${q}`,
    );
    const files = await download(api, manifest);
    expect(files.get('Observation')?.map((r) => r.id)).toEqual(['o2']);
    expect(files.get('Organization')).toHaveLength(1);
  });

  it('refuses a _typeFilter with an unknown parameter (400)', async () => {
    const q = encodeURIComponent('Observation?nonsense=1');
    const res = await api.get(`/fhir/$export?_typeFilter=${q}`).set('Prefer', 'respond-async');
    expect(res.status).toBe(400);
  });

  it('_elements keeps the named elements (and the mandatory ones) and marks the resources SUBSETTED', async () => {
    const { manifest } = await exportAll(
      api,
      runnerOf(h),
      '/fhir/$export?_type=Patient&_elements=Patient.gender',
    );
    const files = await download(api, manifest);
    const p1 = files.get('Patient')?.find((r) => r.id === 'p1');
    expect(p1?.gender).toBe('female');
    expect(p1?.name).toBeUndefined();
    expect(JSON.stringify(p1?.meta)).toContain('SUBSETTED');
  });
});

describe('levels', () => {
  it('Patient/$export exports the Patient compartment types only', async () => {
    const { manifest } = await exportAll(api, runnerOf(h), '/fhir/Patient/$export');
    const types = manifest.output.map((o) => o.type);
    expect(types).toEqual(expect.arrayContaining(['Patient', 'Observation']));
    expect(types).not.toContain('Organization');
  });

  it('Patient/$export refuses a _type outside the compartment (400)', async () => {
    const res = await api.get('/fhir/Patient/$export?_type=Organization').set('Prefer', 'respond-async');
    expect(res.status).toBe(400);
  });

  it('Group/[id]/$export exports the members and their compartments', async () => {
    const { manifest } = await exportAll(
      api,
      runnerOf(h),
      '/fhir/Group/g1/$export?_type=Patient,Observation',
    );
    const files = await download(api, manifest);
    expect(files.get('Patient')?.map((r) => r.id)).toEqual(['p2']);
    expect(files.get('Observation')?.map((r) => r.id)).toEqual(['o3']);
  });

  it('Group/[id]/$export of an unknown Group is 404', async () => {
    const res = await api.get('/fhir/Group/nope/$export').set('Prefer', 'respond-async');
    expect(res.status).toBe(404);
  });

  it('a system level export needs system scopes when the token has a scope level (403)', async () => {
    const user = withPolicy(h.ctx, openPolicy('user-app', 'user'));
    const res = await user.get('/fhir/$export').set('Prefer', 'respond-async');
    expect(res.status).toBe(403);
  });
});

describe('limits', () => {
  it('answers 429 with Retry-After when BULK_MAX_JOBS jobs are in progress', async () => {
    const busy = await startHarness({ BULK_MAX_JOBS: '1' });
    try {
      await runnerOf(busy).stop();
      const first = await busy.request.get('/fhir/$export').set('Prefer', 'respond-async');
      expect(first.status).toBe(202);
      const second = await busy.request.get('/fhir/$export').set('Prefer', 'respond-async');
      expect(second.status).toBe(429);
      expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await busy.close();
    }
  });

  it('runs several jobs at once to completion', async () => {
    const runner = runnerOf(h);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(jobIdOf(await api.get('/fhir/$export?_type=Observation').set('Prefer', 'respond-async')));
    await Promise.all(ids.map((id) => runner.settled(id)));
    for (const id of ids) {
      const m = JSON.parse((await api.get(`/fhir/$export-status/${id}`)).text) as Manifest;
      expect(m.output[0]?.count).toBe(4);
    }
  });
});

describe('CapabilityStatement', () => {
  it('declares $export at system, Patient and Group level and Patient $everything, documenting _deidentify', async () => {
    const cs = (await api.get('/fhir/metadata')).body as fhir4.CapabilityStatement;
    const rest = cs.rest?.[0];
    expect(rest?.operation?.map((o) => o.name)).toContain('export');
    expect(rest?.operation?.find((o) => o.name === 'export')?.documentation).toContain(
      '_deidentify=safe-harbor',
    );
    // Only the export family: other operations ($validate on every type) are listed by their owners.
    const ops = (type: string): string[] =>
      (rest?.resource?.find((r) => r.type === type)?.operation ?? [])
        .map((o) => o.name)
        .filter((name) => name === 'export' || name === 'everything');
    expect(ops('Patient')).toEqual(['export', 'everything']);
    expect(ops('Group')).toEqual(['export']);
    expect(ops('Observation')).toEqual([]);
  });
});
