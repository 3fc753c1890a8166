import type { AuditEvent } from 'fhir/r4';
import { AUDIT_TYPE, type AuditDoc } from '../../src/audit/recorder';
import { bearer, createAs, makeIssuer, type TestIssuer } from '../auth/issuer';
import { FHIR_JSON, startHarness, type Harness } from './harness';

/**
 * Stored ViewDefinitions: create/read/update/delete, history, search, validation against the
 * SQL-on-FHIR model (422), scopes and audit like any type; $run by reference and at instance level.
 */

const VIEW = {
  resourceType: 'ViewDefinition',
  url: 'http://study.example/ViewDefinition/weights',
  version: '1.0.0',
  name: 'weights',
  title: 'Body weights',
  status: 'active',
  resource: 'Observation',
  where: [{ path: "code.text = 'weight'" }],
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()' },
        { name: 'patient', path: 'subject.getReferenceKey(Patient)' },
        { name: 'kg', path: 'value.ofType(Quantity).value', type: 'decimal' },
      ],
    },
  ],
};

const PATIENT_VIEW = {
  resourceType: 'ViewDefinition',
  name: 'patients',
  status: 'draft',
  resource: 'Patient',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()' },
        { name: 'gender', path: 'gender' },
      ],
    },
  ],
};

let iss: TestIssuer;
let h: Harness;
let system: string;
let viewId: string;
let patientViewId: string;
const patients: string[] = [];

type Res = import('supertest').Response;

function post(path: string, body: unknown, token = system): Promise<Res> {
  return h.request
    .post(`/fhir/${path}`)
    .set(bearer(token))
    .set('Content-Type', FHIR_JSON)
    .send(JSON.stringify(body));
}

const get = (path: string, token = system): Promise<Res> => h.request.get(`/fhir/${path}`).set(bearer(token));

async function lastEvent(): Promise<AuditEvent> {
  const docs = await h.ctx.store.backend.collection<AuditDoc>(AUDIT_TYPE).find({}, { sort: { seq: 1 } });
  const e = docs[docs.length - 1]?.resource as AuditEvent | undefined;
  if (!e) throw new Error('the audit log is empty');
  return e;
}

function auditQuery(e: AuditEvent): URLSearchParams {
  const q = e.entity?.find((x) => x.role?.code === '24')?.query ?? '';
  return new URLSearchParams(Buffer.from(q, 'base64').toString('utf8'));
}

const ids = (r: Res): string[] =>
  ((r.body.entry ?? []) as Array<{ resource: { id: string } }>).map((e) => e.resource.id).sort();

beforeAll(async () => {
  iss = await makeIssuer();
  h = await startHarness({ ...iss.env, AUDIT: 'on' });
  system = await iss.token({ scope: 'system/*.cruds' });
  for (const [gender, kg] of [
    ['female', 61],
    ['male', 90],
  ] as const) {
    const p = await createAs(h, system, { resourceType: 'Patient', gender });
    patients.push(p);
    await createAs(h, system, {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: `Patient/${p}` },
      valueQuantity: { value: kg, unit: 'kg' },
    });
  }
  viewId = await createAs(h, system, VIEW);
  patientViewId = await createAs(h, system, PATIENT_VIEW);
});

afterAll(async () => {
  await h.close();
  iss.cleanup();
});

