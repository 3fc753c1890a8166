import type { MedicationRequest, Patient, Provenance } from 'fhir/r4';
import { Query } from 'mingo';
import { includeQueries, revincludeQueries } from '../../src/search/include';
import { parseSearchRequest } from '../../src/search/parse';
import { docOf, registry } from './helpers';

const mr: MedicationRequest = {
  resourceType: 'MedicationRequest',
  id: 'mr1',
  status: 'active',
  intent: 'order',
  medicationCodeableConcept: { text: 'x' },
  subject: { reference: 'Patient/p1' },
  requester: { reference: 'Practitioner/dr1' },
};
const source = (d: ReturnType<typeof docOf>) => ({
  type: d.resource?.resourceType ?? '',
  id: d._id,
  idx: d.idx,
});
const includes = (q: string) =>
  parseSearchRequest('MedicationRequest', [...new URLSearchParams(q)], registry, { strict: true });

describe('_include and _revinclude', () => {
  it('_include=MedicationRequest:patient fetches the referenced Patient by _id', () => {
    const queries = includeQueries(
      includes('_include=MedicationRequest:patient').include,
      [source(docOf(mr))],
      registry,
    );
    expect(queries).toEqual([{ type: 'Patient', filter: { deleted: false, _id: { $in: ['p1'] } } }]);
  });
  it('_include=MedicationRequest:* fetches every referenced resource', () => {
    const queries = includeQueries(
      includes('_include=MedicationRequest:*').include,
      [source(docOf(mr))],
      registry,
    );
    expect(queries.map((q) => q.type).sort()).toEqual(['Patient', 'Practitioner']);
  });
  it('_include with a target type keeps only that type', () => {
    const r = includes('_include=MedicationRequest:requester:Organization');
    expect(includeQueries(r.include, [source(docOf(mr))], registry)).toEqual([]);
  });
  it('_revinclude=Provenance:target finds Provenances pointing at the results', () => {
    const prov: Provenance = {
      resourceType: 'Provenance',
      target: [{ reference: 'MedicationRequest/mr1' }],
      recorded: '2024-01-01T00:00:00Z',
      agent: [{ who: { reference: 'Practitioner/dr1' } }],
    };
    const [q] = revincludeQueries(
      includes('_revinclude=Provenance:target').revinclude,
      [{ type: 'MedicationRequest', id: 'mr1' }],
      registry,
    );
    expect(q?.type).toBe('Provenance');
    const doc = docOf(prov);
    expect(new Query(q?.filter ?? {}).test(doc as unknown as Record<string, unknown>)).toBe(true);
    const moved: Provenance = { ...prov, target: [{ reference: 'MedicationRequest/mr2' }] };
    const other = docOf(moved);
    expect(new Query(q?.filter ?? {}).test(other as unknown as Record<string, unknown>)).toBe(false);
  });
  it('_revinclude by a Patient reference parameter', () => {
    const p: Patient = { resourceType: 'Patient', id: 'p1' };
    const [q] = revincludeQueries(
      parseSearchRequest('Patient', [['_revinclude', 'MedicationRequest:subject']], registry, {
        strict: true,
      }).revinclude,
      [{ type: 'Patient', id: p.id ?? '' }],
      registry,
    );
    expect(new Query(q?.filter ?? {}).test(docOf(mr) as unknown as Record<string, unknown>)).toBe(true);
  });
});
