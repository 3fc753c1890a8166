import { bearer, createAs, makeIssuer, patientToken, type TestIssuer } from '../auth/issuer';
import { FHIR_JSON, startHarness, type Harness } from './harness';

/**
 * Patient context: a token with a `patient` claim and patient/ scopes sees only that patient's
 * compartment (CompartmentDefinition Patient), whatever the query. Two patients, A and B; every
 * test asks, as A, for something of B's and finds nothing.
 */
let iss: TestIssuer;
let h: Harness;
let system: string;
let asA: string;
const ids: Record<string, string> = {};

type Entry = { resource: { resourceType: string; id: string }; search?: { mode: string } };
const refs = (body: { entry?: Entry[] }): string[] =>
  (body.entry ?? [])
    .filter((e) => e.resource.resourceType !== 'OperationOutcome')
    .map((e) => `${e.resource.resourceType}/${e.resource.id}`)
    .sort();

const create = (resource: Record<string, unknown>): Promise<string> => createAs(h, system, resource);

const obs = (
  subject: string,
  code: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'urn:test', code }] },
  subject: { reference: subject },
  ...extra,
});

beforeAll(async () => {
  iss = await makeIssuer();
  h = await startHarness(iss.env);
  system = await iss.token({ scope: 'system/*.cruds' });
  ids.dr = await create({ resourceType: 'Practitioner', name: [{ family: 'Doctor' }] });
  ids.org = await create({ resourceType: 'Organization', name: 'Hospital' });
  ids.med = await create({ resourceType: 'Medication', code: { text: 'aspirin' } });
  ids.A = await create({
    resourceType: 'Patient',
    name: [{ family: 'Alpha' }],
    generalPractitioner: [{ reference: `Practitioner/${ids.dr}` }],
  });
  ids.B = await create({ resourceType: 'Patient', name: [{ family: 'Bravo' }] });
  ids.oa = await create(
    obs(`Patient/${ids.A}`, 'code-a', { performer: [{ reference: `Practitioner/${ids.dr}` }] }),
  );
  ids.ob = await create(
    obs(`Patient/${ids.B}`, 'secret-b', { performer: [{ reference: `Practitioner/${ids.dr}` }] }),
  );
  // In A's compartment, but pointing at B through a parameter outside the compartment definition.
  ids.oaFocusB = await create(
    obs(`Patient/${ids.A}`, 'focus', { focus: [{ reference: `Patient/${ids.B}` }] }),
  );
  ids.ea = await create({
    resourceType: 'Encounter',
    status: 'finished',
    class: { code: 'AMB' },
    subject: { reference: `Patient/${ids.A}` },
  });
  ids.eb = await create({
    resourceType: 'Encounter',
    status: 'finished',
    class: { code: 'AMB' },
    subject: { reference: `Patient/${ids.B}` },
  });
  // A second version of B's observation, for history.
  const put = await h.request
    .put(`/fhir/Observation/${ids.ob}`)
    .set(bearer(system))
    .set('Content-Type', FHIR_JSON)
    .send({ ...obs(`Patient/${ids.B}`, 'secret-b'), id: ids.ob, status: 'amended' });
  expect(put.status).toBe(200);
  asA = await patientToken(iss, ids.A as string, 'patient/*.cruds');
});

afterAll(async () => {
  await h.close();
  iss.cleanup();
});

const get = (url: string, token = asA) => h.request.get(url).set(bearer(token));

describe('read and vread', () => {
  test('the patient reads their own record and their observations', async () => {
    expect((await get(`/fhir/Patient/${ids.A}`)).status).toBe(200);
    expect((await get(`/fhir/Observation/${ids.oa}`)).status).toBe(200);
  });

  test("another patient's resource answers 404 exactly like an id that does not exist", async () => {
    for (const [type, id] of [
      ['Patient', ids.B],
      ['Observation', ids.ob],
      ['Encounter', ids.eb],
    ] as const) {
      const hidden = await get(`/fhir/${type}/${id}`);
      const missing = await get(`/fhir/${type}/does-not-exist`);
      expect(hidden.status).toBe(404);
      expect(hidden.body.issue[0].code).toBe(missing.body.issue[0].code);
      expect(hidden.body.issue[0].diagnostics.replace(id as string, 'X')).toBe(
        missing.body.issue[0].diagnostics.replace('does-not-exist', 'X'),
      );
      expect(Object.keys(hidden.headers).filter((k) => k === 'etag' || k === 'last-modified')).toEqual([]);
    }
  });

  test("vread of another patient's version answers 404", async () => {
    expect((await get(`/fhir/Observation/${ids.ob}/_history/1`)).status).toBe(404);
    expect((await get(`/fhir/Observation/${ids.oa}/_history/1`)).status).toBe(200);
  });

  test('types outside the Patient compartment are readable with a patient/ scope naming them', async () => {
    const t = await patientToken(
      iss,
      ids.A as string,
      'patient/Practitioner.rs patient/Organization.rs patient/Medication.read',
    );
    expect((await get(`/fhir/Practitioner/${ids.dr}`, t)).status).toBe(200);
    expect((await get(`/fhir/Organization/${ids.org}`, t)).status).toBe(200);
    expect((await get(`/fhir/Medication/${ids.med}`, t)).status).toBe(200);
    expect((await get(`/fhir/Location/x`, t)).status).toBe(403);
  });
});

