import type { Bundle, BundleEntry } from 'fhir/r4';
import { FHIR_JSON, patient, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h.close());

type Entry = Record<string, unknown>;

function post(bundle: Record<string, unknown>, prefer?: string) {
  const r = h.request.post('/fhir').set('Content-Type', FHIR_JSON);
  if (prefer) r.set('Prefer', prefer);
  return r.send(JSON.stringify(bundle));
}

const tx = (...entry: Entry[]) => ({ resourceType: 'Bundle', type: 'transaction', entry });
const batch = (...entry: Entry[]) => ({ resourceType: 'Bundle', type: 'batch', entry });
const create = (fullUrl: string, resource: Record<string, unknown>, extra: Entry = {}): Entry => ({
  fullUrl,
  resource,
  request: { method: 'POST', url: resource.resourceType, ...extra },
});
const put = (url: string, resource: Record<string, unknown>, extra: Entry = {}): Entry => ({
  resource,
  request: { method: 'PUT', url, ...extra },
});
const mrn = (v: string) => patient({ identifier: [{ system: 'http://hospital.example/mrn', value: v }] });

async function total(path: string): Promise<number> {
  const r = await h.request.get(`/fhir/${path}`);
  expect(r.status).toBe(200);
  return r.body.total as number;
}

async function read(ref: string): Promise<Record<string, unknown>> {
  const r = await h.request.get(`/fhir/${ref}`);
  expect(r.status).toBe(200);
  return r.body as Record<string, unknown>;
}

function locationRef(e: BundleEntry | undefined): string {
  const loc = e?.response?.location ?? '';
  return loc.replace(/\/_history\/\d+$/, '');
}

describe('transaction: urn:uuid identities', () => {
  test('every reference to a fullUrl is rewritten: nested, extension, contained, narrative', async () => {
    const p = 'urn:uuid:6a4ec3c6-1111-4b5e-9d53-000000000001';
    const obs = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: p },
      text: {
        status: 'generated',
        div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${p}">patient</a><img src="${p}"/></div>`,
      },
      extension: [{ url: 'http://example.org/ext', valueReference: { reference: p } }],
      contained: [
        {
          resourceType: 'Provenance',
          id: 'prov',
          target: [{ reference: p }],
          recorded: '2024-01-01T00:00:00Z',
          agent: [{ who: { reference: p } }],
        },
      ],
      // Observation.focus may reference any type (performer may not reference a Provenance).
      focus: [{ reference: '#prov' }],
    };
    const r = await post(
      tx(create('urn:uuid:6a4ec3c6-1111-4b5e-9d53-000000000002', obs), create(p, mrn('U-1'))),
    );
    expect(r.status).toBe(200);
    const b = r.body as Bundle;
    expect(b.type).toBe('transaction-response');
    expect(b.entry?.map((e) => e.response?.status)).toEqual(['201 Created', '201 Created']);
    const patientRef = locationRef(b.entry?.[1]);
    expect(patientRef).toMatch(/^Patient\/[A-Za-z0-9-]+$/);
    const stored = await read(locationRef(b.entry?.[0]));
    const s = JSON.stringify(stored);
    expect(s).not.toContain('urn:uuid');
    expect((stored.subject as { reference: string }).reference).toBe(patientRef);
    expect(
      (stored.extension as Array<{ valueReference: { reference: string } }>)[0]?.valueReference.reference,
    ).toBe(patientRef);
    expect(
      (stored.contained as Array<{ target: Array<{ reference: string }> }>)[0]?.target[0]?.reference,
    ).toBe(patientRef);
    expect((stored.text as { div: string }).div).toContain(`href="${patientRef}"`);
    expect((stored.text as { div: string }).div).toContain(`src="${patientRef}"`);
    expect((stored.focus as Array<{ reference: string }>)[0]?.reference).toBe('#prov');
  });

  test('a urn:uuid reference that is no entry of the Bundle fails the transaction (400)', async () => {
    const before = await total('Observation?code:text=dangling');
    const r = await post(
      tx(
        create('urn:uuid:00000000-0000-4000-8000-00000000000a', {
          resourceType: 'Observation',
          status: 'final',
          code: { text: 'dangling' },
          subject: { reference: 'urn:uuid:00000000-0000-4000-8000-0000000000ff' },
        }),
      ),
    );
    expect(r.status).toBe(400);
    expect(r.body.resourceType).toBe('OperationOutcome');
    expect(await total('Observation?code:text=dangling')).toBe(before);
  });

  test('the response entries follow the request order and carry location, etag and lastModified', async () => {
    const r = await post(
      tx(create('urn:uuid:a1', mrn('U-2')), put('Patient/order-1', { ...mrn('U-3'), id: 'order-1' })),
    );
    expect(r.status).toBe(200);
    const [first, second] = (r.body as Bundle).entry ?? [];
    expect(first?.response?.location).toMatch(/^Patient\/[^/]+\/_history\/1$/);
    expect(second?.response).toMatchObject({
      status: '201 Created',
      location: 'Patient/order-1/_history/1',
      etag: 'W/"1"',
    });
    expect(second?.response?.lastModified).toEqual(expect.any(String));
    expect(second?.resource).toMatchObject({ resourceType: 'Patient', id: 'order-1' });
  });
});

