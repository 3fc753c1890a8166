import { inferNote, mergeNotes } from '../../src/audit/infer';

describe('what a request attempted, from its method and URL', () => {
  test.each([
    ['GET', '/Patient/p1', '', { interaction: 'read', resourceType: 'Patient', id: 'p1' }],
    [
      'GET',
      '/Patient/p1/_history/2',
      '',
      { interaction: 'vread', resourceType: 'Patient', id: 'p1', versionId: 2 },
    ],
    [
      'GET',
      '/Patient/p1/_history',
      '',
      { interaction: 'history-instance', resourceType: 'Patient', id: 'p1' },
    ],
    ['GET', '/Patient/_history', '', { interaction: 'history-type', resourceType: 'Patient' }],
    ['GET', '/_history', '', { interaction: 'history-system' }],
    ['GET', '/Patient', 'name=x', { interaction: 'search-type', resourceType: 'Patient', query: 'name=x' }],
    ['POST', '/Patient/_search', '', { interaction: 'search-type', resourceType: 'Patient' }],
    ['GET', '/', '_type=Patient', { interaction: 'search-system', query: '_type=Patient' }],
    ['POST', '/', '', { interaction: 'transaction' }],
    ['POST', '/Patient', '', { interaction: 'create', resourceType: 'Patient' }],
    ['PUT', '/Patient/p1', '', { interaction: 'update', resourceType: 'Patient', id: 'p1' }],
    [
      'PUT',
      '/Patient',
      'identifier=a',
      { interaction: 'update', resourceType: 'Patient', query: 'identifier=a' },
    ],
    ['PATCH', '/Patient/p1', '', { interaction: 'patch', resourceType: 'Patient', id: 'p1' }],
    ['DELETE', '/Patient/p1', '', { interaction: 'delete', resourceType: 'Patient', id: 'p1' }],
    ['GET', '/metadata', '', { interaction: 'capabilities' }],
    [
      'GET',
      '/Patient/p1/Observation',
      '',
      { interaction: 'search-compartment', resourceType: 'Observation', patients: ['p1'] },
    ],
    [
      'GET',
      '/Patient/p1/$everything',
      '',
      { interaction: 'operation', operation: 'everything', resourceType: 'Patient', id: 'p1' },
    ],
    [
      'POST',
      '/AuditEvent/$verify',
      '',
      { interaction: 'operation', operation: 'verify', resourceType: 'AuditEvent' },
    ],
  ])('%s %s?%s', (method, path, query, expected) => {
    expect(inferNote(method, path, query)).toEqual(expected);
  });
});

describe('merging with the handler note', () => {
  test('the handler note wins', () => {
    const merged = mergeNotes(inferNote('GET', '/Patient/p1', ''), {
      interaction: 'read',
      resourceType: 'Patient',
      id: 'p1',
      versionId: 3,
      patients: ['p1'],
    });
    expect(merged).toEqual({
      interaction: 'read',
      resourceType: 'Patient',
      id: 'p1',
      versionId: 3,
      patients: ['p1'],
    });
  });

  test('a bare default note (operation without a name) keeps the inferred interaction', () => {
    const merged = mergeNotes(inferNote('GET', '/', '_type=Patient'), { interaction: 'operation', count: 2 });
    expect(merged.interaction).toBe('search-system');
    expect(merged.count).toBe(2);
  });
});
