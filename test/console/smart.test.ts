import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { makeIssuer, type TestIssuer } from '../auth/issuer';
import { httpRequest, spawnServer, type RunningServer } from '../process';
import { describeWithBrowser, ensureConsoleBuilt, launchChromium, watchErrors } from './browser';

/** What the test authorization server saw of one authorization request. */
interface Grant {
  clientId: string;
  redirectUri: string;
  scope: string;
  aud: string;
  challenge: string;
  method: string;
}

/**
 * A minimal SMART authorization server for the test: /authorize approves at once (the user is
 * "coordinator-1") and redirects back with a code; /token accepts the code only with the PKCE
 * verifier whose S256 hash was the challenge, and signs the access token with the test issuer's key.
 */
function authorizationServer(issuer: TestIssuer) {
  const grants = new Map<string, Grant>();
  const seen: { authorize: Grant[]; tokens: number; refused: string[] } = {
    authorize: [],
    tokens: 0,
    refused: [],
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://as.test');
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      const grant: Grant = {
        clientId: q.get('client_id') ?? '',
        redirectUri: q.get('redirect_uri') ?? '',
        scope: q.get('scope') ?? '',
        aud: q.get('aud') ?? '',
        challenge: q.get('code_challenge') ?? '',
        method: q.get('code_challenge_method') ?? '',
      };
      seen.authorize.push(grant);
      const code = crypto.randomBytes(16).toString('hex');
      grants.set(code, grant);
      const back = new URL(grant.redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') ?? '');
      res.writeHead(302, { Location: back.toString() }).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        void (async () => {
          const form = new URLSearchParams(body);
          const grant = grants.get(form.get('code') ?? '');
          grants.delete(form.get('code') ?? '');
          const verifier = form.get('code_verifier') ?? '';
          const hashed = crypto.createHash('sha256').update(verifier).digest('base64url');
          const headers = { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' };
          const refuse = (why: string): void => {
            seen.refused.push(why);
            res
              .writeHead(400, headers)
              .end(JSON.stringify({ error: 'invalid_grant', error_description: why }));
          };
          if (!grant) return refuse('unknown code');
          if (grant.method !== 'S256' || hashed !== grant.challenge)
            return refuse('PKCE verifier does not match');
          if (form.get('redirect_uri') !== grant.redirectUri) return refuse('redirect_uri differs');
          if (form.get('client_id') !== grant.clientId) return refuse('client_id differs');
          seen.tokens += 1;
          const token = await issuer.token(
            { sub: 'coordinator-1', client_id: grant.clientId, scope: grant.scope },
            { audience: grant.aud },
          );
          res.writeHead(200, headers).end(
            JSON.stringify({
              access_token: token,
              token_type: 'Bearer',
              expires_in: 300,
              scope: grant.scope,
            }),
          );
        })();
      });
      return;
    }
    res.writeHead(404).end();
  });
  return { server, seen };
}

describeWithBrowser('records console as a SMART app (AUTH=smart)', () => {
  let issuer: TestIssuer;
  let as: ReturnType<typeof authorizationServer>;
  let asOrigin: string;
  let server: RunningServer;
  let fhirBase: string;
  let dataDir: string;
  let userDataDir: string;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    ensureConsoleBuilt();
    issuer = await makeIssuer();
    as = authorizationServer(issuer);
    await new Promise<void>((resolve) => as.server.listen(0, '127.0.0.1', resolve));
    asOrigin = `http://127.0.0.1:${(as.server.address() as AddressInfo).port}`;
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-console-smart-'));
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-console-smart-chromium-'));
    server = await spawnServer({
      DATA_DIR: dataDir,
      AUTH: 'smart',
      SMART_ISSUER: issuer.issuer,
      SMART_JWKS_FILE: issuer.jwksFile,
      SMART_AUTHORIZE_URL: `${asOrigin}/authorize`,
      SMART_TOKEN_URL: `${asOrigin}/token`,
    });
    // The audience is BASE_URL as the server knows it (the console reads it from config.json).
    const settings = await httpRequest('GET', `http://127.0.0.1:${server.port}/console/config.json`);
    fhirBase = (JSON.parse(settings.body) as { fhirBase: string }).fhirBase;
    const token = await issuer.token({ scope: 'system/*.cruds' }, { audience: fhirBase });
    const created = await httpRequest(
      'POST',
      `${server.baseUrl}/Patient`,
      { resourceType: 'Patient', name: [{ family: 'Ashworth', given: ['Mina'] }], birthDate: '1990-05-06' },
      { authorization: `Bearer ${token}` },
    );
    expect(created.status).toBe(201);
    context = await launchChromium(userDataDir);
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
    watchErrors(page, pageErrors, () => false);
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await new Promise((resolve) => as?.server.close(resolve));
    issuer?.cleanup();
    for (const d of [dataDir, userDataDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  }, 60_000);

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  test('without a token the API refuses the page; the console asks to sign in', async () => {
    const res = await httpRequest('GET', `${server.baseUrl}/Patient`);
    expect(res.status).toBe(401);
    await page.goto(`http://127.0.0.1:${server.port}/console/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await expect(page.getByLabel(/Client id/).inputValue()).resolves.toBe('records-console');
  }, 60_000);

  test('standalone launch with PKCE: sign in, come back with a token, search with it', async () => {
    await page.getByLabel('Scopes').fill('openid fhirUser user/*.rs');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Find a patient' }).waitFor();
    expect(page.url()).toBe(`http://127.0.0.1:${server.port}/console/`);
    expect(as.seen.refused).toEqual([]);
    expect(as.seen.tokens).toBe(1);
    const grant = as.seen.authorize[0];
    expect(grant).toEqual({
      clientId: 'records-console',
      redirectUri: `http://127.0.0.1:${server.port}/console/callback`,
      scope: 'openid fhirUser user/*.rs',
      aud: fhirBase,
      challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      method: 'S256',
    });
    // The search went out with the bearer token: the patient is listed, and the audit names the user.
    await page.getByRole('link', { name: 'Mina Ashworth' }).waitFor();
    await page.getByRole('link', { name: 'Audit', exact: true }).click();
    await page.getByLabel('User').fill('coordinator-1');
    await page.getByRole('button', { name: 'Filter' }).click();
    const trail = page.locator('section[aria-labelledby="trail-h"] table');
    await trail.waitFor();
    await expect(trail.textContent()).resolves.toContain('Patient?_count=20');
  }, 60_000);

  test('signing out drops the token', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  }, 60_000);
});