describe('transaction: all or nothing', () => {
  test('a failing entry leaves the store unchanged (count and history) and the outcome names the entry', async () => {
    await h.request
      .put('/fhir/Patient/rb-1')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...mrn('RB'), id: 'rb-1' }));
    const patients = await total('Patient');
    const history = await total('Patient/_history');
    const r = await post(
      tx(
        create('urn:uuid:rb-new', mrn('RB-NEW')),
        put('Patient/rb-1', { ...mrn('RB'), id: 'rb-1', gender: 'male' }),
        put('Patient/rb-1x', { ...mrn('RB'), id: 'rb-1x' }),
        { fullUrl: 'urn:uuid:rb-del', request: { method: 'DELETE', url: 'Patient/rb-1x' } },
        {
          fullUrl: 'http://example.org/fhir/Patient/rb-2',
          ...put('Patient/rb-2', { ...mrn('RB'), id: 'rb-2' }, { ifMatch: 'W/"7"' }),
        },
      ),
    );
    expect(r.status).toBe(400); // rb-1x is both PUT and DELETE: checked before the If-Match
    expect(await total('Patient')).toBe(patients);
    expect(await total('Patient/_history')).toBe(history);

    const r2 = await post(
      tx(
        create('urn:uuid:rb-new', mrn('RB-NEW')),
        put('Patient/rb-1', { ...mrn('RB'), id: 'rb-1', gender: 'male' }),
        {
          fullUrl: 'http://example.org/fhir/Patient/rb-2',
          ...put('Patient/rb-2', { ...mrn('RB'), id: 'rb-2' }, { ifMatch: 'W/"7"' }),
        },
      ),
    );
    expect(r2.status).toBe(412);
    const diag = JSON.stringify(r2.body.issue);
    expect(diag).toContain('Bundle.entry[2]');
    expect(diag).toContain('http://example.org/fhir/Patient/rb-2');
    expect(await total('Patient')).toBe(patients);
    expect(await total('Patient/_history')).toBe(history);
    expect((await read('Patient/rb-1')).gender).toBe('female');
  });

  test('an invalid resource in any entry fails the whole transaction (400) before anything is written', async () => {
    const patients = await total('Patient');
    const r = await post(
      tx(
        create('urn:uuid:v1', mrn('V-1')),
        create('urn:uuid:v2', { resourceType: 'Patient', id: 'bad id!' }),
      ),
    );
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toContain('Bundle.entry[1]');
    expect(await total('Patient')).toBe(patients);
  });

  test('two entries identifying the same resource give 400', async () => {
    const r = await post(
      tx(
        put('Patient/dup-1', { ...mrn('D'), id: 'dup-1' }),
        put('Patient/dup-1', { ...mrn('D'), id: 'dup-1' }),
      ),
    );
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toContain('Bundle.entry[1]');
    expect((await h.request.get('/fhir/Patient/dup-1')).status).toBe(404);
  });

  test('two concurrent transactions updating one resource: one wins, the other gets 412, nothing half-applied', async () => {
    await h.request
      .put('/fhir/Patient/race-1')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...mrn('RACE'), id: 'race-1' }));
    const attempt = (tag: string) =>
      post(
        tx(
          put(
            'Patient/race-1',
            { ...mrn('RACE'), id: 'race-1', gender: tag === 'a' ? 'male' : 'other' },
            { ifMatch: 'W/"1"' },
          ),
          create(`urn:uuid:race-${tag}`, {
            resourceType: 'Observation',
            status: 'final',
            code: { text: `race-${tag}` },
            subject: { reference: 'Patient/race-1' },
          }),
        ),
      );
    const results = await Promise.all([attempt('a'), attempt('b')]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses[0]).toBe(200);
    expect([409, 412]).toContain(statuses[1]);
    const winner = results.find((r) => r.status === 200);
    const tag = (winner?.body as Bundle).entry?.[1]?.resource as unknown as { code: { text: string } };
    const p = await read('Patient/race-1');
    expect(p.meta).toMatchObject({ versionId: '2' });
    expect(p.gender).toBe(tag.code.text === 'race-a' ? 'male' : 'other');
    expect(
      (await total('Observation?code:text=race-a')) + (await total('Observation?code:text=race-b')),
    ).toBe(1);
  });
});

