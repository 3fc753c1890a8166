import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditEvent, Parameters, ParametersParameter } from 'fhir/r4';
import { AUDIT_TYPE, type AuditDoc } from '../../src/audit/recorder';
import { bulkRunnerFor } from '../../src/bulk/runner';
import { bearer, createAs, makeIssuer, type TestIssuer } from '../auth/issuer';
import { FHIR_JSON, startHarness, type Harness } from './harness';

/**
 * ViewDefinition/$export: kick-off, status, manifest (Parameters with one output per view),
 * download, cancel, de-identification, scopes, ownership, audit, and resuming after a restart.
 */

const WEIGHTS = {
  resourceType: 'ViewDefinition',
  name: 'weights',
  status: 'active',
  resource: 'Observation',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()' },
        { name: 'patient', path: 'subject.getReferenceKey(Patient)' },
        { name: 'kg', path: 'value.ofType(Quantity).value' },
      ],
    },
  ],
};

const PATIENTS = {
  resourceType: 'ViewDefinition',
  name: 'patients',
  status: 'active',
  resource: 'Patient',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()' },
        { name: 'mrn', path: 'identifier.first().value' },
        { name: 'family', path: 'name.first().family' },
        { name: 'birth', path: 'birthDate' },
      ],
    },
  ],
};

type Res = import('supertest').Response;

let iss: TestIssuer;
let h: Harness;
let system: string;
let storedWeights: string;
const pats: Array<{ id: string; mrn: string; family: string; kg: number }> = [];

function kickOff(parameter: ParametersParameter[], token = system): Promise<Res> {
  return h.request
    .post('/fhir/ViewDefinition/$export')
    .set(bearer(token))
    .set('Prefer', 'respond-async')
    .set('Content-Type', FHIR_JSON)
    .send(JSON.stringify({ resourceType: 'Parameters', parameter }));
}

const view = (
  name: string | undefined,
  ref: { viewReference?: string; viewResource?: unknown },
): ParametersParameter => ({
  name: 'view',
  part: [
    ...(name ? [{ name: 'name', valueString: name }] : []),
    ...(ref.viewReference
      ? [{ name: 'viewReference', valueReference: { reference: ref.viewReference } }]
      : []),
    ...(ref.viewResource
      ? [{ name: 'viewResource', resource: ref.viewResource as ParametersParameter['resource'] }]
      : []),
  ],
});

function statusPath(res: Res): string {
  const loc = res.headers['content-location'] as string;
  expect(loc).toMatch(/^http:\/\/fhir\.test\/fhir\/ViewDefinition\/\$export-status\/[0-9a-f-]{36}$/);
  return loc.replace('http://fhir.test', '');
}

const jobOf = (res: Res): string => statusPath(res).split('/').pop() as string;

function param(p: Parameters, name: string): ParametersParameter | undefined {
  return p.parameter?.find((x) => x.name === name);
}

/** output name -> file URLs (paths on the test server) and the rowCount. */
function outputs(p: Parameters): Map<string, { files: string[]; rows: number }> {
  const out = new Map<string, { files: string[]; rows: number }>();
  for (const o of (p.parameter ?? []).filter((x) => x.name === 'output')) {
    const name = o.part?.find((x) => x.name === 'name')?.valueString as string;
    const files = (o.part ?? [])
      .filter((x) => x.name === 'location')
      .map((x) => (x.valueUri as string).replace('http://fhir.test', ''));
    out.set(name, { files, rows: o.part?.find((x) => x.name === 'rowCount')?.valueInteger ?? -1 });
  }
  return out;
}

async function finished(res: Res, token = system): Promise<Parameters> {
  expect(res.status).toBe(202);
  await bulkRunnerFor(h.ctx).settled(jobOf(res));
  const s = await h.request.get(statusPath(res)).set(bearer(token));
  expect(s.status).toBe(200);
  return s.body as Parameters;
}

async function csv(url: string, token = system): Promise<string[][]> {
  const r = await h.request
    .get(url)
    .set(bearer(token))
    .buffer(true)
    .parse((res, cb) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => cb(null, text));
    });
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/csv/);
  return (r.body as string)
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l) => l.split(','));
}

async function lastEvent(): Promise<AuditEvent> {
  const docs = await h.ctx.store.backend.collection<AuditDoc>(AUDIT_TYPE).find({}, { sort: { seq: 1 } });
  const e = docs[docs.length - 1]?.resource as AuditEvent | undefined;
  if (!e) throw new Error('the audit log is empty');
  return e;
}

