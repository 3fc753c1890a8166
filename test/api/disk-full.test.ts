import fs from 'node:fs';
import { JournalWriter } from '../../src/store/embedded/journal';
import { engineOf, FHIR_JSON, patient, startHarness, type Harness } from './harness';

/** Test seam: the engine's journal is private; these tests swap it for one on /dev/full (ENOSPC). */
type WithJournal = { journal: JournalWriter };

const haveDevFull = fs.existsSync('/dev/full');
const d = haveDevFull ? describe : describe.skip;
if (!haveDevFull) console.log('/dev/full not available: skipping disk-full tests');

d('when the disk refuses writes', () => {
  let h: Harness;
  beforeAll(async () => {
    // The store's own behaviour; with AUDIT=on nothing is answered while the disk refuses the audit
    // record either (test/api/audit-durability.test.ts).
    h = await startHarness({ AUDIT: 'off' });
  });
  afterAll(async () => h.close());

  test('writes fail with 503 and an OperationOutcome, reads go on, and writes work again after', async () => {
    const ok = await h.request
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify(patient()));
    expect(ok.status).toBe(201);
    const engine = engineOf(h.ctx) as unknown as WithJournal;
    const real = engine.journal;
    engine.journal = await JournalWriter.open('/dev/full');
    try {
      const full = await h.request
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify(patient()));
      expect(full.status).toBe(503);
      expect(full.body.resourceType).toBe('OperationOutcome');
      const upd = await h.request
        .put(`/fhir/Patient/${ok.body.id}`)
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify({ ...ok.body, gender: 'male' }));
      expect(upd.status).toBe(503);
      // Nothing of the failed writes is visible.
      const read = await h.request.get(`/fhir/Patient/${ok.body.id}`);
      expect(read.status).toBe(200);
      expect(read.body.meta.versionId).toBe('1');
      expect(read.body.gender).toBe('female');
      const hist = await h.request.get(`/fhir/Patient/${ok.body.id}/_history`);
      expect(hist.body.total).toBe(1);
    } finally {
      await engine.journal.close().catch(() => undefined);
      engine.journal = real;
    }
    const again = await h.request
      .put(`/fhir/Patient/${ok.body.id}`)
      .set('Content-Type', FHIR_JSON)
      .send(JSON.stringify({ ...ok.body, gender: 'male' }));
    expect(again.status).toBe(200);
    expect(again.body.meta.versionId).toBe('2');
  });
});
