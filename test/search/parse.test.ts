import { FhirError } from '../../src/fhir/errors';
import { parseSearchRequest } from '../../src/search/parse';
import type { SearchRequest } from '../../src/search/request';
import { registry } from './helpers';

const parse = (type: string | undefined, query: string, strict = true): SearchRequest =>
  parseSearchRequest(type, [...new URLSearchParams(query)], registry, { strict });

const statusOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof FhirError ? e.status : -1;
  }
  return undefined;
};

describe('parseSearchRequest', () => {
  it('parses code, modifier and OR values', () => {
    const r = parse('Patient', 'name:exact=Smith,Jones');
    expect(r.filters).toEqual([
      {
        kind: 'param',
        code: 'name',
        type: 'string',
        modifier: 'exact',
        values: [
          { prefix: undefined, value: 'Smith', parts: ['Smith'] },
          { prefix: undefined, value: 'Jones', parts: ['Jones'] },
        ],
      },
    ]);
  });
  it('repeated parameters are ANDed as separate filters', () => {
    expect(parse('Patient', 'name=a&name=b').filters).toHaveLength(2);
  });
  it('date prefixes are split off the value', () => {
    const r = parse('Patient', 'birthdate=ge2000-01-01');
    expect(r.filters[0]).toMatchObject({ values: [{ prefix: 'ge', value: '2000-01-01' }] });
  });
  it('string values keep prefix-like letters (no prefixes on strings)', () => {
    const r = parse('Patient', 'name=gerald');
    expect(r.filters[0]).toMatchObject({ values: [{ prefix: undefined, value: 'gerald' }] });
  });
  it('token system|code is split into parts; escaped \\| is not a separator', () => {
    const r = parse('Observation', 'code=http://loinc.org|8480-6,a\\|b');
    expect(r.filters[0]).toMatchObject({
      values: [
        { value: 'http://loinc.org|8480-6', parts: ['http://loinc.org', '8480-6'] },
        { value: 'a|b', parts: ['a|b'] },
      ],
    });
  });
  it('composite values are split on $ and each component parsed for its type', () => {
    const r = parse('Observation', 'code-value-quantity=http://loinc.org|8480-6$gt100');
    expect(r.filters[0]).toMatchObject({
      values: [{ components: [{ parts: ['http://loinc.org', '8480-6'] }, { prefix: 'gt', value: '100' }] }],
    });
  });
  it('chains parse to nested filters with target types', () => {
    const r = parse('Observation', 'subject:Patient.organization.name=acme');
    expect(r.filters[0]).toMatchObject({
      kind: 'chain',
      code: 'subject',
      targetTypes: ['Patient'],
      next: {
        kind: 'chain',
        code: 'organization',
        targetTypes: ['Organization'],
        next: { kind: 'param', code: 'name' },
      },
    });
  });
  it('_has parses, nested', () => {
    const r = parse('Patient', '_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/1');
    expect(r.filters[0]).toMatchObject({
      kind: 'has',
      type: 'Observation',
      referenceParam: 'patient',
      next: { kind: 'has', type: 'AuditEvent', referenceParam: 'entity', next: { code: 'agent' } },
    });
  });
  it('_sort takes a comma list with - for descending', () => {
    expect(parse('Patient', '_sort=family,-birthdate').sort).toEqual([
      { code: 'family', descending: false },
      { code: 'birthdate', descending: true },
    ]);
  });
  it('_count is clamped to 1000; _offset is kept', () => {
    const r = parse('Patient', '_count=5000&_offset=20');
    expect(r.count).toBe(1000);
    expect(r.offset).toBe(20);
  });
  it('_count must be a non-negative integer', () => {
    expect(statusOf(() => parse('Patient', '_count=-1'))).toBe(400);
    expect(statusOf(() => parse('Patient', '_count=abc', false))).toBe(400);
  });
  it('_include and _revinclude, with :iterate and *', () => {
    const r = parse(
      'MedicationRequest',
      '_include=MedicationRequest:patient&_include:iterate=Patient:general-practitioner:Practitioner&_revinclude=Provenance:target&_include=*',
    );
    expect(r.include).toEqual([
      { type: 'MedicationRequest', param: 'patient', targetType: undefined, iterate: false },
      { type: 'Patient', param: 'general-practitioner', targetType: 'Practitioner', iterate: true },
      { type: '*', param: '*', targetType: undefined, iterate: false },
    ]);
    expect(r.revinclude).toEqual([
      { type: 'Provenance', param: 'target', targetType: undefined, iterate: false },
    ]);
  });
  it('_summary, _elements, _total', () => {
    const r = parse('Patient', '_summary=count&_elements=name,birthDate&_total=accurate');
    expect(r.summary).toBe('count');
    expect(r.elements).toEqual(['name', 'birthDate']);
    expect(r.total).toBe('accurate');
  });
  it('_summary with an unknown value is a 400', () => {
    expect(statusOf(() => parse('Patient', '_summary=maybe'))).toBe(400);
  });
  it('_format and _pretty are not search parameters and are silently ignored', () => {
    const r = parse('Patient', '_format=json&_pretty=true');
    expect(r.filters).toEqual([]);
    expect(r.ignored).toEqual([]);
  });
  it('strict: an unknown parameter is a 400', () => {
    expect(statusOf(() => parse('Patient', 'foo=bar'))).toBe(400);
  });
  it('lenient: an unknown parameter is listed in ignored', () => {
    expect(parse('Patient', 'foo=bar&name=x', false)).toMatchObject({
      ignored: ['foo'],
      filters: [{ code: 'name' }],
    });
  });
  it('strict: an unknown modifier is a 400', () => {
    expect(statusOf(() => parse('Patient', 'name:fuzzy=x'))).toBe(400);
  });
  it('lenient: an unknown modifier is listed in ignored', () => {
    expect(parse('Patient', 'name:fuzzy=x', false).ignored).toEqual(['name:fuzzy']);
  });
  it('lenient: an unknown sort parameter is ignored', () => {
    expect(parse('Patient', '_sort=nope,name', false)).toMatchObject({
      ignored: ['_sort:nope'],
      sort: [{ code: 'name', descending: false }],
    });
  });
  it('a parameter with an empty value is ignored', () => {
    expect(parse('Patient', 'name=&birthdate=').filters).toEqual([]);
  });
  it('empty items of an OR list are dropped', () => {
    expect(parse('Patient', 'name=a,')).toMatchObject({ filters: [{ values: [{ value: 'a' }] }] });
  });
  it('malformed values are 400 even when lenient', () => {
    expect(statusOf(() => parse('Patient', 'birthdate=notadate', false))).toBe(400);
  });
  it('system search: _type and Resource-level parameters', () => {
    const r = parse(undefined, '_type=Patient,Observation&_lastUpdated=gt2020');
    expect(r.resourceType).toBeUndefined();
    expect(r.types).toEqual(['Patient', 'Observation']);
    expect(r.filters[0]).toMatchObject({ code: '_lastUpdated', type: 'date' });
  });
  it('system search: a type-specific parameter without _type is unknown', () => {
    expect(statusOf(() => parse(undefined, 'name=x'))).toBe(400);
  });
  it('an unknown resource type is a 400', () => {
    expect(statusOf(() => parse('Patientx', 'name=x'))).toBe(400);
  });
});