function auditQuery(e: AuditEvent): { query: URLSearchParams; count?: string } {
  const q = e.entity?.find((x) => x.role?.code === '24');
  return {
    query: new URLSearchParams(Buffer.from(q?.query ?? '', 'base64').toString('utf8')),
    count: q?.detail?.find((d) => d.type === 'resultCount')?.valueString,
  };
}

beforeAll(async () => {
  iss = await makeIssuer();
  h = await startHarness({ ...iss.env, AUDIT: 'on' });
  system = await iss.token({ scope: 'system/*.cruds' });
  for (const [mrn, family, kg] of [
    ['MRN-A', 'Adams', 61.5],
    ['MRN-B', 'Baker', 90],
    ['MRN-C', 'Clark', 77.25],
  ] as const) {
    const id = await createAs(h, system, {
      resourceType: 'Patient',
      identifier: [{ system: 'http://hospital.example/mrn', value: mrn }],
      name: [{ family }],
      birthDate: '1970-05-17',
    });
    pats.push({ id, mrn, family, kg });
    await createAs(h, system, {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: `Patient/${id}` },
      valueQuantity: { value: kg, unit: 'kg' },
    });
  }
  storedWeights = await createAs(h, system, WEIGHTS);
});

afterAll(async () => {
  await bulkRunnerFor(h.ctx).stop();
  await h.close();
  iss.cleanup();
});

describe('kick-off', () => {
  test('answers 202 with Content-Location and the accepted Parameters', async () => {
    const r = await kickOff([
      view(undefined, { viewReference: `ViewDefinition/${storedWeights}` }),
      { name: 'clientTrackingId', valueString: 'study-7' },
    ]);
    expect(r.status).toBe(202);
    const p = r.body as Parameters;
    expect(param(p, 'status')?.valueCode).toBe('accepted');
    expect(param(p, 'exportId')?.valueString).toBe(jobOf(r));
    expect(param(p, 'clientTrackingId')?.valueString).toBe('study-7');
    expect(param(p, 'location')?.valueUri).toBe(r.headers['content-location']);
    await bulkRunnerFor(h.ctx).settled(jobOf(r));
  });

  test('needs Prefer: respond-async, a view, and known parameters (400)', async () => {
    const noPrefer = await h.request
      .post('/fhir/ViewDefinition/$export')
      .set(bearer(system))
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter: [view(undefined, { viewResource: WEIGHTS })] });
    expect(noPrefer.status).toBe(400);
    expect((await kickOff([])).status).toBe(400);
    expect(
      (await kickOff([view(undefined, { viewResource: WEIGHTS }), { name: 'source', valueString: 's3://x' }]))
        .status,
    ).toBe(400);
    expect(
      (await kickOff([view(undefined, { viewResource: WEIGHTS }), { name: '_format', valueCode: 'parquet' }]))
        .status,
    ).toBe(400);
  });

  test('checks every view first and reports all problems', async () => {
    const r = await kickOff([
      view(undefined, { viewReference: 'ViewDefinition/missing' }),
      view(undefined, { viewResource: { ...WEIGHTS, select: [] } }),
      view('weights', { viewResource: WEIGHTS }),
    ]);
    expect(r.status).toBe(400);
    const where = (r.body.issue as Array<{ expression?: string[] }>).map((i) => i.expression?.[0]);
    expect(where).toEqual(expect.arrayContaining(['parameter[0]', 'parameter[1]']));
  });

  test('two views with one name are refused', async () => {
    const r = await kickOff([
      view('same', { viewResource: WEIGHTS }),
      view('same', { viewResource: PATIENTS }),
    ]);
    expect(r.status).toBe(400);
  });
});

