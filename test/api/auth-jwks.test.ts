import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bearer, makeIssuer, type TestIssuer } from '../auth/issuer';
import { startHarness, type Harness } from './harness';

/** AUTH=smart with SMART_JWKS_URI: the keys come from a local JWKS server (nothing outside is fetched). */
let iss: TestIssuer;
let jwks: http.Server;
let status = 200;
let h: Harness;

beforeAll(async () => {
  iss = await makeIssuer();
  jwks = http.createServer((_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(status === 200 ? iss.jwks : { error: 'down' }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
  const { SMART_JWKS_FILE: _file, ...env } = iss.env;
  h = await startHarness({
    ...env,
    SMART_JWKS_URI: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
  });
});

afterAll(async () => {
  await h.close();
  await new Promise<void>((r) => jwks.close(() => r()));
  iss.cleanup();
});

test('a token signed with a key from the JWKS URI is accepted', async () => {
  const t = await iss.token({ scope: 'user/*.rs' }, { alg: 'ES256' });
  expect((await h.request.get('/fhir/Patient').set(bearer(t))).status).toBe(200);
});

test('smart-configuration advertises the jwks_uri', async () => {
  const res = await h.request.get('/fhir/.well-known/smart-configuration');
  expect(res.body.jwks_uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/jwks\.json$/);
});

test('when the issuer keys cannot be fetched the answer is 503 with Retry-After, not 401', async () => {
  // A fresh server has no cached keys: its first token needs a fetch, which fails.
  const { SMART_JWKS_FILE: _file, ...env } = iss.env;
  const cold = await startHarness({
    ...env,
    SMART_JWKS_URI: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
  });
  status = 500;
  try {
    const t = await iss.token({ scope: 'user/*.rs' });
    const res = await cold.request.get('/fhir/Patient').set(bearer(t));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
  } finally {
    status = 200;
    await cold.close();
  }
});
