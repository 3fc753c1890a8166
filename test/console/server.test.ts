import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import type { Bundle, CapabilityStatement } from 'fhir/r4';
import supertest from 'supertest';
import { loadConfig } from '../../src/config';
import { consoleCollides, consoleRouter } from '../../src/http/console';
import { startHarness, type Harness } from '../api/harness';
import { makeIssuer } from '../auth/issuer';

describe('console files (src/http/console.ts)', () => {
  let dir: string;
  let request: ReturnType<typeof supertest>;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-dist-'));
    fs.mkdirSync(path.join(dir, 'assets'));
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>console</title>');
    fs.writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
    const config = loadConfig({ BASE_URL: 'https://records.example/fhir', DATA_DIR: dir });
    const app = express();
    app.use('/console', consoleRouter({ config, dir }));
    request = supertest(app);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a console route answers the app page, with a CSP that allows only this origin', async () => {
    const res = await request.get('/console/patient/123').expect(200);
    expect(res.text).toContain('<title>console</title>');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  test('hashed assets are cached for good; a missing file is 404, not the app page', async () => {
    const asset = await request.get('/console/assets/index-abc123.js').expect(200);
    expect(asset.headers['cache-control']).toContain('immutable');
    await request.get('/console/assets/index-missing.js').expect(404);
  });

  test('config.json tells the page where the API is', async () => {
    const res = await request.get('/console/config.json').expect(200);
    expect(res.body).toEqual({ fhirBase: 'https://records.example/fhir', fhirPath: '/fhir' });
  });

  test('only GET and HEAD', async () => {
    const res = await request.post('/console/patient/1').expect(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  test('an unbuilt console says how to build it', async () => {
    const app = express();
    const config = loadConfig({ DATA_DIR: dir });
    app.use('/console', consoleRouter({ config, dir: path.join(dir, 'nothing') }));
    const res = await supertest(app).get('/console/').expect(503);
    expect(res.text).toContain('npm run build:console');
  });

  test('the console is not mounted where the API is', () => {
    expect(consoleCollides('/console')).toBe(true);
    expect(consoleCollides('/console/fhir')).toBe(true);
    expect(consoleCollides('/fhir')).toBe(false);
    expect(consoleCollides('/')).toBe(false);
  });

  test('with AUTH=smart the page may also call the token endpoint', async () => {
    const issuer = await makeIssuer();
    const config = loadConfig({ DATA_DIR: dir, ...issuer.env });
    issuer.cleanup();
    const app = express();
    app.use('/console', consoleRouter({ config, dir }));
    const res = await supertest(app).get('/console/').expect(200);
    expect(res.headers['content-security-policy']).toContain("connect-src 'self' https://auth.test;");
  });
});

describe('console in the server (src/app.ts)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  test('the console does not shadow the API, and loading it records no AuditEvent', async () => {
    await h.request.get('/console/config.json').expect(200);
    await h.request.get('/fhir/metadata').expect(200);
    const audit = await h.request.get('/fhir/AuditEvent?_count=100').expect(200);
    const urls = (audit.body as Bundle).entry?.map((e) => JSON.stringify(e.resource)) ?? [];
    expect(urls.some((u) => u.includes('console'))).toBe(false);
    expect(urls.some((u) => u.includes('capabilities'))).toBe(true);
  });

  test('the CapabilityStatement lists the profiles held for each type (what $validate can check)', async () => {
    const cs = (await h.request.get('/fhir/metadata').expect(200)).body as CapabilityStatement;
    const observation = cs.rest?.[0]?.resource?.find((r) => r.type === 'Observation');
    // R4's own vital signs profiles are held with the core definitions.
    expect(observation?.supportedProfile).toContain('http://hl7.org/fhir/StructureDefinition/bodyweight');
    const patient = cs.rest?.[0]?.resource?.find((r) => r.type === 'Patient');
    expect(patient?.supportedProfile ?? []).not.toContain(
      'http://hl7.org/fhir/StructureDefinition/bodyweight',
    );
  });
});