describe('status, manifest and files', () => {
  test('202 with X-Progress while queued, then 200 with one output per view; CSV rows match the data', async () => {
    const runner = bulkRunnerFor(h.ctx);
    await runner.stop();
    const r = await kickOff([
      view('body_weight', { viewReference: `ViewDefinition/${storedWeights}` }),
      view(undefined, { viewResource: PATIENTS }),
    ]);
    const waiting = await h.request.get(statusPath(r)).set(bearer(system));
    expect(waiting.status).toBe(202);
    expect(waiting.headers['x-progress']).toMatch(/queued/);
    expect(Number(waiting.headers['retry-after'])).toBeGreaterThan(0);
    expect(param(waiting.body as Parameters, 'status')?.valueCode).toBe('in-progress');
    await runner.start();
    const done = await finished(r);
    expect(param(done, 'status')?.valueCode).toBe('completed');
    expect(param(done, '_format')?.valueCode).toBe('csv');
    const out = outputs(done);
    expect([...out.keys()]).toEqual(['body_weight', 'patients']);
    expect(out.get('body_weight')?.rows).toBe(3);

    const weights = await csv(out.get('body_weight')?.files[0] as string);
    expect(weights[0]).toEqual(['id', 'patient', 'kg']);
    const byPatient = new Map(weights.slice(1).map((row) => [row[1], Number(row[2])]));
    for (const p of pats) expect(byPatient.get(p.id)).toBe(p.kg);

    const patients = await csv(out.get('patients')?.files[0] as string);
    expect(patients[0]).toEqual(['id', 'mrn', 'family', 'birth']);
    expect(patients.slice(1).sort()).toEqual(pats.map((p) => [p.id, p.mrn, p.family, '1970-05-17']).sort());
  });

  test('patient and _format=ndjson: only that compartment, one JSON row per line', async () => {
    const target = pats[1] as { id: string; kg: number };
    const done = await finished(
      await kickOff([
        view(undefined, { viewResource: WEIGHTS }),
        { name: '_format', valueCode: 'ndjson' },
        { name: 'patient', valueReference: { reference: `Patient/${target.id}` } },
      ]),
    );
    const url = outputs(done).get('weights')?.files[0] as string;
    expect(url).toMatch(/weights\.1\.ndjson$/);
    const r = await h.request
      .get(url)
      .set(bearer(system))
      .buffer(true)
      .parse((res, cb) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => cb(null, text));
      });
    expect(r.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const rows = (r.body as string)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toEqual([expect.objectContaining({ patient: target.id, kg: target.kg })]);
  });

  test('a view without rows still gets its file (the CSV header)', async () => {
    const done = await finished(
      await kickOff([view(undefined, { viewResource: { ...WEIGHTS, where: [{ path: 'false' }] } })]),
    );
    const o = outputs(done).get('weights');
    expect(o?.rows).toBe(0);
    expect(await csv(o?.files[0] as string)).toEqual([['id', 'patient', 'kg']]);
  });

  test('_deidentify=safe-harbor: pseudonymous ids and identifiers, no names, birth year only', async () => {
    const done = await finished(
      await kickOff([
        view(undefined, { viewResource: PATIENTS }),
        { name: '_deidentify', valueCode: 'safe-harbor' },
      ]),
    );
    const rows = (await csv(outputs(done).get('patients')?.files[0] as string)).slice(1);
    expect(rows).toHaveLength(3);
    const text = JSON.stringify(rows);
    for (const p of pats) {
      expect(text).not.toContain(p.id);
      expect(text).not.toContain(p.mrn);
      expect(text).not.toContain(p.family);
    }
    for (const [id, mrn, family, birth] of rows) {
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect(mrn).toMatch(/^[0-9a-f]{32}$/);
      expect(family).toBe('');
      expect(birth).toBe('1970');
    }
  });

  test('DELETE cancels: 202, then the status is 404', async () => {
    const r = await kickOff([view(undefined, { viewResource: WEIGHTS })]);
    await bulkRunnerFor(h.ctx).settled(jobOf(r));
    expect((await h.request.delete(statusPath(r)).set(bearer(system))).status).toBe(202);
    expect((await h.request.get(statusPath(r)).set(bearer(system))).status).toBe(404);
  });

  test('the bulk data status URL does not answer for a view export job', async () => {
    const r = await kickOff([view(undefined, { viewResource: WEIGHTS })]);
    await bulkRunnerFor(h.ctx).settled(jobOf(r));
    expect((await h.request.get(`/fhir/$export-status/${jobOf(r)}`).set(bearer(system))).status).toBe(404);
  });
});

