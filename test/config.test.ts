import { ConfigError, loadConfig } from '../src/config';

describe('configuration', () => {
  test('defaults: port 8080, base URL on localhost, 16 MB bodies, depth 64', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.baseUrl).toBe('http://localhost:8080/fhir');
    expect(c.mountPath).toBe('/fhir');
    expect(c.maxBody).toBe(16 * 1024 * 1024);
    expect(c.maxJsonDepth).toBe(64);
    expect(c.mongodbUri).toBeUndefined();
  });

  test('BASE_URL sets the mount path and loses its trailing slash', () => {
    const c = loadConfig({ BASE_URL: 'https://ehr.example.org/api/fhir/' });
    expect(c.baseUrl).toBe('https://ehr.example.org/api/fhir');
    expect(c.mountPath).toBe('/api/fhir');
  });

  test('MAX_BODY accepts sizes with units', () => {
    expect(loadConfig({ MAX_BODY: '2mb' }).maxBody).toBe(2 * 1024 * 1024);
    expect(loadConfig({ MAX_BODY: '4096' }).maxBody).toBe(4096);
  });

  test.each([
    [{ PORT: 'eighty' }, /PORT must be an integer/],
    [{ PORT: '70000' }, /PORT must be between/],
    [{ BASE_URL: 'not a url' }, /BASE_URL/],
    [{ BASE_URL: 'ftp://x/fhir' }, /BASE_URL/],
    [{ MONGODB_URI: 'postgres://x' }, /MONGODB_URI/],
    [{ MONGODB_DB: 'a b' }, /MONGODB_DB/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ MAX_BODY: 'lots' }, /MAX_BODY/],
    [{ MAX_JSON_DEPTH: '2' }, /MAX_JSON_DEPTH/],
  ])('a bad value stops the start: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
