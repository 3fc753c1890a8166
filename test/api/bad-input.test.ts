import { FHIR_JSON, patient, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ MAX_BODY: '64kb' });
});
afterAll(async () => h.close());

async function patientCount(): Promise<number> {
  const r = await h.request.get('/fhir/Patient?_summary=count');
  return r.body.total as number;
}

function expectOutcome(r: { status: number; body: { resourceType?: string } }, status: number): void {
  expect(r.status).toBe(status);
  expect(r.body.resourceType).toBe('OperationOutcome');
}

describe('bad input is refused with an OperationOutcome and stores nothing', () => {
  let before = 0;
  beforeEach(async () => {
    before = await patientCount();
  });
  afterEach(async () => {
    expect(await patientCount()).toBe(before);
  });

  const post = (body: string | Buffer, type = FHIR_JSON) =>
    h.request.post('/fhir/Patient').set('Content-Type', type).send(body);

  test('malformed JSON is 400', async () => {
    expectOutcome(await post('{"resourceType": "Patient",'), 400);
  });

  test('duplicate keys are 400', async () => {
    expectOutcome(await post('{"resourceType":"Patient","gender":"male","gender":"female"}'), 400);
  });

  test('nesting deeper than MAX_JSON_DEPTH is 400, without a stack overflow', async () => {
    const deep = `{"resourceType":"Patient","extension":${'['.repeat(10000)}${']'.repeat(10000)}}`;
    expectOutcome(await post(deep), 400);
  });

  test('invalid UTF-8 is 400', async () => {
    const buf = Buffer.concat([
      Buffer.from('{"resourceType":"Patient","gender":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    expectOutcome(await post(buf), 400);
  });

  test('resourceType different from the URL is 400', async () => {
    expectOutcome(await post(JSON.stringify({ resourceType: 'Observation', status: 'final' })), 400);
  });

  test('a body that is not an object is 400', async () => {
    expectOutcome(await post('[1,2,3]'), 400);
  });

  test('an empty body is 400', async () => {
    expectOutcome(await post(''), 400);
  });

  test('__proto__ and constructor keys are 400', async () => {
    expectOutcome(await post('{"resourceType":"Patient","__proto__":{"admin":true}}'), 400);
    expectOutcome(await post('{"resourceType":"Patient","name":[{"constructor":{}}]}'), 400);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  test('$-prefixed keys are 400', async () => {
    expectOutcome(await post('{"resourceType":"Patient","$where":"1"}'), 400);
  });

  test('an unsupported Content-Type is 415', async () => {
    expectOutcome(await post(JSON.stringify(patient()), 'text/plain'), 415);
    expectOutcome(await post('<Patient xmlns="http://hl7.org/fhir"/>', 'application/fhir+xml'), 415);
  });

  test('a body over MAX_BODY is 413', async () => {
    const big = JSON.stringify(
      patient({ text: { status: 'generated', div: `<div>${'x'.repeat(70 * 1024)}</div>` } }),
    );
    expectOutcome(await post(big), 413);
  });

  test('an unknown resource type is 404', async () => {
    const r = await h.request
      .post('/fhir/Unicorn')
      .set('Content-Type', FHIR_JSON)
      .send('{"resourceType":"Unicorn"}');
    expectOutcome(r, 404);
    expectOutcome(await h.request.get('/fhir/Unicorn/1'), 404);
  });

  test('ids outside [A-Za-z0-9-.]{1,64} are 400', async () => {
    expectOutcome(await h.request.get(`/fhir/Patient/${'a'.repeat(65)}`), 400);
    expectOutcome(await h.request.get('/fhir/Patient/a_b'), 400);
    const r = await h.request
      .put('/fhir/Patient/a$b')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient({ id: 'a$b' })));
    expectOutcome(r, 400);
  });

  test('PUT with a body id different from the URL is 400', async () => {
    const r = await h.request
      .put('/fhir/Patient/one')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient({ id: 'two' })));
    expectOutcome(r, 400);
  });

  test('PUT without an id in the body is 400', async () => {
    const r = await h.request
      .put('/fhir/Patient/one')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    expectOutcome(r, 400);
  });

  test('a malformed If-Match is 400', async () => {
    const r = await h.request
      .put('/fhir/Patient/one')
      .set('Content-Type', FHIR_JSON)
      .set('If-Match', 'banana')
      .send(JSON.stringify(patient({ id: 'one' })));
    expectOutcome(r, 400);
  });

  test('query strings like name[$ne]=x stay strings and never become operators', async () => {
    const r = await h.request.get('/fhir/Patient?name[$ne]=x');
    expect(r.status).toBeLessThan(500);
    if (r.status === 200) expect(r.body.total ?? 0).toBe(0);
    const r2 = await h.request.get('/fhir/Patient?_id[$gt]=');
    expect(r2.status).toBeLessThan(500);
    if (r2.status === 200) expect(r2.body.total ?? 0).toBe(0);
  });

  test('a search value that looks like an operator matches nothing', async () => {
    await h.request.post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(JSON.stringify(patient()));
    before += 1;
    const r = await h.request.get(`/fhir/Patient?_id=${encodeURIComponent('{"$gt":""}')}`);
    expect(r.status).toBeLessThan(500);
    if (r.status === 200) expect(r.body.total).toBe(0);
    const r2 = await h.request.get(`/fhir/Patient?family=${encodeURIComponent('.*')}`);
    expect(r2.status).toBe(200);
    expect(r2.body.total).toBe(0);
  });

  test('asking only for XML is 406', async () => {
    expectOutcome(await h.request.get('/fhir/metadata').set('Accept', 'application/fhir+xml'), 406);
    expectOutcome(await h.request.get('/fhir/metadata?_format=xml'), 406);
  });

  test('an unsupported method on a resource is 405 with Allow', async () => {
    const r = await h.request.post('/fhir/Patient/123').set('Content-Type', FHIR_JSON).send('{}');
    expectOutcome(r, 405);
    expect(r.headers.allow).toContain('GET');
  });

  test.each([
    ['post', '/fhir/Patient/123', 'GET, HEAD, PUT, PATCH, DELETE'],
    ['put', '/fhir', 'GET, HEAD, POST'],
    ['delete', '/fhir/Patient/123/$everything', 'GET, HEAD'],
    // The generic /:type/:id routes also match here: their methods are allowed too.
    ['post', '/fhir/$export-status/abc', 'GET, HEAD, PUT, PATCH, DELETE'],
    ['post', '/fhir/Patient/123/_history', 'GET, HEAD'],
  ] as const)('%s %s: 405, Allow is what the routes answer there (%s)', async (method, path, allow) => {
    const r = await h.request[method](path).set('Content-Type', FHIR_JSON).send('{}');
    expectOutcome(r, 405);
    expect(r.headers.allow).toBe(allow);
  });

  test('a path no route has is 404, not 405', async () => {
    expectOutcome(await h.request.get('/fhir/Patient/1/_history/2/extra'), 404);
  });
});

describe('request ids', () => {
  test('a sane client X-Request-Id is echoed', async () => {
    const r = await h.request.get('/fhir/metadata').set('X-Request-Id', 'abc-123');
    expect(r.headers['x-request-id']).toBe('abc-123');
  });

  test('an insane X-Request-Id is replaced', async () => {
    const r = await h.request.get('/fhir/metadata').set('X-Request-Id', 'x'.repeat(500));
    expect(r.headers['x-request-id']).not.toBe('x'.repeat(500));
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