describe('access and audit', () => {
  test('only the agent that started the job sees its status and files', async () => {
    const done = await finished(await kickOff([view(undefined, { viewResource: WEIGHTS })]));
    const other = await iss.token({ scope: 'system/*.cruds', sub: 'someone-else' });
    const loc = (param(done, 'location')?.valueUri as string).replace('http://fhir.test', '');
    expect((await h.request.get(loc).set(bearer(other))).status).toBe(404);
    const file = outputs(done).get('weights')?.files[0] as string;
    expect((await h.request.get(file).set(bearer(other))).status).toBe(404);
  });

  test('a stored view needs read access to ViewDefinition (403), the view resource needs search', async () => {
    const obsOnly = await iss.token({ scope: 'system/Observation.rs' });
    expect(
      (await kickOff([view(undefined, { viewReference: `ViewDefinition/${storedWeights}` })], obsOnly))
        .status,
    ).toBe(403);
    expect((await kickOff([view(undefined, { viewResource: PATIENTS })], obsOnly)).status).toBe(403);
    expect((await kickOff([view(undefined, { viewResource: WEIGHTS })], obsOnly)).status).toBe(202);
  });

  test('kick-off, completion and downloads are audited with the views and row counts', async () => {
    const r = await kickOff([view('w', { viewReference: `ViewDefinition/${storedWeights}` })]);
    const kick = auditQuery(await lastEvent());
    expect(kick.query.getAll('view')).toEqual([expect.stringMatching(/^weights:[0-9a-f]{16}$/)]);
    expect(kick.query.get('_format')).toBe('csv');
    const done = await finished(r);
    const status = await lastEvent();
    expect(status.subtype?.map((c) => c.code)).toContain('$export');
    expect(auditQuery(status).count).toBe('3');
    await csv(outputs(done).get('w')?.files[0] as string);
    const download = auditQuery(await lastEvent());
    expect(download.query.get('view')).toBe('w');
    expect(download.count).toBe('3');
  });

  test('the CapabilityStatement lists $export on ViewDefinition', async () => {
    const r = await h.request.get('/fhir/metadata').set(bearer(system));
    const vd = (r.body.rest[0].resource as Array<{ type: string; operation?: Array<{ name: string }> }>).find(
      (x) => x.type === 'ViewDefinition',
    );
    expect(vd?.operation?.map((o) => o.name)).toEqual(expect.arrayContaining(['run', 'export']));
  });
});

describe('restart', () => {
  test('a view export job goes on from its checkpoint after a restart and writes each row once', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-view-export-'));
    const env = { DATA_DIR: dataDir, BULK_CHUNK: '2', BULK_FILE_MAX_RESOURCES: '4' };
    try {
      const first = await startHarness(env);
      let chunks = 0;
      const runner = bulkRunnerFor(first.ctx, {
        afterChunk: () => {
          if (++chunks === 2) void runner.stop();
        },
      });
      for (let i = 0; i < 9; i++)
        await first.request
          .put(`/fhir/Patient/r${i}`)
          .set('Content-Type', FHIR_JSON)
          .send({ resourceType: 'Patient', id: `r${i}`, gender: 'other' });
      const kick = await first.request
        .post('/fhir/ViewDefinition/$export')
        .set('Prefer', 'respond-async')
        .set('Content-Type', FHIR_JSON)
        .send({ resourceType: 'Parameters', parameter: [view('ids', { viewResource: PATIENTS })] });
      const id = (kick.headers['content-location'] as string).split('/').pop() as string;
      await runner.settled(id);
      expect((await runner.jobs.get(id))?.status).toBe('running');
      await first.close();

      const second = await startHarness(env);
      try {
        await bulkRunnerFor(second.ctx).start();
        await bulkRunnerFor(second.ctx).settled(id);
        const status = await second.request.get(`/fhir/ViewDefinition/$export-status/${id}`);
        expect(status.status).toBe(200);
        const files = outputs(status.body as Parameters).get('ids')?.files ?? [];
        expect(files.map((f) => f.split('/').pop())).toEqual(['ids.1.csv', 'ids.2.csv', 'ids.3.csv']);
        const ids: string[] = [];
        for (const f of files) {
          const text = fs.readFileSync(
            path.join(second.ctx.config.bulk.dir, id, f.split('/').pop() as string),
            'utf8',
          );
          const lines = text.split('\r\n').filter((l) => l !== '');
          expect(lines[0]).toBe('id,mrn,family,birth');
          ids.push(...lines.slice(1).map((l) => l.split(',')[0] as string));
        }
        expect(ids).toEqual(Array.from({ length: 9 }, (_, i) => `r${i}`));
      } finally {
        await bulkRunnerFor(second.ctx).stop();
        await second.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