describe('search', () => {
  test('a type search returns only resources in the compartment', async () => {
    const res = await get('/fhir/Observation');
    expect(res.status).toBe(200);
    expect(refs(res.body)).toEqual([`Observation/${ids.oa}`, `Observation/${ids.oaFocusB}`].sort());
    expect(res.body.total).toBe(2);
  });

  test("searching explicitly for another patient's data is an empty Bundle, not 403", async () => {
    for (const q of [
      `subject=Patient/${ids.B}`,
      'code=urn:test|secret-b',
      `_id=${ids.ob}`,
      `patient=${ids.B}`,
    ]) {
      const res = await get(`/fhir/Observation?${q}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 0 });
      expect(res.body.entry).toBeUndefined();
    }
    expect(refs((await get(`/fhir/Patient?name=Bravo`)).body)).toEqual([]);
  });

  test('POST _search is confined the same way', async () => {
    const res = await h.request
      .post('/fhir/Observation/_search')
      .set(bearer(asA))
      .type('form')
      .send('code=urn:test|secret-b');
    expect(res.body.total).toBe(0);
  });

  test('the compartment search of another patient is empty', async () => {
    const res = await get(`/fhir/Patient/${ids.B}/Observation`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(0);
    expect(refs((await get(`/fhir/Patient/${ids.A}/Observation?code=urn:test|code-a`)).body)).toEqual([
      `Observation/${ids.oa}`,
    ]);
  });

  test('a system search over several types sees only the compartment', async () => {
    const res = await get('/fhir?_type=Observation,Encounter,Patient');
    expect(refs(res.body)).toEqual(
      [
        `Patient/${ids.A}`,
        `Observation/${ids.oa}`,
        `Observation/${ids.oaFocusB}`,
        `Encounter/${ids.ea}`,
      ].sort(),
    );
  });

  test('_include does not pull in another patient through a reference outside the compartment', async () => {
    const res = await get('/fhir/Observation?_include=Observation:focus&_include=Observation:subject');
    expect(refs(res.body)).toEqual(
      [`Observation/${ids.oa}`, `Observation/${ids.oaFocusB}`, `Patient/${ids.A}`].sort(),
    );
  });

  test('_include of a shared resource outside the compartment (the performer) works', async () => {
    const res = await get(`/fhir/Observation?code=urn:test|code-a&_include=Observation:performer`);
    expect(refs(res.body)).toEqual([`Observation/${ids.oa}`, `Practitioner/${ids.dr}`].sort());
  });

  test('_revinclude from a shared resource does not reach another patient', async () => {
    const res = await get(
      `/fhir/Practitioner?_id=${ids.dr}&_revinclude=Observation:performer&_revinclude=Patient:general-practitioner`,
    );
    expect(refs(res.body)).toEqual(
      [`Practitioner/${ids.dr}`, `Observation/${ids.oa}`, `Patient/${ids.A}`].sort(),
    );
  });

  test('_include:iterate stays in the compartment', async () => {
    const res = await get(
      `/fhir/Practitioner?_id=${ids.dr}&_revinclude=Observation:performer&_include:iterate=Observation:subject&_include:iterate=Observation:focus`,
    );
    expect(refs(res.body)).not.toContain(`Patient/${ids.B}`);
    expect(refs(res.body)).not.toContain(`Observation/${ids.ob}`);
  });

  test("a chain cannot test a property of another patient's resource", async () => {
    // oaFocusB points at B; if the chain saw B, this would reveal B's family name.
    expect((await get('/fhir/Observation?focus:Patient.family=Bravo')).body.total).toBe(0);
    expect((await get('/fhir/Observation?subject:Patient.family=Bravo')).body.total).toBe(0);
    expect(refs((await get('/fhir/Observation?subject:Patient.family=Alpha')).body)).toEqual(
      [`Observation/${ids.oa}`, `Observation/${ids.oaFocusB}`].sort(),
    );
  });

  test("_has cannot test a property of another patient's resource", async () => {
    // B's observation names the shared practitioner as performer, with a code only B has.
    const leak = await get('/fhir/Practitioner?_has:Observation:performer:code=urn:test|secret-b');
    expect(leak.status).toBe(200);
    expect(leak.body.total).toBe(0);
    const own = await get('/fhir/Practitioner?_has:Observation:performer:code=urn:test|code-a');
    expect(refs(own.body)).toEqual([`Practitioner/${ids.dr}`]);
    expect((await get(`/fhir/Patient?_has:Observation:subject:code=urn:test|secret-b`)).body.total).toBe(0);
  });
});

describe('history', () => {
  test("type history leaves out every version of another patient's resources", async () => {
    const res = await get('/fhir/Observation/_history');
    expect(res.status).toBe(200);
    const seen = (res.body.entry as Entry[]).map((e) => e.resource.id);
    expect(seen).not.toContain(ids.ob);
    expect(seen).toContain(ids.oa);
  });

  test("instance history of another patient's resource answers 404", async () => {
    expect((await get(`/fhir/Observation/${ids.ob}/_history`)).status).toBe(404);
    expect((await get(`/fhir/Patient/${ids.B}/_history`)).status).toBe(404);
    expect((await get(`/fhir/Observation/${ids.oa}/_history`)).status).toBe(200);
  });

  test('Patient type history shows only the patient themself', async () => {
    const res = await get('/fhir/Patient/_history');
    expect(new Set((res.body.entry as Entry[]).map((e) => e.resource.id))).toEqual(new Set([ids.A]));
  });
});

describe('writes', () => {
  const send = (method: 'post' | 'put' | 'patch' | 'delete', url: string, body?: unknown, token = asA) => {
    const r = h.request[method](url).set(bearer(token));
    return body === undefined ? r : r.set('Content-Type', FHIR_JSON).send(body as object);
  };

  test("creating into another patient's compartment is 403, into one's own is 201", async () => {
    expect((await send('post', '/fhir/Observation', obs(`Patient/${ids.B}`, 'x'))).status).toBe(403);
    expect((await send('post', '/fhir/Observation', obs(`Patient/${ids.A}`, 'x'))).status).toBe(201);
  });

  test('a resource naming both patients may not be written by either', async () => {
    const both = obs(`Patient/${ids.A}`, 'both', { performer: [{ reference: `Patient/${ids.B}` }] });
    expect((await send('post', '/fhir/Observation', both)).status).toBe(403);
  });

  test('a resource in no patient compartment cannot be created in patient context', async () => {
    expect(
      (
        await send('post', '/fhir/Observation', {
          resourceType: 'Observation',
          status: 'final',
          code: { text: 'orphan' },
        })
      ).status,
    ).toBe(403);
    expect(
      (await send('post', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'New' }] })).status,
    ).toBe(403);
  });

  test("updating another patient's resource answers 404 and changes nothing", async () => {
    const res = await send('put', `/fhir/Observation/${ids.ob}`, {
      ...obs(`Patient/${ids.A}`, 'stolen'),
      id: ids.ob,
    });
    expect(res.status).toBe(404);
    const b = await get(`/fhir/Observation/${ids.ob}`, system);
    expect(b.body.subject.reference).toBe(`Patient/${ids.B}`);
  });

  test("moving one's own resource into another patient's compartment is 403", async () => {
    const id = await create(obs(`Patient/${ids.A}`, 'move'));
    const res = await send('put', `/fhir/Observation/${id}`, { ...obs(`Patient/${ids.B}`, 'move'), id });
    expect(res.status).toBe(403);
  });

  test("deleting another patient's resource deletes nothing", async () => {
    await send('delete', `/fhir/Observation/${ids.ob}`);
    expect((await get(`/fhir/Observation/${ids.ob}`, system)).status).toBe(200);
  });

  test("conditional delete does not match another patient's resource", async () => {
    const res = await send('delete', '/fhir/Observation?code=urn:test|secret-b');
    expect(res.status).toBe(200);
    expect(res.body.issue[0].code).toBe('not-found');
    expect((await get(`/fhir/Observation/${ids.ob}`, system)).status).toBe(200);
  });

  test("conditional update does not match another patient's resource (it creates in one's own compartment)", async () => {
    const res = await send(
      'put',
      '/fhir/Observation?code=urn:test|secret-b',
      obs(`Patient/${ids.A}`, 'secret-b'),
    );
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe(ids.ob);
    const b = await get(`/fhir/Observation/${ids.ob}`, system);
    expect(b.body.subject.reference).toBe(`Patient/${ids.B}`);
  });

  test("conditional update into another patient's compartment is 403", async () => {
    const res = await send(
      'put',
      '/fhir/Observation?code=urn:test|code-a',
      obs(`Patient/${ids.B}`, 'code-a'),
    );
    expect(res.status).toBe(403);
  });

  test("conditional create (If-None-Exist) does not see another patient's resource", async () => {
    const onlyB = await create(obs(`Patient/${ids.B}`, 'only-b'));
    const res = await h.request
      .post('/fhir/Observation')
      .set(bearer(asA))
      .set('Content-Type', FHIR_JSON)
      .set('If-None-Exist', 'code=urn:test|only-b')
      .send(obs(`Patient/${ids.A}`, 'only-b'));
    expect(res.status).toBe(201);
    expect(res.body.id).not.toBe(onlyB);
  });

  test("PATCH of another patient's resource answers 404 and changes nothing", async () => {
    const res = await h.request
      .patch(`/fhir/Observation/${ids.ob}`)
      .set(bearer(asA))
      .set('Content-Type', 'application/json-patch+json')
      .send([{ op: 'replace', path: '/status', value: 'cancelled' }]);
    expect(res.status).toBe(404);
  });

  test("conditional update without a match cannot overwrite another patient's resource by id", async () => {
    const victim = await create(obs(`Patient/${ids.B}`, 'victim'));
    const res = await send('put', '/fhir/Observation?code=urn:test|no-match', {
      ...obs(`Patient/${ids.A}`, 'x'),
      id: victim,
    });
    expect([403, 404]).toContain(res.status);
  });
});

// A hidden resource answers exactly like a missing one, also for DELETE and once deleted.
describe('existence does not leak through delete or tombstones', () => {
  test("DELETE of another patient's resource answers like DELETE of a missing id", async () => {
    const hidden = await create(obs(`Patient/${ids.B}`, 'probe'));
    const a = await h.request.delete(`/fhir/Observation/${hidden}`).set(bearer(asA));
    const b = await h.request.delete('/fhir/Observation/never-existed').set(bearer(asA));
    expect(a.status).toBe(b.status);
    expect((await get(`/fhir/Observation/${hidden}`, system)).status).toBe(200);
  });

  test('a deleted resource of another patient reads like a missing id (404, not 410)', async () => {
    const hidden = await create(obs(`Patient/${ids.B}`, 'tombstone'));
    expect((await h.request.delete(`/fhir/Observation/${hidden}`).set(bearer(system))).status).toBe(204);
    expect((await get(`/fhir/Observation/${hidden}`)).status).toBe(404);
  });
});

describe('user/ and system/ scopes are not confined to a compartment', () => {
  test('a user/ token with a patient claim still sees every patient through user/ scopes', async () => {
    const t = await iss.token({ scope: 'user/Observation.rs', patient: ids.A });
    expect((await get(`/fhir/Observation/${ids.ob}`, t)).status).toBe(200);
  });

  test('patient/ and user/ scopes add up: the user/ scope type is unconfined, the patient/ one confined', async () => {
    const t = await iss.token({ scope: 'patient/Observation.rs user/Encounter.rs', patient: ids.A });
    expect((await get(`/fhir/Encounter/${ids.eb}`, t)).status).toBe(200);
    expect((await get(`/fhir/Observation/${ids.ob}`, t)).status).toBe(404);
  });

  test('granular patient/ scopes are confined and filtered', async () => {
    const t = await patientToken(iss, ids.A as string, 'patient/Observation.rs?code=urn:test|code-a');
    expect(refs((await get('/fhir/Observation', t)).body)).toEqual([`Observation/${ids.oa}`]);
    expect((await get(`/fhir/Observation/${ids.oaFocusB}`, t)).status).toBe(404);
  });
});
