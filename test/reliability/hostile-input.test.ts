import fc from 'fast-check';
import { FHIR_JSON, patient, startHarness, type Harness } from '../api/harness';

/**
 * Hostile input thrown at the API (in-process harness): generated resources, search strings,
 * Bundles and JSON Patch documents, valid and broken, plus the known attack shapes (MongoDB operator
 * injection, prototype pollution, huge nesting/arrays/strings, invalid UTF-8, duplicate keys, absurd
 * paging). Whatever comes in: never a 5xx, every 4xx is an OperationOutcome, and a refused request
 * stores nothing.
 */
const RUNS = 200;

let h: Harness;
let existing: { id: string; body: Record<string, unknown> };
beforeAll(async () => {
  // Audit off: this suite is about the store and the parsers; the audit trail has its own tests.
  h = await startHarness({ AUDIT: 'off' });
  const r = await h.request
    .post('/fhir/Patient')
    .set('Content-Type', FHIR_JSON)
    .send(JSON.stringify(patient()));
  existing = { id: r.body.id as string, body: r.body as Record<string, unknown> };
});
afterAll(async () => h.close());

interface Answer {
  status: number;
  body: { resourceType?: string; total?: number; meta?: { versionId?: string } };
}

/** No 5xx; a 4xx is an OperationOutcome. */
function expectClean(r: Answer, what: string): void {
  if (r.status >= 500 || (r.status >= 400 && r.body.resourceType !== 'OperationOutcome'))
    throw new Error(`${what} -> ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`);
}

async function count(type: string): Promise<number> {
  const r = await h.request.get(`/fhir/${type}?_summary=count`);
  return r.body.total as number;
}

async function counts(): Promise<string> {
  return `${await count('Patient')}/${await count('Observation')}`;
}

/** Keys an attacker would try, mixed into generated objects. */
const hostileKey = fc.constantFrom(
  '$where',
  '$gt',
  '$regex',
  '$ne',
  '$expr',
  '__proto__',
  'constructor',
  'prototype',
  'idx',
  '_id',
);
const key = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: hostileKey },
);
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 20 }),
    fc.constantFrom('$where', '{"$gt": ""}', '.*', 'Patient/../x', '\u0000'),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** A Patient, plausible or not: real elements with generated values, plus generated members. */
const resource = fc
  .record(
    {
      resourceType: fc.constantFrom('Patient', 'Patient', 'Observation', '', '$where', 'Bundle'),
      id: fc.oneof(
        fc.constant(undefined),
        fc.stringMatching(/^[A-Za-z0-9\-.]{1,64}$/),
        fc.string(),
        hostileKey,
      ),
      gender: fc.oneof(fc.constantFrom('male', 'female', 'other', 'unknown'), json),
      birthDate: fc.oneof(fc.constantFrom('1980-02-29', '1981-02-29', '2000'), json),
      name: fc.oneof(fc.constant([{ family: 'Fuzz', given: ['A'] }]), json),
      active: fc.oneof(fc.boolean(), json),
      extra: fc.dictionary(key, json, { maxKeys: 3 }),
    },
    { requiredKeys: ['resourceType'] },
  )
  .map(({ extra, ...r }) => ({ ...extra, ...r }));