describe('ViewDefinition as a stored resource', () => {
  test('create gives 201 with a version; read answers the stored view', async () => {
    const r = await get(`ViewDefinition/${viewId}`);
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBe('W/"1"');
    expect(r.body).toMatchObject({ ...VIEW, id: viewId, meta: { versionId: '1' } });
  });

  test('update makes version 2; history and vread keep version 1', async () => {
    const id = await createAs(h, system, { ...PATIENT_VIEW, name: 'to_update' });
    const u = await h.request
      .put(`/fhir/ViewDefinition/${id}`)
      .set(bearer(system))
      .set('Content-Type', FHIR_JSON)
      .send({ ...PATIENT_VIEW, id, name: 'updated', status: 'active' });
    expect(u.status).toBe(200);
    expect(u.body.meta.versionId).toBe('2');
    const hist = await get(`ViewDefinition/${id}/_history`);
    expect(hist.body.entry).toHaveLength(2);
    const v1 = await get(`ViewDefinition/${id}/_history/1`);
    expect(v1.body.name).toBe('to_update');
  });

  test('delete answers 204, then reads are 410', async () => {
    const id = await createAs(h, system, { ...PATIENT_VIEW, name: 'to_delete' });
    expect((await h.request.delete(`/fhir/ViewDefinition/${id}`).set(bearer(system))).status).toBe(204);
    expect((await get(`ViewDefinition/${id}`)).status).toBe(410);
  });

  test('search by name, url, status, resource, _id and _lastUpdated', async () => {
    expect(ids(await get('ViewDefinition?name=weights'))).toEqual([viewId]);
    expect(ids(await get(`ViewDefinition?url=${encodeURIComponent(VIEW.url)}`))).toEqual([viewId]);
    expect(ids(await get('ViewDefinition?resource=Patient&status=draft'))).toEqual([patientViewId]);
    expect(ids(await get('ViewDefinition?resource=Observation&status=draft'))).toEqual([]);
    expect(ids(await get(`ViewDefinition?_id=${viewId}`))).toEqual([viewId]);
    const all = ids(await get('ViewDefinition?_lastUpdated=gt2000-01-01&_count=100'));
    expect(all).toEqual(expect.arrayContaining([viewId, patientViewId]));
    const unknown = await h.request
      .get('/fhir/ViewDefinition?nonsense=1')
      .set(bearer(system))
      .set('Prefer', 'handling=strict');
    expect(unknown.status).toBe(400);
  });

  test('an invalid ViewDefinition is refused with 422 naming every problem, and nothing is stored', async () => {
    const before = ids(await get('ViewDefinition?_count=100'));
    const r = await post('ViewDefinition', {
      resourceType: 'ViewDefinition',
      name: 'bad name',
      resource: 'NoSuchType',
      colour: 'red',
      select: [{ column: [{ name: '1st', path: 'id' }], forEach: 'name', forEachOrNull: 'name' }],
    });
    expect(r.status).toBe(422);
    expect(r.body.resourceType).toBe('OperationOutcome');
    const where = (r.body.issue as Array<{ expression?: string[] }>).flatMap((i) => i.expression ?? []);
    expect(where).toEqual(
      expect.arrayContaining([
        'ViewDefinition.status',
        'ViewDefinition.name',
        'ViewDefinition.resource',
        'ViewDefinition.colour',
        'ViewDefinition.select[0].column[0].name',
        'ViewDefinition.select[0]',
      ]),
    );
    expect(ids(await get('ViewDefinition?_count=100'))).toEqual(before);
  });

  test('a FHIRPath syntax error or an undefined constant is refused with 422', async () => {
    const syntax = await post('ViewDefinition', {
      ...PATIENT_VIEW,
      select: [{ column: [{ name: 'x', path: 'name.where(' }] }],
    });
    expect(syntax.status).toBe(422);
    expect(JSON.stringify(syntax.body)).toContain('invalid FHIRPath');
    const constant = await post('ViewDefinition', { ...PATIENT_VIEW, where: [{ path: 'gender = %wanted' }] });
    expect(constant.status).toBe(422);
    expect(JSON.stringify(constant.body)).toContain('%wanted');
  });

  test('$validate checks a ViewDefinition against the model', async () => {
    const ok = await post('ViewDefinition/$validate', VIEW);
    expect(ok.status).toBe(200);
    expect(ok.body.issue.every((i: { severity: string }) => i.severity === 'information')).toBe(true);
    const bad = await post('ViewDefinition/$validate', { ...VIEW, status: 'published' });
    expect(bad.status).toBe(200);
    expect(bad.body.issue).toEqual([
      expect.objectContaining({ severity: 'error', expression: ['ViewDefinition.status'] }),
    ]);
  });

  test('scopes apply like any type: no ViewDefinition scope, no create and no read', async () => {
    const obsOnly = await iss.token({ scope: 'system/Observation.rs system/Patient.rs' });
    expect((await post('ViewDefinition', PATIENT_VIEW, obsOnly)).status).toBe(403);
    expect((await get(`ViewDefinition/${viewId}`, obsOnly)).status).toBe(403);
    const readOnly = await iss.token({ scope: 'system/ViewDefinition.rs' });
    expect((await get(`ViewDefinition/${viewId}`, readOnly)).status).toBe(200);
    expect((await post('ViewDefinition', PATIENT_VIEW, readOnly)).status).toBe(403);
  });

  test('writes and reads are audited with the ViewDefinition', async () => {
    await get(`ViewDefinition/${viewId}`);
    const e = await lastEvent();
    expect(e.entity?.map((x) => x.what?.reference)).toContain(`ViewDefinition/${viewId}/_history/1`);
  });

  test('the CapabilityStatement lists ViewDefinition with its model, search parameters and operations', async () => {
    const r = await get('metadata');
    const vd = (r.body.rest[0].resource as Array<Record<string, unknown>>).find(
      (x) => x.type === 'ViewDefinition',
    );
    expect(vd?.profile).toBe('https://sql-on-fhir.org/ig/StructureDefinition/ViewDefinition');
    const names = (vd?.searchParam as Array<{ name: string }>).map((p) => p.name);
    expect(names).toEqual(
      expect.arrayContaining(['name', 'url', 'status', 'resource', '_id', '_lastUpdated']),
    );
    const ops = (vd?.operation as Array<{ name: string }>).map((o) => o.name);
    expect(ops).toEqual(expect.arrayContaining(['run', 'validate']));
  });
});

