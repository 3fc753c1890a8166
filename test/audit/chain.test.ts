import type { AuditEvent } from 'fhir/r4';
import { canonicalJson, GENESIS, hashOf, link, linkOf } from '../../src/audit/chain';

function event(extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    resourceType: 'AuditEvent',
    id: 'e1',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
    recorded: '2024-01-01T00:00:00.000Z',
    agent: [{ requestor: true, who: { display: 'anonymous' } }],
    source: { observer: { display: 'fhir.test' } },
    ...extra,
  };
}

describe('canonical JSON', () => {
  test('key order does not matter', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe(canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }));
  });

  test('array order does', () => {
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });
});

describe('hash chain links', () => {
  test('a linked event carries its sequence, the previous hash and its own hash', () => {
    const { event: e, hash } = link(event(), 1, GENESIS);
    expect(linkOf(e)).toEqual({ sequence: 1, previous: GENESIS, hash });
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
  });

  test('the hash verifies the linked event and ignores meta', () => {
    const { event: e, hash } = link(event(), 7, 'ab'.repeat(32));
    expect(
      hashOf({ ...e, meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00Z' } }, 7, 'ab'.repeat(32)),
    ).toBe(hash);
  });

  test('any change of content changes the hash', () => {
    const { event: e, hash } = link(event(), 1, GENESIS);
    expect(hashOf({ ...e, outcome: '4' }, 1, GENESIS)).not.toBe(hash);
    expect(hashOf({ ...e, id: 'e2' }, 1, GENESIS)).not.toBe(hash);
  });

  test('the same event at another place in the chain hashes differently', () => {
    const { hash } = link(event(), 1, GENESIS);
    expect(hashOf(event(), 2, GENESIS)).not.toBe(hash);
    expect(hashOf(event(), 1, 'f'.repeat(64))).not.toBe(hash);
  });

  test('other extensions are kept and covered by the hash', () => {
    const other = { url: 'http://example.org/x', valueString: 'y' };
    const { event: e, hash } = link(event({ extension: [other] }), 1, GENESIS);
    expect(e.extension?.[0]).toEqual(other);
    expect(hashOf({ ...e, extension: e.extension?.slice(1) }, 1, GENESIS)).not.toBe(hash);
  });

  test('an event without a chain link has none', () => {
    expect(linkOf(event())).toBeUndefined();
  });
});
