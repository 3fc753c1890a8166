import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditEvent, Bundle } from 'fhir/r4';
import type { AuditFacts } from '../../src/audit/build';
import { linkOf } from '../../src/audit/chain';
import { AUDIT_TYPE, type AuditDoc } from '../../src/audit/documents';
import { AuditLog } from '../../src/audit/log';
import { AuditRecorder } from '../../src/audit/recorder';
import { loadDefinitions } from '../../src/fhir/definitions';
import { IndexExtractor } from '../../src/search/extract';
import { EmbeddedBackend } from '../../src/store/embedded/engine';
import { ResourceStore } from '../../src/store/resource-store';
import { startHarness } from '../api/harness';

const { registry } = loadDefinitions();

function facts(i: number, patient = `p${i}`): AuditFacts {
  return {
    note: { interaction: 'read', resourceType: 'Patient', id: patient, versionId: 1 },
    status: 200,
    agent: { who: 'anonymous', patient: 'not kept', scopeLevel: 'user' },
    requestId: `r${i}`,
    recorded: '2024-01-01T00:00:00.000Z',
    source: 'fhir.test',
  };
}

describe('AuditLog', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-log-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('events get ids in log order, render as AuditEvents with their link, and a reopened log goes on', async () => {
    const file = path.join(dir, 'audit.log');
    const { auditLog } = await AuditLog.open(file, registry);
    const links = await Promise.all([1, 2, 3].map((i) => auditLog.append(facts(i))));
    expect(links.map((l) => l.seq)).toEqual([1, 2, 3]);
    const docs = await auditLog.events.find({}, { sort: { _id: 1 } });
    expect(docs.map((d) => d._id)).toEqual(['0000000000000001', '0000000000000002', '0000000000000003']);
    const e = docs[1]?.resource as AuditEvent;
    expect(linkOf(e)).toEqual({ sequence: 2, previous: links[0]?.hash, hash: links[1]?.hash });
    expect(e.meta?.versionId).toBe('1');
    // What the token said beyond who asked is not part of the record.
    expect(fs.readFileSync(file, 'utf8')).not.toContain('not kept');
    await auditLog.overlay().close();

    const { auditLog: again } = await AuditLog.open(file, registry);
    expect(again.chainHead).toEqual({ seq: 3, hash: links[2]?.hash });
    await again.append(facts(4, 'p2'));
    expect((await again.events.find({ 'idx.patient.i': 'p2' })).map((d) => d.seq)).toEqual([2, 4]);
    expect(await again.verify(undefined)).toMatchObject({ ok: true, checked: 4 });
    await again.overlay().close();
  });

  test('a DATA_DIR of an earlier version: its AuditEvent documents are moved into the log, ids kept, and the log verifies', async () => {
    // What an earlier version wrote: AuditEvents as documents of the engine.
    const engine = await EmbeddedBackend.open({ dataDir: dir });
    const store = new ResourceStore({ backend: engine, extractor: new IndexExtractor(registry) });
    await store.init();
    await new AuditRecorder(store, registry).record([facts(1), facts(2, 'p1')]);
    const old = await engine.collection<AuditDoc>(AUDIT_TYPE).find({}, { sort: { seq: 1 } });
    expect(old).toHaveLength(2);
    await engine.close();

    const h = await startHarness({ DATA_DIR: dir });
    try {
      expect(await engineCount(h.ctx.store.backend)).toBe(0);
      const r = await h.request.get(`/fhir/AuditEvent?entity=Patient/p1&_sort=_lastUpdated`).expect(200);
      const ids = ((r.body as Bundle).entry ?? []).map((x) => x.resource?.id);
      expect(ids).toEqual(old.map((d) => d._id));
      await h.request.get(`/fhir/AuditEvent/${old[0]?._id}/_history/1`).expect(200);
      const v = await h.request.post('/fhir/AuditEvent/$verify').expect(200);
      expect(v.body.parameter[0]).toEqual({ name: 'result', valueBoolean: true });
    } finally {
      await h.ctx.store.backend.close();
    }
    // Once moved, a restart moves nothing again.
    const h2 = await startHarness({ DATA_DIR: dir });
    try {
      const all = await h2.request.get('/fhir/AuditEvent?_summary=count').expect(200);
      // The two moved ones, the search, the history read and $verify of the first run.
      expect(all.body.total).toBe(5);
    } finally {
      await h2.ctx.store.backend.close();
    }
  });
});

async function engineCount(backend: unknown): Promise<number> {
  const base = (backend as { base: EmbeddedBackend }).base;
  return base.collection(AUDIT_TYPE).countDocuments({});
}