describe('$run of a stored ViewDefinition', () => {
  const rows = (r: Res): Array<Record<string, unknown>> =>
    JSON.parse(r.text) as Array<Record<string, unknown>>;

  test('by viewReference ViewDefinition/[id]', async () => {
    const r = await post('ViewDefinition/$run', {
      resourceType: 'Parameters',
      parameter: [{ name: 'viewReference', valueReference: { reference: `ViewDefinition/${viewId}` } }],
    });
    expect(r.status).toBe(200);
    expect(
      rows(r)
        .map((x) => x.kg)
        .sort(),
    ).toEqual([61, 90]);
  });

  test('by viewReference as an absolute URL and as the canonical url|version', async () => {
    for (const reference of [`http://fhir.test/fhir/ViewDefinition/${viewId}`, `${VIEW.url}|1.0.0`]) {
      const r = await post('ViewDefinition/$run', {
        resourceType: 'Parameters',
        parameter: [{ name: 'viewReference', valueReference: { reference } }],
      });
      expect(r.status).toBe(200);
      expect(rows(r)).toHaveLength(2);
    }
  });

  test('at instance level, GET and POST, with parameters', async () => {
    const g = await get(`ViewDefinition/${viewId}/$run?_format=csv&patient=Patient/${patients[1] as string}`);
    expect(g.status).toBe(200);
    expect(g.text).toBe(`id,patient,kg\r\n${g.text.split('\r\n')[1] as string}\r\n`);
    expect(g.text).toContain(`,${patients[1] as string},90`);
    const p = await post(`ViewDefinition/${patientViewId}/$run`, {
      resourceType: 'Parameters',
      parameter: [{ name: '_limit', valueInteger: 1 }],
    });
    expect(p.status).toBe(200);
    expect(rows(p)).toHaveLength(1);
  });

  test('a missing stored view is 404; viewReference with viewResource is 400', async () => {
    expect((await get('ViewDefinition/nope/$run')).status).toBe(404);
    const both = await post('ViewDefinition/$run', {
      resourceType: 'Parameters',
      parameter: [
        { name: 'viewReference', valueReference: { reference: `ViewDefinition/${viewId}` } },
        { name: 'viewResource', resource: PATIENT_VIEW },
      ],
    });
    expect(both.status).toBe(400);
  });

  test('a token that may not read ViewDefinition gets 403 for a stored view, but runs an inline one', async () => {
    const obsOnly = await iss.token({ scope: 'system/Observation.rs' });
    expect((await get(`ViewDefinition/${viewId}/$run`, obsOnly)).status).toBe(403);
    const byRef = await post(
      'ViewDefinition/$run',
      {
        resourceType: 'Parameters',
        parameter: [{ name: 'viewReference', valueReference: { reference: `ViewDefinition/${viewId}` } }],
      },
      obsOnly,
    );
    expect(byRef.status).toBe(403);
    const inline = await post(
      'ViewDefinition/$run',
      { resourceType: 'Parameters', parameter: [{ name: 'viewResource', resource: VIEW }] },
      obsOnly,
    );
    expect(inline.status).toBe(200);
  });

  test('the run is audited with the stored view and the row count', async () => {
    const r = await get(`ViewDefinition/${viewId}/$run`);
    expect(r.status).toBe(200);
    const e = await lastEvent();
    expect(e.subtype?.map((c) => c.code)).toContain('$run');
    const q = auditQuery(e);
    expect(q.get('view')).toBe('weights');
    expect(q.get('viewReference')).toBe(`ViewDefinition/${viewId}`);
    const count = e.entity?.find((x) => x.role?.code === '24')?.detail;
    expect(count).toEqual([{ type: 'resultCount', valueString: '2' }]);
  });
});
