import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FHIR_JSON, startHarness, type Harness } from './harness';

/** Terminology operations over what the server holds (terminology-service.html). */
const CS = 'http://example.org/fhir/CodeSystem/study-visit';
const VS = 'http://example.org/fhir/ValueSet/study-visit';
const GENDER = 'http://hl7.org/fhir/ValueSet/administrative-gender';

let h: Harness;
beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-profiles-'));
  fs.copyFileSync(
    path.join(__dirname, '../../profiles/study-heart-rate.json'),
    path.join(dir, 'study-heart-rate.json'),
  );
  h = await startHarness({ PROFILES_DIR: dir });
});
afterAll(async () => h.close());

const param = (body: { parameter?: Array<Record<string, unknown>> }, name: string): unknown => {
  const p = body.parameter?.find((x) => x.name === name);
  return p && Object.entries(p).find(([k]) => k.startsWith('value'))?.[1];
};

describe('ValueSet/$expand', () => {
  test('expands a held ValueSet by url (is-a filter over the CodeSystem hierarchy)', async () => {
    const r = await h.request.get(`/fhir/ValueSet/$expand?url=${encodeURIComponent(VS)}`);
    expect(r.status).toBe(200);
    expect(r.body.expansion.total).toBe(5);
    expect(r.body.expansion.contains.map((c: { code: string }) => c.code).sort()).toEqual([
      'baseline',
      'follow-up',
      'visit',
      'week-12',
      'week-4',
    ]);
  });

  test('filter, count and offset', async () => {
    const r = await h.request.get(
      `/fhir/ValueSet/$expand?url=${encodeURIComponent(VS)}&filter=week&count=1&offset=1`,
    );
    expect(r.body.expansion.total).toBe(2);
    expect(r.body.expansion.offset).toBe(1);
    expect(r.body.expansion.contains).toHaveLength(1);
  });

  test('POST with Parameters', async () => {
    const r = await h.request
      .post('/fhir/ValueSet/$expand')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'url', valueUri: GENDER }] }));
    expect(r.status).toBe(200);
    expect(r.body.expansion.total).toBe(4);
  });

  test('a ValueSet over a code system the server does not hold cannot be expanded: 422', async () => {
    const r = await h.request.get(
      `/fhir/ValueSet/$expand?url=${encodeURIComponent('http://hl7.org/fhir/ValueSet/observation-codes')}`,
    );
    expect(r.status).toBe(422);
    expect(r.body.resourceType).toBe('OperationOutcome');
  });

  test('an unknown ValueSet is 404', async () => {
    expect((await h.request.get('/fhir/ValueSet/$expand?url=http://nowhere.example/vs')).status).toBe(404);
  });

  test('a stored ValueSet expands by id', async () => {
    const vs = {
      resourceType: 'ValueSet',
      status: 'active',
      compose: { include: [{ system: CS, concept: [{ code: 'baseline' }] }] },
    };
    const c = await h.request.post('/fhir/ValueSet').set('Content-Type', FHIR_JSON).send(JSON.stringify(vs));
    expect(c.status).toBe(201);
    const r = await h.request.get(`/fhir/ValueSet/${c.body.id as string}/$expand`);
    expect(r.body.expansion.contains).toEqual([{ system: CS, code: 'baseline', display: 'Baseline visit' }]);
  });
});

describe('$validate-code', () => {
  test('ValueSet/$validate-code: member and not', async () => {
    const yes = await h.request.get(
      `/fhir/ValueSet/$validate-code?url=${encodeURIComponent(GENDER)}&system=http://hl7.org/fhir/administrative-gender&code=male`,
    );
    expect(param(yes.body, 'result')).toBe(true);
    const no = await h.request.get(
      `/fhir/ValueSet/$validate-code?url=${encodeURIComponent(VS)}&system=${encodeURIComponent(CS)}&code=unscheduled`,
    );
    expect(param(no.body, 'result')).toBe(false);
  });

  test('ValueSet/$validate-code with a codeableConcept (POST)', async () => {
    const body = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'url', valueUri: VS },
        {
          name: 'codeableConcept',
          valueCodeableConcept: {
            coding: [
              { system: 'http://other.example', code: 'z' },
              { system: CS, code: 'week-4' },
            ],
          },
        },
      ],
    };
    const r = await h.request
      .post('/fhir/ValueSet/$validate-code')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(body));
    expect(param(r.body, 'result')).toBe(true);
  });

  test('CodeSystem/$validate-code', async () => {
    const r = await h.request.get(
      `/fhir/CodeSystem/$validate-code?url=${encodeURIComponent(CS)}&code=week-12`,
    );
    expect(param(r.body, 'result')).toBe(true);
    expect(param(r.body, 'display')).toBe('Week 12');
    const no = await h.request.get(
      `/fhir/CodeSystem/$validate-code?url=${encodeURIComponent(CS)}&code=week-13`,
    );
    expect(param(no.body, 'result')).toBe(false);
  });
});

describe('CodeSystem/$lookup and $subsumes', () => {
  test('$lookup gives display and parent', async () => {
    const r = await h.request.get(`/fhir/CodeSystem/$lookup?system=${encodeURIComponent(CS)}&code=week-4`);
    expect(r.status).toBe(200);
    expect(param(r.body, 'display')).toBe('Week 4');
    const props = r.body.parameter.filter((p: { name: string }) => p.name === 'property');
    expect(props[0].part).toEqual([
      { name: 'code', valueCode: 'parent' },
      { name: 'value', valueCode: 'follow-up' },
    ]);
  });

  test('$lookup of an unknown code is 404', async () => {
    expect(
      (await h.request.get(`/fhir/CodeSystem/$lookup?system=${encodeURIComponent(CS)}&code=nope`)).status,
    ).toBe(404);
  });

  test('$subsumes', async () => {
    const r = await h.request.get(
      `/fhir/CodeSystem/$subsumes?system=${encodeURIComponent(CS)}&codeA=follow-up&codeB=week-12`,
    );
    expect(param(r.body, 'outcome')).toBe('subsumes');
    const body = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'codingA', valueCoding: { system: CS, code: 'week-4' } },
        { name: 'codingB', valueCoding: { system: CS, code: 'visit' } },
      ],
    };
    const p = await h.request
      .post('/fhir/CodeSystem/$subsumes')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(body));
    expect(param(p.body, 'outcome')).toBe('subsumed-by');
  });

  test('missing parameters are 400', async () => {
    expect((await h.request.get('/fhir/CodeSystem/$subsumes?codeA=a')).status).toBe(400);
  });
});

describe('CapabilityStatement', () => {
  test('lists $validate on every type and the terminology operations on ValueSet and CodeSystem', async () => {
    const r = await h.request.get('/fhir/metadata');
    const ops = (type: string): string[] =>
      (r.body.rest[0].resource as Array<{ type: string; operation?: Array<{ name: string }> }>)
        .find((x) => x.type === type)
        ?.operation?.map((o) => o.name) ?? [];
    expect(ops('Observation')).toContain('validate');
    expect(ops('ValueSet')).toEqual(expect.arrayContaining(['validate', 'expand', 'validate-code']));
    expect(ops('CodeSystem')).toEqual(expect.arrayContaining(['lookup', 'subsumes', 'validate-code']));
  });
});
