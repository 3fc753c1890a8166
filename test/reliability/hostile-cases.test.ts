import { FHIR_JSON, patient, startHarness, type Harness } from '../api/harness';

/**
 * Known attack shapes, one each: MongoDB operator injection, prototype pollution, huge or deep
 * documents, invalid UTF-8, duplicate keys, absurd paging. Each is answered with the right 4xx (an
 * OperationOutcome) or a correct 200, never a 5xx, and a refused write stores nothing.
 */
let h: Harness;
let pid: string;
beforeAll(async () => {
  h = await startHarness({ AUDIT: 'off' });
  const r = await h.request
    .post('/fhir/Patient')
    .set('Content-Type', FHIR_JSON)
    .send(JSON.stringify(patient()));
  pid = r.body.id as string;
});
afterAll(async () => h.close());

interface Answer {
  status: number;
  body: { resourceType?: string; total?: number; entry?: unknown[] };
}

function expectRefused(r: Answer, status = 400): void {
  expect({ status: r.status, type: r.body.resourceType }).toEqual({ status, type: 'OperationOutcome' });
}

/** A 200 searchset, or a 4xx OperationOutcome; never 5xx. */
function expectSearchAnswer(r: Answer): void {
  expect(r.status).toBeLessThan(500);
  expect(r.body.resourceType).toBe(r.status === 200 ? 'Bundle' : 'OperationOutcome');
}

async function patients(): Promise<number> {
  return (await h.request.get('/fhir/Patient?_summary=count')).body.total as number;
}

const post = (type: string, body: string | Buffer, contentType = FHIR_JSON) =>
  h.request.post(`/fhir/${type}`).set('Content-Type', contentType).send(body);
const patch = (body: string) =>
  h.request.patch(`/fhir/Patient/${pid}`).set('Content-Type', 'application/json-patch+json').send(body);

describe('stores nothing when refused', () => {
  let before = 0;
  beforeEach(async () => {
    before = await patients();
  });
  afterEach(async () => {
    expect(await patients()).toBe(before);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect((await h.request.get(`/fhir/Patient/${pid}`)).body.meta.versionId).toBe('1');
  });

  test('an operator object as an element value is 400', async () => {
    expectRefused(await post('Patient', JSON.stringify({ resourceType: 'Patient', gender: { $gt: '' } })));
  });

  test('a $where member is 400', async () => {
    expectRefused(await post('Patient', JSON.stringify({ resourceType: 'Patient', $where: 'sleep(1000)' })));
  });

  test('__proto__ in a body is 400', async () => {
    expectRefused(await post('Patient', '{"resourceType":"Patient","__proto__":{"x":1}}'));
  });

  test('constructor.prototype in a body is 400', async () => {
    expectRefused(await post('Patient', '{"resourceType":"Patient","constructor":{"prototype":{"x":1}}}'));
  });

  test('an id with operator characters in the URL of an update is refused', async () => {
    const r = await h.request
      .put('/fhir/Patient/%24where')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Patient', id: '$where' }));
    expectRefused(r);
  });

  test.each([
    ['/$where', 'add'],
    ['/__proto__/x', 'add'],
    ['/constructor/prototype/x', 'add'],
    ['/gender/$gt', 'add'],
    ['/name/0/$regex', 'replace'],
  ])('JSON Patch path %s (%s) is refused', async (path, op) => {
    const r = await patch(JSON.stringify([{ op, path, value: 1 }]));
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body.resourceType).toBe('OperationOutcome');
  });

  test('a JSON Patch value holding an operator is 400', async () => {
    expectRefused(await patch(JSON.stringify([{ op: 'replace', path: '/gender', value: { $gt: '' } }])));
  });

  test('10,000 levels of nesting in a JSON Patch document is 400', async () => {
    expectRefused(
      await patch(`[{"op":"add","path":"/extension","value":${'['.repeat(10000)}${']'.repeat(10000)}}]`),
    );
  });

  test('10,000 levels of nesting in a Bundle is 400', async () => {
    const deep = `${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}`;
    expectRefused(await h.request.post('/fhir').set('Content-Type', FHIR_JSON).send(deep));
  });

  test('duplicate keys in a Bundle entry are 400', async () => {
    const body =
      '{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","gender":"male","gender":"female"},"request":{"method":"POST","url":"Patient"}}]}';
    expectRefused(await h.request.post('/fhir').set('Content-Type', FHIR_JSON).send(body));
  });

  test('duplicate keys in a JSON Patch document are 400', async () => {
    expectRefused(await patch('[{"op":"replace","path":"/gender","value":"male","value":"other"}]'));
  });

  test('invalid UTF-8 in a JSON Patch document is 400', async () => {
    const body = Buffer.concat([
      Buffer.from('[{"op":"replace","path":"/gender","value":"'),
      Buffer.from([0xff]),
      Buffer.from('"}]'),
    ]);
    const r = await h.request
      .patch(`/fhir/Patient/${pid}`)
      .set('Content-Type', 'application/json-patch+json')
      .send(body);
    expectRefused(r);
  });

  test('a transaction with an operator in one entry stores none of its entries', async () => {
    const r = await h.request
      .post('/fhir')
      .set('Content-Type', FHIR_JSON)
      .send(
        JSON.stringify({
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { resource: patient(), request: { method: 'POST', url: 'Patient' } },
            {
              resource: { resourceType: 'Patient', gender: { $ne: null } },
              request: { method: 'POST', url: 'Patient' },
            },
          ],
        }),
      );
    expectRefused(r);
  });
});

