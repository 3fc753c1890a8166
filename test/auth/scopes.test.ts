import { parseScope, parseScopes, scopeList } from '../../src/auth/scopes';

const known = (t: string): boolean => ['Patient', 'Observation', 'Encounter'].includes(t);
const actions = (s: string): string | undefined => {
  const p = parseScope(s, known);
  return p ? [...p.actions].sort().join('') : undefined;
};

describe('SMART scopes', () => {
  test.each([
    ['patient/*.read', 'rs'],
    ['user/Observation.write', 'cdu'],
    ['system/*.*', 'cdrsu'],
    ['patient/Observation.rs', 'rs'],
    ['user/*.cruds', 'cdrsu'],
    ['system/Patient.c', 'c'],
    ['user/Encounter.ud', 'du'],
    ['patient/Observation.rs?category=laboratory', 'rs'],
  ])('%s grants %s', (scope, expected) => {
    expect(actions(scope)).toBe(expected);
  });

  test.each([
    'openid',
    'fhirUser',
    'launch',
    'launch/patient',
    'offline_access',
    'patient/Observation', // no permission
    'patient/Observation.', // empty permission
    'patient/Observation.sr', // v2 letters out of order
    'patient/Observation.rr',
    'patient/Observation.x',
    'patient/observation.rs', // not a resource type
    'patient/Unknown.rs',
    'admin/Patient.rs', // unknown context
    'patient/Observation.read?category=laboratory', // granular needs v2
    'patient/*.rs?category=laboratory', // granular needs a type
    'patient/Observation.rs?', // empty query
    ' patient/Observation.rs',
  ])('%s grants nothing', (scope) => {
    expect(parseScope(scope, known)).toBeUndefined();
  });

  test('a granular scope keeps its query as parameter pairs', () => {
    expect(
      parseScope('patient/Observation.rs?category=laboratory&code=http://loinc.org|1234-5', known),
    ).toMatchObject({
      context: 'patient',
      type: 'Observation',
      query: [
        ['category', 'laboratory'],
        ['code', 'http://loinc.org|1234-5'],
      ],
    });
  });

  test('the scope claim is space separated; scp arrays are accepted too', () => {
    expect(scopeList({ scope: ' openid  patient/*.rs\tuser/Patient.r ' })).toEqual([
      'openid',
      'patient/*.rs',
      'user/Patient.r',
    ]);
    expect(scopeList({ scp: ['user/*.rs', 3, ''] })).toEqual(['user/*.rs']);
    expect(scopeList({})).toEqual([]);
    expect(parseScopes(['openid', 'user/*.rs', 'bogus'], known).map((s) => s.text)).toEqual(['user/*.rs']);
  });
});