describe('transaction: processing order and conditions', () => {
  test('DELETE runs before POST, and GET runs last and sees the writes', async () => {
    const old = await post(tx(create('urn:uuid:o1', mrn('ORD'))));
    const oldRef = locationRef((old.body as Bundle).entry?.[0]);
    const r = await post(
      tx(
        { request: { method: 'GET', url: 'Patient?identifier=http://hospital.example/mrn|ORD' } },
        create('urn:uuid:o2', { ...mrn('ORD'), gender: 'male' }),
        { request: { method: 'DELETE', url: 'Patient?identifier=http://hospital.example/mrn|ORD' } },
      ),
    );
    expect(r.status).toBe(200);
    const [get, created, deleted] = (r.body as Bundle).entry ?? [];
    // The delete ran first, so it removed the old Patient and not the one the POST made.
    expect(deleted?.response?.status).toBe('204 No Content');
    expect(created?.response?.status).toBe('201 Created');
    expect((await h.request.get(`/fhir/${oldRef}`)).status).toBe(410);
    const found = get?.resource as Bundle;
    expect(found.total).toBe(1);
    expect((found.entry?.[0]?.resource as { gender?: string }).gender).toBe('male');
  });

  test('a conditional create and a delete resolving to the same resource overlap: 400', async () => {
    await post(tx(create('urn:uuid:ov1', mrn('OVL'))));
    const r = await post(
      tx(create('urn:uuid:ov2', mrn('OVL'), { ifNoneExist: 'identifier=http://hospital.example/mrn|OVL' }), {
        request: { method: 'DELETE', url: 'Patient?identifier=http://hospital.example/mrn|OVL' },
      }),
    );
    expect(r.status).toBe(400);
    expect(await total('Patient?identifier=http://hospital.example/mrn|OVL')).toBe(1);
  });

  test('ifNoneExist that matches answers 200 and references to its fullUrl point to the existing resource', async () => {
    const first = await post(tx(create('urn:uuid:ine-1', mrn('INE'))));
    const existing = locationRef((first.body as Bundle).entry?.[0]);
    const r = await post(
      tx(
        create('urn:uuid:ine-2', mrn('INE'), { ifNoneExist: 'identifier=http://hospital.example/mrn|INE' }),
        create('urn:uuid:ine-obs', {
          resourceType: 'Observation',
          status: 'final',
          code: { text: 'ine' },
          subject: { reference: 'urn:uuid:ine-2' },
        }),
      ),
    );
    expect(r.status).toBe(200);
    const [p, o] = (r.body as Bundle).entry ?? [];
    expect(p?.response?.status).toBe('200 OK');
    expect(locationRef(p)).toBe(existing);
    expect((o?.resource as unknown as { subject: { reference: string } }).subject.reference).toBe(existing);
  });

  test('conditional references resolve to the one stored match; none is 400, several are 412', async () => {
    const prac = (npi: string) => ({
      resourceType: 'Practitioner',
      identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: npi }],
    });
    const one = await h.request
      .post('/fhir/Practitioner')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(prac('111')));
    for (let i = 0; i < 2; i++)
      await h.request
        .post('/fhir/Practitioner')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify(prac('222')));
    const enc = (npi: string) =>
      tx(
        create('urn:uuid:enc-p', mrn('ENC')),
        create('urn:uuid:enc', {
          resourceType: 'Encounter',
          status: 'finished',
          class: { code: 'AMB' },
          subject: { reference: 'urn:uuid:enc-p' },
          participant: [
            { individual: { reference: `Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|${npi}` } },
          ],
        }),
      );
    const ok = await post(enc('111'));
    expect(ok.status).toBe(200);
    const e = (ok.body as Bundle).entry?.[1]?.resource as unknown as {
      participant: Array<{ individual: { reference: string } }>;
    };
    expect(e.participant[0]?.individual.reference).toBe(`Practitioner/${one.body.id as string}`);
    const encounters = await total('Encounter');
    const none = await post(enc('999'));
    expect(none.status).toBe(400);
    expect(JSON.stringify(none.body)).toContain('Bundle.entry[1] (urn:uuid:enc)');
    const many = await post(enc('222'));
    expect(many.status).toBe(412);
    expect(await total('Encounter')).toBe(encounters);
  });

  test('PATCH entries take JSON Patch in a Binary', async () => {
    await h.request
      .put('/fhir/Patient/patch-1')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...mrn('P'), id: 'patch-1' }));
    const ops = [{ op: 'replace', path: '/gender', value: 'male' }];
    const r = await post(
      tx({
        resource: {
          resourceType: 'Binary',
          contentType: 'application/json-patch+json',
          data: Buffer.from(JSON.stringify(ops)).toString('base64'),
        },
        request: { method: 'PATCH', url: 'Patient/patch-1' },
      }),
    );
    expect(r.status).toBe(200);
    expect((r.body as Bundle).entry?.[0]?.response?.status).toBe('200 OK');
    expect((await read('Patient/patch-1')).gender).toBe('male');
  });

  test('a PATCH entry is validated like the PATCH interaction: an invalid result fails the transaction', async () => {
    const ops = [{ op: 'replace', path: '/gender', value: 'not-a-gender' }];
    const patchEntry = {
      resource: {
        resourceType: 'Binary',
        contentType: 'application/json-patch+json',
        data: Buffer.from(JSON.stringify(ops)).toString('base64'),
      },
      request: { method: 'PATCH', url: 'Patient/patch-1' },
    };
    const plain = await h.request
      .patch('/fhir/Patient/patch-1')
      .set('Content-Type', 'application/json-patch+json')
      .send(JSON.stringify(ops));
    const r = await post(tx(patchEntry));
    expect(plain.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBe(plain.status);
    expect((r.body as { resourceType?: string }).resourceType).toBe('OperationOutcome');
    expect((await read('Patient/patch-1')).gender).toBe('male');
  });
});

