import fs from 'node:fs';
import { JournalWriter } from '../../src/store/embedded/journal';
import { engineOf, FHIR_JSON, patient, startHarness } from '../api/harness';

/**
 * A DATA_DIR that refuses writes, then accepts them again; afterwards a restart on the same DATA_DIR
 * recovers exactly what was acknowledged (the failed writes left nothing in the journal).
 *
 * How the refusal is made: chmod cannot do it. The journal is opened once, and an open file
 * descriptor stays writable after `chmod a-w` (and this suite may run as root, where chmod stops
 * nothing at all); remounting read-only needs privileges CI does not have. So, like
 * test/api/disk-full.test.ts, the engine's journal is swapped for one on /dev/full, whose writes fail
 * (ENOSPC) exactly as writes on a read-only or full file system fail (EROFS/ENOSPC): the store maps any
 * failed journal write to 503.
 */
type WithJournal = { journal: JournalWriter };

const haveDevFull = fs.existsSync('/dev/full');
const d = haveDevFull ? describe : describe.skip;
if (!haveDevFull) console.log('/dev/full not available: skipping read-only DATA_DIR tests');

d('a DATA_DIR that refuses writes', () => {
  test('writes are 503, reads go on, writes work again, and a restart recovers exactly what was acknowledged', async () => {
    // AUDIT=off: with the audit trail on, every answer (reads too) waits for its durable AuditEvent,
    // so while the disk refuses writes every request is 503 (test/api/audit-durability.test.ts).
    const h = await startHarness({ AUDIT: 'off' });
    try {
      const created = await h.request
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify(patient()));
      expect(created.status).toBe(201);
      const id = created.body.id as string;

      const engine = engineOf(h.ctx) as unknown as WithJournal;
      const real = engine.journal;
      engine.journal = await JournalWriter.open('/dev/full');
      try {
        const refused = [
          await h.request
            .post('/fhir/Patient')
            .set('Content-Type', FHIR_JSON)
            .send(JSON.stringify(patient())),
          await h.request
            .put(`/fhir/Patient/${id}`)
            .set('Content-Type', FHIR_JSON)
            .send(JSON.stringify({ ...created.body, gender: 'other' })),
          await h.request
            .post('/fhir')
            .set('Content-Type', FHIR_JSON)
            .send(
              JSON.stringify({
                resourceType: 'Bundle',
                type: 'transaction',
                entry: [{ resource: patient(), request: { method: 'POST', url: 'Patient' } }],
              }),
            ),
        ];
        for (const r of refused) {
          expect(r.status).toBe(503);
          expect(r.body.resourceType).toBe('OperationOutcome');
        }
        const read = await h.request.get(`/fhir/Patient/${id}`);
        expect(read.status).toBe(200);
        expect(read.body.meta.versionId).toBe('1');
        expect((await h.request.get('/fhir/Patient?_summary=count')).body.total).toBe(1);
      } finally {
        await engine.journal.close().catch(() => undefined);
        engine.journal = real;
      }
      const again = await h.request
        .put(`/fhir/Patient/${id}`)
        .set('Content-Type', FHIR_JSON)
        .send(JSON.stringify({ ...created.body, gender: 'male' }));
      expect(again.status).toBe(200);
      expect(again.body.meta.versionId).toBe('2');
      await h.ctx.store.backend.close();

      // Restart on the same DATA_DIR: the journal replays to exactly the acknowledged state.
      const restarted = await startHarness({ AUDIT: 'off', DATA_DIR: h.dataDir });
      try {
        const { request } = restarted;
        const back = await request.get(`/fhir/Patient/${id}`);
        expect(back.body.meta.versionId).toBe('2');
        expect(back.body.gender).toBe('male');
        expect((await request.get(`/fhir/Patient/${id}/_history`)).body.total).toBe(2);
        expect((await request.get('/fhir/Patient?_summary=count')).body.total).toBe(1);
      } finally {
        await restarted.close();
      }
    } finally {
      fs.rmSync(h.dataDir, { recursive: true, force: true });
    }
  });
});
