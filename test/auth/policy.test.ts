import type { Resource } from 'fhir/r4';
import { GranularCompiler } from '../../src/auth/granular';
import { grantsOf, smartPolicy, type PolicyDeps } from '../../src/auth/smart-policy';
import { loadDefinitions } from '../../src/fhir/definitions';
import { IndexExtractor } from '../../src/search/extract';

const { registry } = loadDefinitions();
const extractor = new IndexExtractor(registry);
const deps: PolicyDeps = {
  registry,
  indexOf: (r: Resource) => extractor.extract(r),
  granular: new GranularCompiler(registry),
  realm: 'http://fhir.test/fhir',
};

async function policy(claims: Record<string, unknown>) {
  return smartPolicy(await grantsOf(claims, deps), deps, '127.0.0.1');
}

const obs = (subject: string, extra: Record<string, unknown> = {}): Resource =>
  ({
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'x' },
    subject: { reference: subject },
    ...extra,
  }) as Resource;

describe('SMART access policy', () => {
  test('patient context: the compartment filter per type, {_id} for Patient, none outside the compartment', async () => {
    const p = await policy({ scope: 'patient/*.rs', patient: 'p1' });
    expect(p.visible('Patient', 's')).toEqual({ _id: 'p1' });
    expect(p.visible('Observation', 's')).toEqual({
      $or: [
        { 'idx.subject': { $elemMatch: { r: 'Patient/p1' } } },
        { 'idx.performer': { $elemMatch: { r: 'Patient/p1' } } },
      ],
    });
    expect(p.visible('Practitioner', 's')).toEqual({});
    expect(p.visible('Observation', 'c')).toBeNull();
  });

  test('user/ and system/ scopes see everything of their types', async () => {
    const p = await policy({ scope: 'user/Observation.rs patient/Observation.rs', patient: 'p1' });
    expect(p.visible('Observation', 'r')).toEqual({});
    expect(p.visible('Encounter', 'r')).toBeNull();
  });

  test('canSee and canWrite of in-memory resources follow the compartment', async () => {
    const p = await policy({ scope: 'patient/*.cruds', patient: 'p1' });
    expect(p.canSee(obs('Patient/p1'), 'r')).toBe(true);
    expect(p.canSee(obs('Patient/p2'), 'r')).toBe(false);
    // Visible through one compartment parameter, but naming another patient: not writable.
    const both = obs('Patient/p1', { performer: [{ reference: 'Patient/p2' }] });
    expect(p.canSee(both, 'r')).toBe(true);
    expect(p.canWrite(both, 'u')).toBe(false);
    expect(p.canWrite(obs('Patient/p1'), 'c')).toBe(true);
    expect(p.canWrite({ resourceType: 'Patient', id: 'p1' } as Resource, 'u')).toBe(true);
    expect(p.canWrite({ resourceType: 'Patient', id: 'p2' } as Resource, 'u')).toBe(false);
  });

  test('granular scopes compile to a filter and test in-memory resources', async () => {
    const p = await policy({ scope: 'user/Observation.rs?status=final' });
    const v = p.visible('Observation', 's');
    expect(v).not.toBeNull();
    expect(JSON.stringify(v)).toContain('status');
    expect(p.canSee(obs('Patient/p1'), 'r')).toBe(true);
    expect(p.canSee(obs('Patient/p1', { status: 'amended' }), 'r')).toBe(false);
  });

  test('an invalid patient claim disables patient/ scopes', async () => {
    const p = await policy({ scope: 'patient/*.rs', patient: '../p1' });
    expect(p.visible('Observation', 'r')).toBeNull();
    expect(() => p.require('Observation', 'r')).toThrow(/do not permit read on Observation/);
  });

  test('the agent: fhirUser, else sub, else the client; scopeLevel is the widest context', async () => {
    expect(
      (await policy({ sub: 's1', client_id: 'c1', scope: 'patient/*.rs system/Patient.r', patient: 'p1' }))
        .agent,
    ).toEqual({
      who: 's1',
      clientId: 'c1',
      patient: 'p1',
      scopeLevel: 'system',
      address: '127.0.0.1',
    });
    expect((await policy({ client_id: 'c1', scope: 'user/*.rs' })).agent.who).toBe('c1');
  });
});