describe('searches with hostile parameters', () => {
  test.each([
    ['_id={"$gt":""}', `_id=${encodeURIComponent('{"$gt":""}')}`],
    ['_id=$regex', `_id=${encodeURIComponent('$regex')}`],
    ['_id=.*', `_id=${encodeURIComponent('.*')}`],
    ['family=$where', `family=${encodeURIComponent('$where')}`],
    ['family={"$ne":null}', `family=${encodeURIComponent('{"$ne":null}')}`],
    ['identifier=$regex|.*', `identifier=${encodeURIComponent('$regex|.*')}`],
  ])('%s matches nothing (no operator reaches the query)', async (_name, q) => {
    const r = await h.request.get(`/fhir/Patient?${q}`);
    expect(r.status).toBe(200);
    expect(r.body.resourceType).toBe('Bundle');
    expect(r.body.entry ?? []).toHaveLength(0);
  });

  test.each(
    [
      '_sort=$where',
      '_sort=-$where',
      '_sort=__proto__',
      'name[$regex]=.*',
      'gender[$ne]=x',
      '__proto__[x]=1',
      'constructor[prototype][x]=1',
      '__proto__.x=1',
      `family=${'%C3%28'}`,
      `family=${'%FF%FE'}`,
      `family=${'a'.repeat(8_000)}`,
    ].map((q) => [q.length > 60 ? `${q.slice(0, 20)}... (${q.length} characters)` : q, q]),
  )('%s is a 200 Bundle or a 4xx OperationOutcome', async (_name, q) => {
    expectSearchAnswer(await h.request.get(`/fhir/Patient?${q}`));
    expectSearchAnswer(await h.request.get(`/fhir/Patient?${q}`).set('Prefer', 'handling=strict'));
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  test('a read of an id that is an operator is 404 or 400', async () => {
    for (const id of ['$where', '{"$gt":""}', '__proto__', '.*']) {
      const r = await h.request.get(`/fhir/Patient/${encodeURIComponent(id)}`);
      expect([400, 404]).toContain(r.status);
      expect(r.body.resourceType).toBe('OperationOutcome');
    }
  });

  test('_count=999999999 is a 200 page of what is there', async () => {
    const r = await h.request.get('/fhir/Patient?_count=999999999');
    expect(r.status).toBe(200);
    expect(r.body.entry?.length).toBe(await patients());
  });

  test.each(['_count=-1', '_count=abc', '_offset=-1', '_offset=abc', '_offset=1e400', '_count=1.5'])(
    '%s is 400 with an OperationOutcome',
    async (q) => {
      expectRefused(await h.request.get(`/fhir/Patient?${q}`));
    },
  );
});

describe('large documents within MAX_BODY', () => {
  test('a Patient with 100,000 identifiers is accepted or refused cleanly', async () => {
    const before = await patients();
    const identifier = Array.from({ length: 100_000 }, (_, i) => ({ system: 'urn:x', value: `v${i}` }));
    const r = await post('Patient', JSON.stringify({ resourceType: 'Patient', identifier }));
    expect(r.status).toBeLessThan(500);
    if (r.status === 201) {
      expect(await patients()).toBe(before + 1);
      // The server still answers other requests afterwards.
      expect((await h.request.get(`/fhir/Patient/${pid}`)).status).toBe(200);
    } else {
      expect(r.body.resourceType).toBe('OperationOutcome');
      expect(await patients()).toBe(before);
    }
  });

  test('a 1 MB string is stored and read back whole, or refused cleanly', async () => {
    const family = 'x'.repeat(1024 * 1024);
    const r = await post('Patient', JSON.stringify({ resourceType: 'Patient', name: [{ family }] }));
    expect(r.status).toBeLessThan(500);
    if (r.status === 201) {
      const back = await h.request.get(`/fhir/Patient/${r.body.id}`);
      expect(back.body.name[0].family).toHaveLength(family.length);
    } else {
      expect(r.body.resourceType).toBe('OperationOutcome');
    }
  });
});
