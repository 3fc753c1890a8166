import { SignJWT } from 'jose';
import { bearer, createAs, makeIssuer, type TestIssuer } from '../auth/issuer';
import { FHIR_JSON, patient, startHarness, type Harness } from './harness';

let iss: TestIssuer;
let h: Harness;
let system: string;

beforeAll(async () => {
  iss = await makeIssuer();
  h = await startHarness(iss.env);
  system = await iss.token({ scope: 'system/*.cruds' });
});

afterAll(async () => {
  await h.close();
  iss.cleanup();
});

function expectInvalidToken(res: { status: number; headers: Record<string, string>; body: unknown }): void {
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toMatch(
    /^Bearer realm="http:\/\/fhir\.test\/fhir", error="invalid_token", error_description="[^"]+"$/,
  );
  expect(res.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'login' }] });
}

const create = (resource: Record<string, unknown>): Promise<string> => createAs(h, system, resource);

describe('401: no token, or a token that does not verify', () => {
  test('a request without Authorization gets 401 with a bare Bearer challenge and an OperationOutcome', async () => {
    const res = await h.request.get('/fhir/Patient');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="http://fhir.test/fhir"');
    expect(res.body).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'login' }],
    });
  });

  test('a Basic credential is not a bearer token: 401', async () => {
    const res = await h.request.get('/fhir/Patient').set('Authorization', 'Basic dXNlcjpwYXNz');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm=/);
  });

  test('a malformed Authorization header gets 401 invalid_token', async () => {
    expectInvalidToken(await h.request.get('/fhir/Patient').set('Authorization', 'Bearer a b c'));
    expectInvalidToken(await h.request.get('/fhir/Patient').set('Authorization', 'Bearer'));
  });

  test('a token that is not a JWT gets 401 invalid_token', async () => {
    expectInvalidToken(await h.request.get('/fhir/Patient').set(bearer('not-a-jwt')));
    expectInvalidToken(await h.request.get('/fhir/Patient').set(bearer('aaa.bbb.ccc')));
  });

  test('an expired token gets 401 saying it has expired', async () => {
    const t = await iss.token({ scope: 'system/*.rs' }, { expiresIn: -120 });
    const res = await h.request.get('/fhir/Patient').set(bearer(t));
    expectInvalidToken(res);
    expect(res.headers['www-authenticate']).toMatch(/expired/);
  });

  test('a token that expired within the clock skew (60 s) is still accepted', async () => {
    const t = await iss.token({ scope: 'system/*.rs' }, { expiresIn: -20 });
    expect((await h.request.get('/fhir/Patient').set(bearer(t))).status).toBe(200);
  });

  test('a token that is not valid yet (nbf beyond the skew) gets 401', async () => {
    const t = await iss.token({ scope: 'system/*.rs' }, { notBefore: 600 });
    const res = await h.request.get('/fhir/Patient').set(bearer(t));
    expectInvalidToken(res);
    expect(res.headers['www-authenticate']).toMatch(/nbf/);
  });

  test('a token without exp gets 401', async () => {
    const t = await iss.token({ scope: 'system/*.rs' }, { omitExp: true });
    expectInvalidToken(await h.request.get('/fhir/Patient').set(bearer(t)));
  });

  test('a token from another issuer gets 401', async () => {
    const t = await iss.token({ scope: 'system/*.rs' }, { issuer: 'https://evil.test' });
    const res = await h.request.get('/fhir/Patient').set(bearer(t));
    expectInvalidToken(res);
    expect(res.headers['www-authenticate']).toMatch(/issuer/);
  });

  test('a token for another audience gets 401', async () => {
    const t = await iss.token({ scope: 'system/*.rs' }, { audience: 'https://other.test/fhir' });
    const res = await h.request.get('/fhir/Patient').set(bearer(t));
    expectInvalidToken(res);
    expect(res.headers['www-authenticate']).toMatch(/aud/);
  });

  test('a token whose aud list includes this server is accepted', async () => {
    const t = await iss.token({ scope: 'system/*.rs' }, { audience: ['https://other.test', iss.audience] });
    expect((await h.request.get('/fhir/Patient').set(bearer(t))).status).toBe(200);
  });

  test('a token signed by an unknown key gets 401', async () => {
    const { generateKeyPair } = await import('jose');
    const other = await generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const t = await new SignJWT({ scope: 'system/*.rs' })
      .setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' })
      .setIssuer(iss.issuer)
      .setAudience(iss.audience)
      .setExpirationTime(now + 300)
      .sign(other.privateKey);
    expectInvalidToken(await h.request.get('/fhir/Patient').set(bearer(t)));
  });

  test('ES256 tokens are accepted as well as RS256', async () => {
    const t = await iss.token({ scope: 'system/*.rs' }, { alg: 'ES256' });
    expect((await h.request.get('/fhir/Patient').set(bearer(t))).status).toBe(200);
  });

  test('a refused token stores nothing', async () => {
    const t = await iss.token({ scope: 'system/*.cruds' }, { expiresIn: -600 });
    const res = await h.request
      .post('/fhir/Patient')
      .set(bearer(t))
      .set('Content-Type', FHIR_JSON)
      .send(patient({ identifier: [{ system: 'urn:x', value: 'refused' }] }));
    expect(res.status).toBe(401);
    const search = await h.request.get('/fhir/Patient?identifier=urn:x|refused').set(bearer(system));
    expect(search.body.total).toBe(0);
  });
});

