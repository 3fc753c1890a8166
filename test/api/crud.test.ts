import { FHIR_JSON, patient, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h.close());

async function create(
  body: Record<string, unknown> = patient(),
): Promise<{ id: string; body: Record<string, unknown> }> {
  const r = await h.request.post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
  expect(r.status).toBe(201);
  return { id: r.body.id as string, body: r.body as Record<string, unknown> };
}

describe('create', () => {
  test('POST assigns an id and answers 201 with Location, ETag and Last-Modified', async () => {
    const r = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    expect(r.status).toBe(201);
    expect(r.body.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(r.headers.location).toBe(`http://fhir.test/fhir/Patient/${r.body.id}/_history/1`);
    expect(r.headers.etag).toBe('W/"1"');
    expect(r.headers['last-modified']).toBeDefined();
    expect(r.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(r.body.meta.versionId).toBe('1');
    expect(r.headers['x-request-id']).toBeDefined();
  });

  test('an id in the body of a POST is ignored', async () => {
    const { id } = await create(patient({ id: 'chosen-by-client' }));
    expect(id).not.toBe('chosen-by-client');
  });

  test('Prefer: return=minimal gives an empty body', async () => {
    const r = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('Prefer', 'return=minimal')
      .send(JSON.stringify(patient()));
    expect(r.status).toBe(201);
    expect(r.text).toBe('');
    expect(r.headers.location).toBeDefined();
  });

  test('Prefer: return=OperationOutcome gives an OperationOutcome', async () => {
    const r = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('Prefer', 'return=OperationOutcome')
      .send(JSON.stringify(patient()));
    expect(r.status).toBe(201);
    expect(r.body.resourceType).toBe('OperationOutcome');
  });

  test('every R4 resource type can be stored and read', async () => {
    // Each with the elements its StructureDefinition requires (writes are validated).
    const minimal: Record<string, Record<string, unknown>> = {
      Encounter: { status: 'finished', class: { code: 'AMB' } },
      DocumentReference: { status: 'current', content: [{ attachment: { url: 'http://x.example/a' } }] },
      Substance: { code: { text: 'water' } },
      ImplementationGuide: {
        url: 'http://x.example/ig',
        name: 'IG',
        status: 'draft',
        packageId: 'x.ig',
        fhirVersion: ['4.0.1'],
      },
      VerificationResult: { status: 'attested' },
    };
    for (const [type, body] of Object.entries(minimal)) {
      const r = await h.request
        .post(`/fhir/${type}`)
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify({ resourceType: type, ...body }));
      expect(r.status).toBe(201);
      const g = await h.request.get(`/fhir/${type}/${r.body.id}`);
      expect(g.status).toBe(200);
      expect(g.body.resourceType).toBe(type);
    }
  });
});

describe('read and vread', () => {
  test('read returns the current version with ETag', async () => {
    const { id } = await create();
    const r = await h.request.get(`/fhir/Patient/${id}`);
    expect(r.status).toBe(200);
    expect(r.body.name[0].family).toBe('Smith');
    expect(r.headers.etag).toBe('W/"1"');
  });

  test('read of an unknown id is 404 with an OperationOutcome', async () => {
    const r = await h.request.get('/fhir/Patient/does-not-exist');
    expect(r.status).toBe(404);
    expect(r.body.resourceType).toBe('OperationOutcome');
  });

  test('vread returns an old version after an update', async () => {
    const { id, body } = await create();
    await h.request
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...body, gender: 'other' }));
    const v1 = await h.request.get(`/fhir/Patient/${id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.gender).toBe('female');
    expect(v1.body.meta.versionId).toBe('1');
    const v2 = await h.request.get(`/fhir/Patient/${id}/_history/2`);
    expect(v2.body.gender).toBe('other');
    expect((await h.request.get(`/fhir/Patient/${id}/_history/3`)).status).toBe(404);
  });

  test('If-None-Match with the current ETag gives 304', async () => {
    const { id } = await create();
    const r = await h.request.get(`/fhir/Patient/${id}`).set('If-None-Match', 'W/"1"');
    expect(r.status).toBe(304);
    const r2 = await h.request.get(`/fhir/Patient/${id}`).set('If-None-Match', 'W/"7"');
    expect(r2.status).toBe(200);
  });

  test('If-Modified-Since after the last update gives 304, before it 200', async () => {
    const { id } = await create();
    const later = new Date(Date.now() + 60_000).toUTCString();
    expect((await h.request.get(`/fhir/Patient/${id}`).set('If-Modified-Since', later)).status).toBe(304);
    const earlier = new Date(Date.now() - 3_600_000).toUTCString();
    expect((await h.request.get(`/fhir/Patient/${id}`).set('If-Modified-Since', earlier)).status).toBe(200);
  });

  test('_summary=true keeps only summary elements and tags the result SUBSETTED', async () => {
    const { id } = await create(
      patient({ text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' } }),
    );
    const r = await h.request.get(`/fhir/Patient/${id}?_summary=true`);
    expect(r.status).toBe(200);
    expect(r.body.text).toBeUndefined();
    expect(r.body.name).toBeDefined();
    expect(r.body.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
  });

  test('_elements keeps the named elements plus id and meta', async () => {
    const { id } = await create();
    const r = await h.request.get(`/fhir/Patient/${id}?_elements=gender`);
    expect(r.body.gender).toBe('female');
    expect(r.body.name).toBeUndefined();
    expect(r.body.id).toBe(id);
  });

  test('HEAD answers like GET without a body', async () => {
    const { id } = await create();
    const r = await h.request.head(`/fhir/Patient/${id}`);
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBe('W/"1"');
    expect(r.text ?? '').toBe('');
  });

  test('_pretty=true indents the JSON', async () => {
    const { id } = await create();
    const r = await h.request.get(`/fhir/Patient/${id}?_pretty=true`);
    expect(r.text).toContain('\n  "resourceType"');
  });
});

describe('update', () => {
  test('PUT creates a new version and keeps the old one', async () => {
    const { id, body } = await create();
    const r = await h.request
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...body, active: false }));
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBe('W/"2"');
    expect(r.body.meta.versionId).toBe('2');
  });

  test('PUT to a new id creates the resource with the client id (201)', async () => {
    const r = await h.request
      .put('/fhir/Patient/client-chosen-1')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient({ id: 'client-chosen-1' })));
    expect(r.status).toBe(201);
    expect(r.headers.location).toBe('http://fhir.test/fhir/Patient/client-chosen-1/_history/1');
  });

  test('If-Match with a stale version gives 412 and stores nothing', async () => {
    const { id, body } = await create();
    const ok = await h.request
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .set('If-Match', 'W/"1"')
      .send(JSON.stringify({ ...body, active: true }));
    expect(ok.status).toBe(200);
    const stale = await h.request
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .set('If-Match', 'W/"1"')
      .send(JSON.stringify({ ...body, active: false }));
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    const cur = await h.request.get(`/fhir/Patient/${id}`);
    expect(cur.body.meta.versionId).toBe('2');
    expect(cur.body.active).toBe(true);
  });

  test('concurrent updates of one resource each get their own version', async () => {
    const { id, body } = await create();
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        h.request
          .put(`/fhir/Patient/${id}`)
          .set('Content-Type', FHIR_JSON)
          .send(JSON.stringify({ ...body, birthDate: `19${10 + i}-01-01` })),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const versions = results.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 12 }, (_, i) => i + 2));
    const hist = await h.request.get(`/fhir/Patient/${id}/_history?_count=100`);
    expect(hist.body.total).toBe(13);
  });

  test('concurrent If-Match updates from the same version: exactly one wins', async () => {
    const { id, body } = await create();
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        h.request
          .put(`/fhir/Patient/${id}`)
          .set('Content-Type', FHIR_JSON)
          .set('If-Match', 'W/"1"')
          .send(JSON.stringify({ ...body, active: false })),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 412)).toHaveLength(7);
  });
});

describe('patch', () => {
  test('JSON Patch changes the resource and bumps the version', async () => {
    const { id } = await create();
    const r = await h.request
      .patch(`/fhir/Patient/${id}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }]));
    expect(r.status).toBe(200);
    expect(r.body.gender).toBe('male');
    expect(r.body.meta.versionId).toBe('2');
  });

  test('a patch that changes the id is 422 and stores nothing', async () => {
    const { id } = await create();
    const r = await h.request
      .patch(`/fhir/Patient/${id}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'replace', path: '/id', value: 'other' }]));
    expect(r.status).toBe(422);
    expect(r.body.resourceType).toBe('OperationOutcome');
    expect((await h.request.get(`/fhir/Patient/${id}`)).body.meta.versionId).toBe('1');
  });

  test('a patch that changes resourceType is 422', async () => {
    const { id } = await create();
    const r = await h.request
      .patch(`/fhir/Patient/${id}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'replace', path: '/resourceType', value: 'Group' }]));
    expect(r.status).toBe(422);
  });

  test('a failing test op is 422', async () => {
    const { id } = await create();
    const r = await h.request
      .patch(`/fhir/Patient/${id}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'test', path: '/gender', value: 'male' }]));
    expect(r.status).toBe(422);
  });

  test('patch with a stale If-Match is 412', async () => {
    const { id } = await create();
    const r = await h.request
      .patch(`/fhir/Patient/${id}`)
      .set('Content-Type', 'application/json-patch+json')
      .set('If-Match', 'W/"9"')
      .send(JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }]));
    expect(r.status).toBe(412);
  });

  test('patch of a missing resource is 404', async () => {
    const r = await h.request
      .patch('/fhir/Patient/nope')
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify([{ op: 'replace', path: '/gender', value: 'male' }]));
    expect(r.status).toBe(404);
  });
});

describe('delete', () => {
  test('delete answers 204; later reads are 410 Gone; history keeps the delete', async () => {
    const { id } = await create();
    const d = await h.request.delete(`/fhir/Patient/${id}`);
    expect(d.status).toBe(204);
    const r = await h.request.get(`/fhir/Patient/${id}`);
    expect(r.status).toBe(410);
    expect(r.body.resourceType).toBe('OperationOutcome');
    const hist = await h.request.get(`/fhir/Patient/${id}/_history`);
    expect(hist.body.total).toBe(2);
    expect(hist.body.entry[0].request.method).toBe('DELETE');
    expect(hist.body.entry[0].resource).toBeUndefined();
    expect((await h.request.get(`/fhir/Patient/${id}/_history/1`)).status).toBe(200);
    expect((await h.request.get(`/fhir/Patient/${id}/_history/2`)).status).toBe(410);
  });

  test('a deleted resource can be brought back with PUT (201, next version)', async () => {
    const { id, body } = await create();
    await h.request.delete(`/fhir/Patient/${id}`);
    const r = await h.request
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(body));
    expect(r.status).toBe(201);
    expect(r.body.meta.versionId).toBe('3');
  });

  test('delete with a stale If-Match is 412', async () => {
    const { id } = await create();
    expect((await h.request.delete(`/fhir/Patient/${id}`).set('If-Match', 'W/"2"')).status).toBe(412);
    expect((await h.request.get(`/fhir/Patient/${id}`)).status).toBe(200);
  });
});

describe('history', () => {
  test('type history lists versions newest first with paging links', async () => {
    const type = 'Basic';
    for (let i = 0; i < 5; i++)
      await h.request
        .post(`/fhir/${type}`)
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify({ resourceType: type, code: { text: `n${i}` } }));
    const r = await h.request.get(`/fhir/${type}/_history?_count=2`);
    expect(r.status).toBe(200);
    expect(r.body.type).toBe('history');
    expect(r.body.total).toBe(5);
    expect(r.body.entry).toHaveLength(2);
    expect(r.body.entry[0].resource.code.text).toBe('n4');
    const next = (r.body.link as Array<{ relation: string; url: string }>).find((l) => l.relation === 'next');
    expect(next).toBeDefined();
    const r2 = await h.request.get(
      new URL(next?.url as string).pathname + new URL(next?.url as string).search,
    );
    expect(r2.body.entry[0].resource.code.text).toBe('n2');
  });

  test('_since keeps versions at or after the instant', async () => {
    const { id, body } = await create();
    const cut = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    await h.request
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...body, active: true }));
    const r = await h.request.get(`/fhir/Patient/${id}/_history?_since=${encodeURIComponent(cut)}`);
    expect(r.body.total).toBe(1);
    expect(r.body.entry[0].resource.meta.versionId).toBe('2');
  });

  test('_at gives the version current at that moment', async () => {
    const { id, body } = await create();
    await new Promise((r) => setTimeout(r, 5));
    const at = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    await h.request
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...body, active: true }));
    const r = await h.request.get(`/fhir/Patient/${id}/_history?_at=${encodeURIComponent(at)}`);
    expect(r.body.total).toBe(1);
    expect(r.body.entry[0].resource.meta.versionId).toBe('1');
  });

  test('system history includes every type', async () => {
    const r = await h.request.get('/fhir/_history?_count=1000');
    expect(r.status).toBe(200);
    const types = new Set(
      (r.body.entry as Array<{ request: { url: string } }>).map((e) => e.request.url.split('/')[0]),
    );
    expect(types.has('Patient')).toBe(true);
    expect(types.has('Basic')).toBe(true);
  });

  test('history of an unknown resource is 404', async () => {
    expect((await h.request.get('/fhir/Patient/never/_history')).status).toBe(404);
  });
});

describe('metadata', () => {
  test('the CapabilityStatement lists every resource type with the interactions implemented', async () => {
    const r = await h.request.get('/fhir/metadata');
    expect(r.status).toBe(200);
    expect(r.body.resourceType).toBe('CapabilityStatement');
    expect(r.body.fhirVersion).toBe('4.0.1');
    const resources = r.body.rest[0].resource as Array<{
      type: string;
      interaction: Array<{ code: string }>;
    }>;
    expect(resources.length).toBeGreaterThanOrEqual(145);
    const p = resources.find((x) => x.type === 'Patient');
    expect(p?.interaction.map((i) => i.code)).toEqual(
      expect.arrayContaining(['read', 'vread', 'update', 'patch', 'delete', 'create']),
    );
  });
});
