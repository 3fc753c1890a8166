import type { AuditEvent } from 'fhir/r4';
import { buildAuditEvent } from '../../src/audit/build';
import { linkOf } from '../../src/audit/chain';
import {
  AUDIT_TYPE,
  AuditRecorder,
  CHAIN_COLLECTION,
  type AuditDoc,
  type ChainHead,
} from '../../src/audit/recorder';
import { verifyChain } from '../../src/audit/verify';
import { startHarness, type Harness } from '../api/harness';

function event(i: number): AuditEvent {
  return buildAuditEvent({
    note: { interaction: 'read', resourceType: 'Patient', id: `p${i}`, versionId: 1 },
    status: 200,
    agent: { who: 'anonymous' },
    requestId: `r${i}`,
    recorded: '2024-01-01T00:00:00.000Z',
    source: 'fhir.test',
  });
}

describe('AuditRecorder', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ AUDIT: 'off' });
  });
  afterEach(async () => h.close());

  test('concurrent records get consecutive sequence numbers and one unbroken chain', async () => {
    const r = new AuditRecorder(h.ctx.store, h.ctx.registry);
    await Promise.all(Array.from({ length: 50 }, (_, i) => r.record([event(i)])));
    const docs = await h.ctx.store.backend.collection<AuditDoc>(AUDIT_TYPE).find({}, { sort: { seq: 1 } });
    expect(docs.map((d) => d.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await verifyChain(h.ctx, r)).ok).toBe(true);
  });

  test('a new recorder continues the chain after events written past the anchored head', async () => {
    const first = new AuditRecorder(h.ctx.store, h.ctx.registry);
    await first.record([event(1), event(2), event(3)]);
    // As after a crash between the events and the head: the head still says 1.
    const [one] = await h.ctx.store.backend.collection<AuditDoc>(AUDIT_TYPE).find({ seq: 1 });
    const hash = linkOf(one?.resource as AuditEvent)?.hash as string;
    await h.ctx.store.backend
      .collection<ChainHead>(CHAIN_COLLECTION)
      .replaceOne({ _id: 'head' }, { _id: 'head', seq: 1, hash });
    const second = new AuditRecorder(h.ctx.store, h.ctx.registry);
    await second.record([event(4)]);
    const docs = await h.ctx.store.backend.collection<AuditDoc>(AUDIT_TYPE).find({}, { sort: { seq: 1 } });
    expect(docs.map((d) => d.seq)).toEqual([1, 2, 3, 4]);
    const v = await verifyChain(h.ctx, second);
    expect(v).toMatchObject({ ok: true, checked: 4, head: { seq: 4 } });
  });
});
