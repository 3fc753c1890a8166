import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditEvent, Bundle } from 'fhir/r4';
import { AUDIT_TYPE, type AuditDoc } from '../../src/audit/documents';
import { AuditLogRecorder } from '../../src/audit/recorder';
import { JournalWriter } from '../../src/store/embedded/journal';
import { httpRequest, spawnServer } from '../process';
import { FHIR_JSON, patient, startHarness, type Harness } from './harness';

/** Test seam: the audit log file's writer is private; swapped for one on /dev/full (ENOSPC). */
type WithWriter = { log: { log: { writer: JournalWriter } } };

describe('no request is acknowledged before its AuditEvent is durable', () => {
  let dataDir: string;
  let afterCleanup: () => void = () => undefined;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-audit-crash-'));
  });
  afterEach(() => {
    afterCleanup();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the AuditEvents of acknowledged requests survive kill -9 and the chain verifies', async () => {
    const env = { DATA_DIR: dataDir, PROFILES_DIR: path.join(dataDir, 'profiles') };
    const first = await spawnServer(env);
    afterCleanup = () => first.child.kill('SIGKILL');
    const created = await httpRequest('POST', `${first.baseUrl}/Patient`, patient());
    expect(created.status).toBe(201);
    const id = (JSON.parse(created.body) as { id: string }).id;
    const acknowledged: string[] = [];
    // Concurrent reads share audit writes; each one answered must be in the log after the crash.
    const reads = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        httpRequest('GET', `${first.baseUrl}/Patient/${id}`, undefined, {
          'x-request-id': `crash-read-${i}`,
        }),
      ),
    );
    for (const [i, r] of reads.entries()) if (r.status === 200) acknowledged.push(`crash-read-${i}`);
    expect(acknowledged).toHaveLength(20);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await spawnServer(env);
    try {
      const r = await httpRequest(
        'GET',
        `${second.baseUrl}/AuditEvent?entity=Patient/${id}&subtype=read&_count=100`,
      );
      expect(r.status).toBe(200);
      const events = ((JSON.parse(r.body) as Bundle).entry ?? []).map((e) => e.resource as AuditEvent);
      const ids = events.map(
        (e) => e.entity?.find((x) => x.type?.code === 'XrequestId')?.what?.identifier?.value,
      );
      expect(ids.sort()).toEqual([...acknowledged].sort());
      const v = await httpRequest('POST', `${second.baseUrl}/AuditEvent/$verify`);
      expect((JSON.parse(v.body) as { parameter: unknown[] }).parameter[0]).toEqual({
        name: 'result',
        valueBoolean: true,
      });
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  }, 60_000);
});

const haveDevFull = fs.existsSync('/dev/full');
const d = haveDevFull ? describe : describe.skip;
if (!haveDevFull) console.log('/dev/full not available: skipping the audit disk-full test');

d('when the audit record cannot be made durable', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h.close());

  test('a read is answered 503 with an OperationOutcome instead of the resource, and works again after', async () => {
    const ok = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    expect(ok.status).toBe(201);
    expect(h.ctx.audit).toBeInstanceOf(AuditLogRecorder);
    const file = (h.ctx.audit as unknown as WithWriter).log.log;
    const real = file.writer;
    const before = await h.ctx.store.backend.collection<AuditDoc>(AUDIT_TYPE).countDocuments({});
    file.writer = await JournalWriter.open('/dev/full');
    try {
      const r = await h.request.get(`/fhir/Patient/${ok.body.id}`).set('X-Request-Id', 'refused-1');
      expect(r.status).toBe(503);
      expect(r.body.resourceType).toBe('OperationOutcome');
      expect(r.headers.etag).toBeUndefined();
      expect(r.headers['x-request-id']).toBe('refused-1');
    } finally {
      await file.writer.close().catch(() => undefined);
      file.writer = real;
    }
    expect(await h.ctx.store.backend.collection<AuditDoc>(AUDIT_TYPE).countDocuments({})).toBe(before);
    const again = await h.request.get(`/fhir/Patient/${ok.body.id}`);
    expect(again.status).toBe(200);
    const v = await h.request.post('/fhir/AuditEvent/$verify');
    expect(v.body.parameter[0]).toEqual({ name: 'result', valueBoolean: true });
  });
});