describe('property: generated input never breaks the server', () => {
  test('resources: created (201, one more) or refused (4xx OperationOutcome, nothing stored)', async () => {
    await fc.assert(
      fc.asyncProperty(resource, async (res) => {
        const before = await counts();
        const r = await h.request
          .post('/fhir/Patient')
          .set('Content-Type', FHIR_JSON)
          .send(JSON.stringify(res));
        expectClean(r, `POST ${JSON.stringify(res)}`);
        if (r.status !== 201 && (await counts()) !== before)
          throw new Error(`refused (${r.status}) but stored`);
      }),
      { numRuns: RUNS },
    );
  });

  test('updates: applied (200) or refused with the stored version unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(resource, async (res) => {
        const before = await h.request.get(`/fhir/Patient/${existing.id}`);
        const r = await h.request
          .put(`/fhir/Patient/${existing.id}`)
          .set('Content-Type', FHIR_JSON)
          .send(JSON.stringify({ ...res, id: existing.id }));
        expectClean(r, `PUT ${JSON.stringify(res)}`);
        const after = await h.request.get(`/fhir/Patient/${existing.id}`);
        if (r.status >= 400 && after.body.meta?.versionId !== before.body.meta?.versionId)
          throw new Error(`refused (${r.status}) but a new version was stored`);
      }),
      { numRuns: RUNS },
    );
  });

  const paramName = fc.oneof(
    fc.constantFrom(
      'name',
      'family',
      'gender',
      'birthdate',
      'identifier',
      '_id',
      '_count',
      '_offset',
      '_sort',
      '_include',
      '_revinclude',
      '_summary',
      '_elements',
      '_total',
      'general-practitioner:Practitioner.name',
      '_has:Observation:subject:code',
      'name:exact',
      'birthdate:missing',
      '__proto__[x]',
      'constructor[prototype][x]',
      '$where',
      'name[$regex]',
      'gender[$ne]',
    ),
    fc.string({ maxLength: 10 }),
  );
  const paramValue = fc.oneof(
    fc.constantFrom(
      '$where',
      '{"$gt":""}',
      '.*',
      'ge2020',
      'lt',
      'eq1980-02-29',
      '999999999',
      '-1',
      '0',
      'abc',
      'http://x|',
      '|',
      '$regex',
      '-_lastUpdated',
      '__proto__',
      'Patient:general-practitioner',
      '*',
    ),
    fc.string({ maxLength: 16 }),
    fc.integer().map(String),
  );
  const query = fc
    .array(fc.tuple(paramName, paramValue), { maxLength: 5 })
    .map((ps) => ps.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));

  test('search strings: 200 Bundle or a 4xx OperationOutcome', async () => {
    await fc.assert(
      fc.asyncProperty(query, fc.boolean(), async (q, strict) => {
        const r = await h.request
          .get(`/fhir/Patient?${q}`)
          .set('Prefer', strict ? 'handling=strict' : 'handling=lenient');
        expectClean(r, `GET Patient?${q}`);
        if (r.status === 200 && r.body.resourceType !== 'Bundle')
          throw new Error(`200 without a Bundle for ${q}`);
      }),
      { numRuns: RUNS },
    );
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  const entry = fc.record(
    {
      fullUrl: fc.oneof(
        fc.constant(undefined),
        fc.uuid().map((u) => `urn:uuid:${u}`),
        fc.string({ maxLength: 10 }),
      ),
      resource: fc.oneof(resource, fc.constant(undefined), json),
      request: fc.oneof(
        fc.record({
          method: fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE', 'GET', 'HEAD', 'TRACE', ''),
          url: fc.oneof(
            fc.constantFrom(
              'Patient',
              `Patient/${'x'}`,
              'Patient?gender=male',
              'Observation',
              '$where',
              '__proto__',
            ),
            fc.string({ maxLength: 12 }),
          ),
          ifMatch: fc.oneof(fc.constant(undefined), fc.constantFrom('W/"1"', 'W/"$gt"', '1')),
        }),
        json,
      ),
    },
    { requiredKeys: [] },
  );
  const bundle = fc.record({
    resourceType: fc.constantFrom('Bundle', 'Bundle', 'Bundle', 'Patient'),
    type: fc.constantFrom('transaction', 'batch', 'collection', '$where'),
    entry: fc.oneof(fc.array(entry, { maxLength: 4 }), json),
  });

  test('Bundles: a refused transaction stores nothing', async () => {
    await fc.assert(
      fc.asyncProperty(bundle, async (b) => {
        const before = await counts();
        const r = await h.request.post('/fhir').set('Content-Type', FHIR_JSON).send(JSON.stringify(b));
        expectClean(r, `POST Bundle ${JSON.stringify(b)}`);
        if (b.type === 'transaction' && r.status !== 200 && (await counts()) !== before)
          throw new Error(`transaction refused (${r.status}) but stored`);
      }),
      { numRuns: RUNS },
    );
  });

  const pointer = fc.oneof(
    fc.constantFrom(
      '/gender',
      '/name/0/family',
      '/name/-',
      '/birthDate',
      '/id',
      '/meta/versionId',
      '/resourceType',
      '/__proto__/x',
      '/constructor/prototype/x',
      '/$where',
      '/gender/$gt',
      '/name/999999999',
      '/name/-1',
      '',
      '/',
      'gender',
      '/~2',
    ),
    fc
      .array(fc.oneof(fc.string({ maxLength: 6 }), hostileKey), { maxLength: 3 })
      .map((ps) => `/${ps.join('/')}`),
  );
  const op = fc.record(
    {
      op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', '$set', 'eval'),
      path: pointer,
      from: pointer,
      value: json,
    },
    { requiredKeys: ['op'] },
  );
  const patch = fc.oneof(
    { weight: 4, arbitrary: fc.array(op, { maxLength: 4 }) },
    { weight: 1, arbitrary: json },
  );

  test('JSON Patch: applied (200) or refused with the stored version unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(patch, async (p) => {
        const before = await h.request.get(`/fhir/Patient/${existing.id}`);
        const r = await h.request
          .patch(`/fhir/Patient/${existing.id}`)
          .set('Content-Type', 'application/json-patch+json')
          .send(JSON.stringify(p));
        expectClean(r, `PATCH ${JSON.stringify(p)}`);
        const after = await h.request.get(`/fhir/Patient/${existing.id}`);
        if (after.status !== 200) throw new Error(`the patched resource reads ${after.status}`);
        if (r.status >= 400 && after.body.meta?.versionId !== before.body.meta?.versionId)
          throw new Error(`refused (${r.status}) but a new version was stored`);
      }),
      { numRuns: RUNS },
    );
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});
