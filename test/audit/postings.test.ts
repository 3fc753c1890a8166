import type { AuditEvent } from 'fhir/r4';
import { buildAuditEvent, type AuditFacts } from '../../src/audit/build';
import { auditPostings, factPostings, POSTED_PATHS, postingKey } from '../../src/audit/postings';
import { loadDefinitions } from '../../src/fhir/definitions';
import { IndexExtractor } from '../../src/search/extract';

const { registry } = loadDefinitions();
const extractor = new IndexExtractor(registry, { fullText: false });
const isResourceType = (t: string): boolean => registry.isResourceType(t);

/** The posting keys as the search index has them: every value at a posted path. */
function fromIndex(event: AuditEvent): string[] {
  const idx = extractor.extract(event, ['patient', 'entity', 'agent', 'action', 'outcome', 'subtype']);
  const keys = new Set<string>();
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) for (const v of value) walk(v, path);
    else if (value !== null && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`);
    else if (POSTED_PATHS.has(path) && typeof value === 'string') keys.add(postingKey(path, value));
  };
  for (const [code, entries] of Object.entries(idx)) if (code !== '_sort') walk(entries, `idx.${code}`);
  return [...keys].sort();
}

const base: Omit<AuditFacts, 'note'> = {
  status: 200,
  agent: { who: 'anonymous', address: '127.0.0.1' },
  requestId: 'r-1',
  recorded: '2026-01-01T00:00:00.000Z',
  source: 'fhir.test',
};

const cases: Array<[string, Partial<AuditFacts> & Pick<AuditFacts, 'note'>]> = [
  ['read of a Patient', { note: { interaction: 'read', resourceType: 'Patient', id: 'p1', versionId: 2 } }],
  [
    'read of an Observation with its patient',
    { note: { interaction: 'read', resourceType: 'Observation', id: 'o1', versionId: 1, patients: ['p1'] } },
  ],
  [
    'search with several patients and a query',
    {
      note: {
        interaction: 'search-type',
        resourceType: 'Observation',
        query: 'code=x',
        patients: ['a', 'b'],
        count: 2,
      },
    },
  ],
  ['a failed delete', { status: 404, note: { interaction: 'delete', resourceType: 'Condition', id: 'c1' } }],
  [
    'an operation',
    { note: { interaction: 'operation', operation: 'everything', resourceType: 'Patient', id: 'p9' } },
  ],
  ['a transaction', { status: 500, note: { interaction: 'transaction' } }],
  [
    'a user with a fhirUser and a client',
    {
      agent: { who: 'alice', clientId: 'app-1', fhirUser: 'Practitioner/pr1', address: '10.0.0.1' },
      note: { interaction: 'read', resourceType: 'Patient', id: 'p1' },
    },
  ],
  [
    'a patient user',
    {
      agent: { who: 'bob', fhirUser: 'https://idp.example/fhir/Patient/p7' },
      note: { interaction: 'read', resourceType: 'Patient', id: 'p7' },
    },
  ],
  ['capabilities', { note: { interaction: 'capabilities' } }],
  [
    'an unknown type and an id that is no id',
    { status: 404, note: { interaction: 'read', resourceType: 'Foo', id: 'a b' } },
  ],
  [
    'a client that is its own user',
    { agent: { who: 'svc', clientId: 'svc' }, note: { interaction: 'search-system' } },
  ],
  [
    'a user without a name',
    { agent: { who: '' }, note: { interaction: 'read', resourceType: 'Patient', id: 'p1' } },
  ],
  [
    'a Bundle entry on an Observation',
    {
      note: {
        interaction: 'update',
        resourceType: 'Observation',
        id: 'o2',
        versionId: 3,
        patients: ['p1', 'p2'],
      },
    },
  ],
];

describe('audit log posting keys', () => {
  test.each(cases)(
    '%s: the same values as the search index, from the event and from the facts',
    (_name, facts) => {
      const f = { ...base, ...facts };
      const event = buildAuditEvent(f);
      const indexed = fromIndex(event);
      expect(auditPostings(event, isResourceType).sort()).toEqual(indexed);
      expect(factPostings(f, isResourceType).sort()).toEqual(indexed);
    },
  );
});