describe('public endpoints', () => {
  test('metadata is served without a token and declares SMART-on-FHIR with the oauth-uris', async () => {
    const res = await h.request.get('/fhir/metadata');
    expect(res.status).toBe(200);
    const security = res.body.rest[0].security;
    expect(security.service[0].coding[0]).toEqual({
      system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
      code: 'SMART-on-FHIR',
    });
    const uris = security.extension.find(
      (e: { url: string }) =>
        e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
    );
    expect(uris.extension).toEqual([
      { url: 'authorize', valueUri: 'https://auth.test/authorize' },
      { url: 'token', valueUri: 'https://auth.test/token' },
    ]);
  });

  test('[base]/.well-known/smart-configuration is served without a token', async () => {
    const res = await h.request.get('/fhir/.well-known/smart-configuration');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({
      issuer: 'https://auth.test',
      authorization_endpoint: 'https://auth.test/authorize',
      token_endpoint: 'https://auth.test/token',
    });
    expect(res.body.capabilities).toEqual(expect.arrayContaining(['permission-v1', 'permission-v2']));
  });

  test('a trailing slash does not make metadata private', async () => {
    expect((await h.request.get('/fhir/metadata/')).status).toBe(200);
  });

  test('/.well-known/smart-configuration at the host root is the same document', async () => {
    const a = await h.request.get('/.well-known/smart-configuration');
    const b = await h.request.get('/fhir/.well-known/smart-configuration');
    expect(a.status).toBe(200);
    expect(a.body).toEqual(b.body);
  });
});

