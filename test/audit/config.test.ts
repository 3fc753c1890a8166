import { ConfigError, loadConfig } from '../../src/config';

describe('AUDIT and AUDIT_SOURCE', () => {
  test('audit is on by default and the source is the BASE_URL host', () => {
    const c = loadConfig({ BASE_URL: 'https://fhir.example.org:8443/fhir' });
    expect(c.audit).toBe(true);
    expect(c.auditSource).toBe('fhir.example.org:8443');
  });

  test('AUDIT=off turns it off; AUDIT_SOURCE names the server', () => {
    const c = loadConfig({ AUDIT: 'off', AUDIT_SOURCE: 'ehr-fhir-1' });
    expect(c.audit).toBe(false);
    expect(c.auditSource).toBe('ehr-fhir-1');
  });

  test('any other AUDIT value is a configuration error', () => {
    expect(() => loadConfig({ AUDIT: 'maybe' })).toThrow(ConfigError);
  });
});
