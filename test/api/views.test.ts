import type { AuditEvent } from 'fhir/r4';
import { AUDIT_TYPE, type AuditDoc } from '../../src/audit/recorder';
import { bearer, createAs, makeIssuer, patientToken, type TestIssuer } from '../auth/issuer';
import { FHIR_JSON, startHarness, type Harness } from './harness';

/** SQL-on-FHIR v2 ViewDefinition/$run over the store: formats, parameters, confinement and audit. */

const VIEW = {
  resourceType: 'ViewDefinition',
  name: 'patient_names',
  resource: 'Patient',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()' },
        { name: 'family', path: 'name.first().family' },
        { name: 'gender', path: 'gender' },
      ],
    },
  ],
};

const OBS_VIEW = {
  resourceType: 'ViewDefinition',
  resource: 'Observation',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()' },
        { name: 'patient', path: 'subject.getReferenceKey(Patient)' },
        { name: 'value', path: 'value.ofType(Quantity).value', type: 'decimal' },
      ],
    },
  ],
};

function run(view: unknown, extra: Array<Record<string, unknown>> = []): Record<string, unknown> {
  return {
    resourceType: 'Parameters',
    parameter: [{ name: 'viewResource', resource: view }, ...extra],
  };
}

let iss: TestIssuer;
let h: Harness;
let system: string;
const ids: Record<string, string> = {};

const create = (resource: Record<string, unknown>): Promise<string> => createAs(h, system, resource);

async function post(body: unknown, token = system, query = ''): Promise<import('supertest').Response> {
  return h.request
    .post(`/fhir/ViewDefinition/$run${query}`)
    .set(bearer(token))
    .set('Content-Type', FHIR_JSON)
    .send(JSON.stringify(body));
}

async function lastEvent(): Promise<AuditEvent> {
  const docs = await h.ctx.store.backend.collection<AuditDoc>(AUDIT_TYPE).find({}, { sort: { seq: 1 } });
  const e = docs[docs.length - 1]?.resource as AuditEvent | undefined;
  if (!e) throw new Error('the audit log is empty');
  return e;
}

beforeAll(async () => {
  iss = await makeIssuer();
  h = await startHarness({ ...iss.env, AUDIT: 'on' });
  system = await iss.token({ scope: 'system/*.cruds' });
  ids.A = await create({
    resourceType: 'Patient',
    name: [{ family: 'Alpha, "the first"' }],
    gender: 'female',
  });
  ids.B = await create({ resourceType: 'Patient', name: [{ family: 'Bravo' }], gender: 'male' });
  for (const [p, v] of [
    [ids.A, 60],
    [ids.A, 61],
    [ids.B, 90],
  ] as const)
    await create({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: `Patient/${p}` },
      valueQuantity: { value: v, unit: 'kg' },
    });
});

afterAll(async () => {
  await h.close();
});

test('JSON (the default) is an array of row objects', async () => {
  const r = await post(run(VIEW));
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  const rows = JSON.parse(r.text) as Array<Record<string, unknown>>;
  expect(rows).toHaveLength(2);
  expect(rows).toContainEqual({ id: ids.B, family: 'Bravo', gender: 'male' });
});

test('_format=ndjson gives one JSON object per line', async () => {
  const r = await post(run(VIEW, [{ name: '_format', valueCode: 'ndjson' }]));
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^application\/x-ndjson/);
  const lines = r.text.trim().split('\n');
  expect(lines).toHaveLength(2);
  expect(lines.map((l) => (JSON.parse(l) as { gender: string }).gender).sort()).toEqual(['female', 'male']);
});

test('_format=csv has a header row and quotes fields with commas and quotes', async () => {
  const r = await post(run(VIEW), system, '?_format=csv');
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/csv/);
  const lines = r.text.split('\r\n');
  expect(lines[0]).toBe('id,family,gender');
  expect(lines).toContain(`${ids.A},"Alpha, ""the first""",female`);
});