describe('403: the token is valid but its scopes do not permit the interaction', () => {
  const cases: Array<
    [string, string, () => Promise<{ status: number; body: unknown; headers: Record<string, string> }>]
  > = [
    ['read without r', 'user/Patient.s', () => h.request.get('/fhir/Patient/x')],
    ['vread without r', 'user/Patient.s', () => h.request.get('/fhir/Patient/x/_history/1')],
    ['search without s', 'user/Patient.r', () => h.request.get('/fhir/Patient')],
    [
      'POST _search without s',
      'user/Patient.r',
      () => h.request.post('/fhir/Patient/_search').type('form').send('name=x'),
    ],
    ['history without r', 'user/Patient.s', () => h.request.get('/fhir/Patient/_history')],
    ['system history without r on every type', 'user/Patient.rs', () => h.request.get('/fhir/_history')],
    [
      'create without c',
      'user/Patient.rus',
      () => h.request.post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(patient()),
    ],
    [
      'update without u',
      'user/Patient.crs',
      () =>
        h.request
          .put('/fhir/Patient/x')
          .set('Content-Type', FHIR_JSON)
          .send(patient({ id: 'x' })),
    ],
    [
      'patch without u',
      'user/Patient.crds',
      () => h.request.patch('/fhir/Patient/x').set('Content-Type', 'application/json-patch+json').send([]),
    ],
    ['delete without d', 'user/Patient.crus', () => h.request.delete('/fhir/Patient/x')],
    ['conditional delete without d', 'user/Patient.crus', () => h.request.delete('/fhir/Patient?name=x')],
    ['a type the token has no scope for', 'user/Observation.cruds', () => h.request.get('/fhir/Patient/x')],
    [
      'a search of a type the token has no scope for',
      'patient/Observation.rs',
      () => h.request.get('/fhir/Encounter'),
    ],
    ['v1 read does not allow writes', 'user/Patient.read', () => h.request.delete('/fhir/Patient/x')],
    ['v1 write does not allow reads', 'user/Patient.write', () => h.request.get('/fhir/Patient/x')],
    [
      'no clinical scope at all',
      'openid fhirUser launch offline_access',
      () => h.request.get('/fhir/Patient'),
    ],
    [
      'a malformed scope grants nothing',
      'user/Patient.sr user/Patient.rx user/patient.rs',
      () => h.request.get('/fhir/Patient'),
    ],
    [
      'patient/ scopes without a patient claim grant nothing',
      'patient/*.cruds',
      () => h.request.get('/fhir/Patient'),
    ],
  ];
  test.each(cases)('%s (%s)', async (_name, scope, call) => {
    const t = await iss.token({ scope, patient: scope.includes('Encounter') ? 'p1' : undefined });
    const req = call() as unknown as {
      set(
        h: Record<string, string>,
      ): Promise<{ status: number; body: unknown; headers: Record<string, string> }>;
    };
    const res = await req.set(bearer(t));
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'forbidden' }] });
    expect(res.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
  });
});

