import fs from 'node:fs';
import { ConfigError, loadConfig } from '../../src/config';
import { makeIssuer, type TestIssuer } from './issuer';

let iss: TestIssuer;
beforeAll(async () => {
  iss = await makeIssuer();
});
afterAll(() => iss.cleanup());

const smart = (extra: Record<string, string> = {}): Record<string, string> => ({
  BASE_URL: 'https://fhir.example/r4',
  ...iss.env,
  ...extra,
});

function error(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('authorization configuration', () => {
  test('AUTH defaults to none', () => {
    expect(loadConfig({}).auth).toEqual({ mode: 'none', corsOrigins: [] });
  });

  test('AUTH=smart with a JWKS file; the audience defaults to BASE_URL', () => {
    expect(loadConfig(smart()).auth.smart).toEqual({
      issuer: 'https://auth.test',
      audience: 'https://fhir.example/r4',
      jwksFile: iss.jwksFile,
      jwksUri: undefined,
      authorizeUrl: 'https://auth.test/authorize',
      tokenUrl: 'https://auth.test/token',
    });
    expect(loadConfig(smart({ SMART_AUDIENCE: 'api://fhir' })).auth.smart?.audience).toBe('api://fhir');
  });

  test('NODE_ENV=production refuses AUTH=none unless ALLOW_NO_AUTH=true', () => {
    expect(error({ NODE_ENV: 'production' })).toMatch(/AUTH=none in production/);
    expect(error({ NODE_ENV: 'production', AUTH: 'none' })).toMatch(/ALLOW_NO_AUTH=true/);
    expect(loadConfig({ NODE_ENV: 'production', ALLOW_NO_AUTH: 'true' }).auth.mode).toBe('none');
    expect(loadConfig(smart({ NODE_ENV: 'production' })).auth.mode).toBe('smart');
  });

  test.each([
    [{ AUTH: 'oauth' }, /AUTH must be none or smart/],
    [{ ALLOW_NO_AUTH: 'yes' }, /ALLOW_NO_AUTH must be true or false/],
    [{ AUTH: 'smart', SMART_ISSUER: '' }, /SMART_ISSUER/],
    [{ SMART_JWKS_URI: 'https://auth.test/jwks' }, /exactly one of SMART_JWKS_URI and SMART_JWKS_FILE/],
    [{ SMART_JWKS_FILE: '' }, /exactly one of/],
    [{ SMART_JWKS_FILE: '', SMART_JWKS_URI: 'ftp://x/jwks' }, /SMART_JWKS_URI must be an http/],
    [{ SMART_JWKS_FILE: '/nonexistent/jwks.json' }, /does not exist/],
    [{ SMART_TOKEN_URL: '' }, /SMART_TOKEN_URL/],
    [{ SMART_AUTHORIZE_URL: 'not a url' }, /SMART_AUTHORIZE_URL must be an absolute/],
    [{ CORS_ORIGINS: 'https://app.example/path' }, /CORS_ORIGINS/],
  ])('%p is refused with one clear line', (extra, message) => {
    const m = error(smart(extra as Record<string, string>));
    expect(m).toMatch(message);
    expect(m).not.toMatch(/\n/);
  });

  test('a JWKS file that is not a public JWKS is refused at start', () => {
    const bad = `${iss.dir}/bad.json`;
    fs.writeFileSync(bad, '{"keys": []}');
    expect(error(smart({ SMART_JWKS_FILE: bad }))).toMatch(/non-empty "keys"/);
    fs.writeFileSync(bad, JSON.stringify({ keys: [{ kty: 'RSA', n: 'x', e: 'AQAB', d: 'secret' }] }));
    expect(error(smart({ SMART_JWKS_FILE: bad }))).toMatch(/private key/);
    fs.writeFileSync(bad, 'nope');
    expect(error(smart({ SMART_JWKS_FILE: bad }))).toMatch(/cannot read JWKS file/);
  });

  test('CORS_ORIGINS is a comma-separated list of origins', () => {
    expect(
      loadConfig({ CORS_ORIGINS: 'https://a.example, http://localhost:3000/' }).auth.corsOrigins,
    ).toEqual(['https://a.example', 'http://localhost:3000']);
    expect(loadConfig({ CORS_ORIGINS: '*' }).auth.corsOrigins).toEqual(['*']);
  });
});