describe('Prefer on entries', () => {
  test('return=minimal leaves out the resources', async () => {
    const r = await post(tx(create('urn:uuid:m1', mrn('M-1'))), 'return=minimal');
    const e = (r.body as Bundle).entry?.[0];
    expect(e?.response?.status).toBe('201 Created');
    expect(e?.resource).toBeUndefined();
  });

  test('return=OperationOutcome puts an outcome on each entry', async () => {
    const r = await post(tx(create('urn:uuid:m2', mrn('M-2'))), 'return=OperationOutcome');
    const e = (r.body as Bundle).entry?.[0];
    expect(e?.resource).toBeUndefined();
    expect(e?.response?.outcome?.resourceType).toBe('OperationOutcome');
  });
});

describe('batch', () => {
  test('entries are independent: a failing one gets its own status and outcome, the others succeed', async () => {
    await h.request
      .put('/fhir/Patient/b-1')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...mrn('B'), id: 'b-1' }));
    const r = await post(
      batch(
        create('urn:uuid:b-ok', mrn('B-OK')),
        put('Patient/b-1', { ...mrn('B'), id: 'b-1' }, { ifMatch: 'W/"9"' }),
        { request: { method: 'GET', url: 'Patient/b-1' } },
        { request: { method: 'GET', url: 'Patient/does-not-exist' } },
        create('urn:uuid:b-bad', { resourceType: 'Observation', status: 'final' }, {}),
        { request: { method: 'POST', url: 'NoSuchType' }, resource: { resourceType: 'NoSuchType' } },
      ),
    );
    expect(r.status).toBe(200);
    const b = r.body as Bundle;
    expect(b.type).toBe('batch-response');
    const statuses = b.entry?.map((e) => e.response?.status.slice(0, 3));
    expect(statuses?.[0]).toBe('201');
    expect(statuses?.[1]).toBe('412');
    expect(statuses?.[2]).toBe('200');
    expect(statuses?.[3]).toBe('404');
    expect(statuses?.[5]).toBe('404');
    expect(b.entry?.[1]?.response?.outcome?.resourceType).toBe('OperationOutcome');
    expect((b.entry?.[2]?.resource as { id: string }).id).toBe('b-1');
    expect(await total('Patient?identifier=http://hospital.example/mrn|B-OK')).toBe(1);
  });

  test('a search entry answers a searchset Bundle', async () => {
    const r = await post(
      batch({ request: { method: 'GET', url: 'Patient?identifier=http://hospital.example/mrn|B' } }),
    );
    const e = (r.body as Bundle).entry?.[0];
    expect(e?.response?.status).toBe('200 OK');
    expect((e?.resource as Bundle).type).toBe('searchset');
  });
});

