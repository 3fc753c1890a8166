import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditEvent } from 'fhir/r4';
import type { AuditFacts } from '../../src/audit/build';
import { linkOf } from '../../src/audit/chain';
import { AUDIT_TYPE, CHAIN_COLLECTION, type AuditDoc, type ChainHead } from '../../src/audit/documents';
import { AuditRecorder } from '../../src/audit/recorder';
import { loadDefinitions } from '../../src/fhir/definitions';
import { IndexExtractor } from '../../src/search/extract';
import { EmbeddedBackend } from '../../src/store/embedded/engine';
import { ResourceStore } from '../../src/store/resource-store';

/**
 * The document recorder (AuditEvents as documents: what the MongoDB store uses), on the embedded
 * engine without its audit log, so that its chain logic is tested where no mongod runs.
 */
const { registry } = loadDefinitions();

function facts(i: number): AuditFacts {
  return {
    note: { interaction: 'read', resourceType: 'Patient', id: `p${i}`, versionId: 1 },
    status: 200,
    agent: { who: 'anonymous' },
    requestId: `r${i}`,
    recorded: '2024-01-01T00:00:00.000Z',
    source: 'fhir.test',
  };
}

describe('AuditRecorder (AuditEvent documents)', () => {
  let dir: string;
  let backend: EmbeddedBackend;
  let store: ResourceStore;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-docs-'));
    backend = await EmbeddedBackend.open({ dataDir: dir });
    store = new ResourceStore({ backend, extractor: new IndexExtractor(registry) });
    await store.init();
  });
  afterEach(async () => {
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const events = (): Promise<AuditDoc[]> =>
    backend.collection<AuditDoc>(AUDIT_TYPE).find({}, { sort: { seq: 1 } });

  test('concurrent records get consecutive sequence numbers and one unbroken chain', async () => {
    const r = new AuditRecorder(store, registry);
    await Promise.all(Array.from({ length: 50 }, (_, i) => r.record([facts(i)])));
    expect((await events()).map((d) => d.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await r.verify()).ok).toBe(true);
  });

  test('a new recorder continues the chain after events written past the anchored head', async () => {
    const first = new AuditRecorder(store, registry);
    await first.record([facts(1), facts(2), facts(3)]);
    // As after a crash between the events and the head: the head still says 1.
    const [one] = await backend.collection<AuditDoc>(AUDIT_TYPE).find({ seq: 1 });
    const hash = linkOf(one?.resource as AuditEvent)?.hash as string;
    await backend
      .collection<ChainHead>(CHAIN_COLLECTION)
      .replaceOne({ _id: 'head' }, { _id: 'head', seq: 1, hash });
    const second = new AuditRecorder(store, registry);
    await second.record([facts(4)]);
    expect((await events()).map((d) => d.seq)).toEqual([1, 2, 3, 4]);
    expect(await second.verify()).toMatchObject({ ok: true, checked: 4, head: { seq: 4 } });
  });

  test('an edited event breaks the chain at that event', async () => {
    const r = new AuditRecorder(store, registry);
    await r.record([facts(1), facts(2), facts(3)]);
    const [, second] = await events();
    if (!second) throw new Error('expected two events');
    const forged = { ...(second.resource as AuditEvent), outcome: '4' as const };
    await backend
      .collection<AuditDoc>(AUDIT_TYPE)
      .replaceOne({ _id: second._id }, { ...second, resource: forged });
    expect(await r.verify()).toMatchObject({ ok: false, break: { sequence: 2, id: second._id } });
  });
});