describe('every scope form grants what it says', () => {
  let pid: string;
  beforeAll(async () => {
    pid = await create(patient({ identifier: [{ system: 'urn:forms', value: '1' }] }));
  });

  test.each([
    ['v1 user/Patient.read', 'user/Patient.read'],
    ['v1 user/*.read', 'user/*.read'],
    ['v1 system/*.*', 'system/*.*'],
    ['v1 user/Patient.*', 'user/Patient.*'],
    ['v2 user/Patient.rs', 'user/Patient.rs'],
    ['v2 user/*.cruds', 'user/*.cruds'],
    ['v2 system/Patient.r', 'system/Patient.r'],
  ])('%s reads', async (_n, scope) => {
    const t = await iss.token({ scope });
    expect((await h.request.get(`/fhir/Patient/${pid}`).set(bearer(t))).status).toBe(200);
  });

  test.each([
    ['v1 user/Patient.write', 'user/Patient.write'],
    ['v1 system/*.write', 'system/*.write'],
    ['v2 user/Patient.c', 'user/Patient.c'],
    ['v2 user/*.cud', 'user/*.cud'],
  ])('%s creates', async (_n, scope) => {
    const t = await iss.token({ scope });
    const res = await h.request
      .post('/fhir/Patient')
      .set(bearer(t))
      .set('Content-Type', FHIR_JSON)
      .send(patient());
    expect(res.status).toBe(201);
  });

  test('v2 u allows update, d allows delete', async () => {
    const id = await create(patient());
    const u = await iss.token({ scope: 'user/Patient.u' });
    const d = await iss.token({ scope: 'user/Patient.d' });
    const put = await h.request
      .put(`/fhir/Patient/${id}`)
      .set(bearer(u))
      .set('Content-Type', FHIR_JSON)
      .send(patient({ id, gender: 'other' }));
    expect(put.status).toBe(200);
    expect((await h.request.delete(`/fhir/Patient/${id}`).set(bearer(d))).status).toBe(204);
  });

  test('the scope claim may be an scp array', async () => {
    const t = await iss.token({ scp: ['user/Patient.rs'] });
    expect((await h.request.get(`/fhir/Patient/${pid}`).set(bearer(t))).status).toBe(200);
  });

  test('granular v2: only resources matching the scope query are visible', async () => {
    const lab = await create({
      resourceType: 'Observation',
      status: 'final',
      category: [
        {
          coding: [
            { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' },
          ],
        },
      ],
      code: { text: 'granular-test' },
    });
    const vital = await create({
      resourceType: 'Observation',
      status: 'final',
      category: [
        {
          coding: [
            { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' },
          ],
        },
      ],
      code: { text: 'granular-test' },
    });
    const t = await iss.token({
      scope:
        'user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory',
    });
    expect((await h.request.get(`/fhir/Observation/${lab}`).set(bearer(t))).status).toBe(200);
    expect((await h.request.get(`/fhir/Observation/${vital}`).set(bearer(t))).status).toBe(404);
    const s = await h.request.get('/fhir/Observation?code:text=granular-test').set(bearer(t));
    expect(s.status).toBe(200);
    expect(s.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([lab]);
  });

  test('granular v2 scopes add up (union), and a granular write must match its query', async () => {
    const t = await iss.token({
      scope:
        'user/Observation.rs?status=final user/Observation.rs?status=amended user/Observation.c?status=final',
    });
    const ok = await h.request
      .post('/fhir/Observation')
      .set(bearer(t))
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Observation', status: 'final', code: { text: 'union' } });
    expect(ok.status).toBe(201);
    const amended = await create({ resourceType: 'Observation', status: 'amended', code: { text: 'union' } });
    await create({ resourceType: 'Observation', status: 'preliminary', code: { text: 'union' } });
    const s = await h.request.get('/fhir/Observation?code:text=union').set(bearer(t));
    expect(s.body.entry.map((e: { resource: { id: string } }) => e.resource.id).sort()).toEqual(
      [ok.body.id, amended].sort(),
    );
    const denied = await h.request
      .post('/fhir/Observation')
      .set(bearer(t))
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Observation', status: 'preliminary', code: { text: 'union' } });
    expect(denied.status).toBe(403);
  });

  test('a granular scope whose query does not compile grants nothing', async () => {
    const t = await iss.token({
      scope: 'user/Observation.rs?no-such-param=1 user/Observation.rs?subject.name=x',
    });
    expect((await h.request.get('/fhir/Observation').set(bearer(t))).status).toBe(403);
  });
});

describe('agent', () => {
  test('the request policy names the token subject, fhirUser and client', async () => {
    const { accessOf } = await import('../../src/auth/policy');
    const { authLayer } = await import('../../src/auth/middleware');
    const layer = authLayer({
      config: h.ctx.config,
      registry: h.ctx.registry,
      indexOf: (r) => h.ctx.store.indexOf(r),
      log: h.ctx.log,
    });
    const t = await iss.token({
      scope: 'patient/*.rs',
      patient: 'p9',
      fhirUser: 'Practitioner/dr1',
      azp: 'app-9',
      client_id: undefined,
    });
    const req = {
      path: '/fhir/Patient',
      method: 'GET',
      socket: { remoteAddress: '10.0.0.1' },
      get: (n: string) => (n.toLowerCase() === 'authorization' ? `Bearer ${t}` : undefined),
    };
    const res = { locals: {} as Record<string, unknown>, set: () => res, req };
    const auth = layer[layer.length - 1] as unknown as (
      rq: unknown,
      rs: unknown,
      next: () => void,
    ) => Promise<void>;
    await auth(req, res, () => undefined);
    expect(accessOf(res as never).agent).toEqual({
      who: 'Practitioner/dr1',
      fhirUser: 'Practitioner/dr1',
      clientId: 'app-9',
      patient: 'p9',
      scopeLevel: 'patient',
      address: '10.0.0.1',
    });
  });
});

describe('audit', () => {
  async function eventOf(requestId: string): Promise<Record<string, unknown>> {
    const res = await h.request.get('/fhir/AuditEvent?_count=1000').set(bearer(system));
    const found = (res.body.entry as Array<{ resource: Record<string, unknown> }> | undefined)
      ?.map((e) => e.resource)
      .find((r) => JSON.stringify(r).includes(requestId));
    if (!found) throw new Error(`no AuditEvent for ${requestId}`);
    return found;
  }

  test('a refused token (401) is audited as a failure', async () => {
    await h.request.get('/fhir/Patient').set('X-Request-Id', 'auth-audit-401').set(bearer('bad.token.here'));
    const e = await eventOf('auth-audit-401');
    expect(e.outcome).not.toBe('0');
    expect(String(e.outcomeDesc)).toMatch(/^HTTP 401/);
  });

  test('a request the scopes forbid (403) is audited with the token subject as agent', async () => {
    const t = await iss.token({ scope: 'user/Observation.rs', fhirUser: 'Practitioner/audit-dr' });
    await h.request.get('/fhir/Patient').set('X-Request-Id', 'auth-audit-403').set(bearer(t));
    const e = await eventOf('auth-audit-403');
    expect(String(e.outcomeDesc)).toMatch(/^HTTP 403/);
    expect(JSON.stringify(e.agent)).toContain('Practitioner/audit-dr');
  });
});

describe('CORS and security headers', () => {
  test('every response carries the security headers, errors included', async () => {
    for (const res of [await h.request.get('/fhir/metadata'), await h.request.get('/fhir/Patient')]) {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['content-security-policy']).toMatch(/default-src 'none'/);
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    }
  });

  test('authorised answers are not cacheable', async () => {
    const res = await h.request.get('/fhir/Patient').set(bearer(system));
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('discovery endpoints allow any origin', async () => {
    const res = await h.request
      .get('/fhir/.well-known/smart-configuration')
      .set('Origin', 'https://anyone.example');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    const meta = await h.request.get('/fhir/metadata').set('Origin', 'https://anyone.example');
    expect(meta.headers['access-control-allow-origin']).toBe('*');
  });

  test('the API does not allow an origin outside CORS_ORIGINS, and its preflight is refused', async () => {
    const res = await h.request
      .get('/fhir/Patient')
      .set('Origin', 'https://anyone.example')
      .set(bearer(system));
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const pre = await h.request
      .options('/fhir/Patient')
      .set('Origin', 'https://anyone.example')
      .set('Access-Control-Request-Method', 'GET');
    expect(pre.status).toBe(403);
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('CORS_ORIGINS', () => {
  let h2: Harness;
  beforeAll(async () => {
    h2 = await startHarness({ ...iss.env, CORS_ORIGINS: 'https://app.example, http://localhost:3000' });
  });
  afterAll(() => h2.close());

  test('a preflight from a listed origin is answered 204 without a token', async () => {
    const res = await h2.request
      .options('/fhir/Observation')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization, content-type');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(res.headers['access-control-allow-methods']).toMatch(/POST/);
    expect(res.headers['access-control-allow-headers']).toMatch(/Authorization/);
    expect(res.headers.vary).toMatch(/Origin/);
  });

  test('API answers to a listed origin allow it and expose Location and ETag', async () => {
    const res = await h2.request
      .get('/fhir/Patient')
      .set('Origin', 'http://localhost:3000')
      .set(bearer(system));
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('http://localhost:3000');
    expect(res.headers['access-control-expose-headers']).toMatch(/ETag/);
  });

  test('a 401 to a listed origin carries the CORS headers so the app can read the challenge', async () => {
    const res = await h2.request.get('/fhir/Patient').set('Origin', 'https://app.example');
    expect(res.status).toBe(401);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(res.headers['access-control-expose-headers']).toMatch(/WWW-Authenticate/);
  });
});

describe('AUTH=none', () => {
  let open: Harness;
  beforeAll(async () => {
    open = await startHarness();
  });
  afterAll(() => open.close());

  test('requests need no token, and metadata claims no security service', async () => {
    expect((await open.request.get('/fhir/Patient')).status).toBe(200);
    const meta = await open.request.get('/fhir/metadata');
    expect(meta.body.rest[0].security).toBeUndefined();
  });

  test('smart-configuration is not served', async () => {
    expect((await open.request.get('/fhir/.well-known/smart-configuration')).status).toBe(404);
  });
});