describe('POST [base] input', () => {
  test('a Bundle of another type is 400', async () => {
    const r = await post({ resourceType: 'Bundle', type: 'collection', entry: [] });
    expect(r.status).toBe(400);
  });

  test('a body that is not a Bundle is 400', async () => {
    const r = await post(patient());
    expect(r.status).toBe(400);
  });

  test('the CapabilityStatement claims batch and transaction', async () => {
    const r = await h.request.get('/fhir/metadata');
    const codes = (r.body.rest[0].interaction as Array<{ code: string }>).map((i) => i.code);
    expect(codes).toEqual(expect.arrayContaining(['batch', 'transaction']));
  });
});

describe('a store without multi-document transactions', () => {
  let s: Harness;
  beforeAll(async () => {
    s = await startHarness();
    // As on a standalone mongod: the backend says it cannot run transactions.
    Object.defineProperty(s.ctx.store.backend, 'supportsTransactions', { value: false });
  });
  afterAll(async () => s.close());

  test('refuses a transaction Bundle (501) and stores nothing', async () => {
    const r = await s.request
      .post('/fhir')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(tx(create('urn:uuid:nt-1', mrn('NT')))));
    expect(r.status).toBe(501);
    expect(r.body.resourceType).toBe('OperationOutcome');
    expect(await s.ctx.store.count('Patient', {})).toBe(0);
  });

  test('still runs batches, and the CapabilityStatement claims batch but not transaction', async () => {
    const r = await s.request
      .post('/fhir')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(batch(create('urn:uuid:nt-2', mrn('NT')))));
    expect((r.body as Bundle).entry?.[0]?.response?.status).toBe('201 Created');
    const m = await s.request.get('/fhir/metadata');
    const codes = (m.body.rest[0].interaction as Array<{ code: string }>).map((i) => i.code);
    expect(codes).toContain('batch');
    expect(codes).not.toContain('transaction');
  });
});