test('_limit caps the number of rows', async () => {
  const r = await post(run(OBS_VIEW, [{ name: '_limit', valueInteger: 2 }]));
  expect(JSON.parse(r.text)).toHaveLength(2);
});

test('patient restricts the rows to that patient compartment', async () => {
  const r = await post(
    run(OBS_VIEW, [{ name: 'patient', valueReference: { reference: `Patient/${ids.B}` } }]),
  );
  expect(r.status).toBe(200);
  expect(JSON.parse(r.text)).toEqual([expect.objectContaining({ patient: ids.B, value: 90 })]);
});

test('inline resource parameters are run instead of the store', async () => {
  const r = await post(
    run(VIEW, [{ name: 'resource', resource: { resourceType: 'Patient', id: 'x1', gender: 'other' } }]),
  );
  expect(JSON.parse(r.text)).toEqual([{ id: 'x1', family: null, gender: 'other' }]);
});

test('an invalid ViewDefinition is a 400 OperationOutcome', async () => {
  const r = await post(run({ resourceType: 'ViewDefinition', select: [] }));
  expect(r.status).toBe(400);
  expect(r.body.resourceType).toBe('OperationOutcome');
});

test('an unknown _format is a 400', async () => {
  const r = await post(run(VIEW), system, '?_format=xlsx');
  expect(r.status).toBe(400);
});

test('a stored view that does not exist is not found', async () => {
  const r = await h.request.get('/fhir/ViewDefinition/abc/$run').set(bearer(system));
  expect(r.status).toBe(404);
});

test('a patient token sees only its own compartment', async () => {
  const asA = await patientToken(iss, ids.A as string, 'patient/Observation.rs');
  const r = await post(run(OBS_VIEW), asA);
  expect(r.status).toBe(200);
  const rows = JSON.parse(r.text) as Array<{ patient: string }>;
  expect(rows).toHaveLength(2);
  expect(rows.every((row) => row.patient === ids.A)).toBe(true);
});

test('a token without search scope on the view resource is refused', async () => {
  const asA = await patientToken(iss, ids.A as string, 'patient/Observation.rs');
  const r = await post(run(VIEW), asA);
  expect(r.status).toBe(403);
});

test('every run is audited with the view and the row count', async () => {
  const r = await post(run(OBS_VIEW));
  expect(r.status).toBe(200);
  const e = await lastEvent();
  expect(e.subtype?.map((c) => c.code)).toContain('$run');
  const q = e.entity?.find((x) => x.role?.code === '24');
  expect(q?.description).toBe('ViewDefinition');
  expect(q?.detail).toEqual([{ type: 'resultCount', valueString: '3' }]);
  const query = new URLSearchParams(Buffer.from(q?.query ?? '', 'base64').toString('utf8'));
  expect(query.get('resource')).toBe('Observation');
  expect(query.get('sha256')).toMatch(/^[0-9a-f]{16}$/);
});

test('the CapabilityStatement lists the $run operation on ViewDefinition', async () => {
  const r = await h.request.get('/fhir/metadata').set(bearer(system));
  const resources = r.body.rest[0].resource as Array<{ type: string; operation?: unknown[] }>;
  const ops = (resources.find((x) => x.type === 'ViewDefinition')?.operation ?? []) as Array<{
    name: string;
    definition: string;
  }>;
  expect(ops).toContainEqual(expect.objectContaining({ name: 'run' }));
});

test('_deidentify=safe-harbor runs the view over de-identified resources', async () => {
  const r = await post(run(VIEW, [{ name: '_deidentify', valueCode: 'safe-harbor' }]));
  expect(r.status).toBe(200);
  const rows = JSON.parse(r.text) as Array<{ id: string; family: unknown }>;
  expect(rows).toHaveLength(2);
  expect(rows.map((row) => row.family)).toEqual([null, null]);
  expect(rows.map((row) => row.id)).not.toContain(ids.A);
});
