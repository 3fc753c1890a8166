import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bulkRunnerFor } from '../../src/bulk/runner';
import { httpRequest, spawnServer } from '../process';
import { patient, startHarness } from '../api/harness';
import { download, jobIdOf, put, runnerOf, type Manifest } from './helpers';

const N = 12;

describe('an export job survives a restart', () => {
  let dataDir: string;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-export-restart-'));
  });

  afterEach(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('goes on from its checkpoint, dropping output written after it, and exports each resource once', async () => {
    const env = { DATA_DIR: dataDir, BULK_CHUNK: '2', BULK_FILE_MAX_RESOURCES: '5' };
    const first = await startHarness(env);
    let chunks = 0;
    const runner = bulkRunnerFor(first.ctx, {
      afterChunk: () => {
        if (++chunks === 3) void runner.stop();
      },
    });
    for (let i = 0; i < N; i++)
      await put(first.request, { ...patient(), id: `r${String(i).padStart(2, '0')}` });
    const id = jobIdOf(await first.request.get('/fhir/$export?_type=Patient').set('Prefer', 'respond-async'));
    await runner.settled(id);
    const half = await runner.jobs.get(id);
    expect(half?.status).toBe('running');
    expect(half?.written).toBe(6);
    // What a crash between a write and its checkpoint leaves behind: a torn line and an unrecorded file.
    const dir = path.join(first.ctx.config.bulk.dir, id);
    fs.appendFileSync(
      path.join(dir, half?.files.at(-1)?.name as string),
      '{"resourceType":"Patient","id":"torn',
    );
    fs.writeFileSync(path.join(dir, 'Patient.9.ndjson'), '{}\n');
    await first.close();

    const second = await startHarness(env);
    try {
      await runnerOf(second).start();
      await runnerOf(second).settled(id);
      const status = await second.request.get(`/fhir/$export-status/${id}`);
      expect(status.status).toBe(200);
      const manifest = JSON.parse(status.text) as Manifest;
      expect(manifest.output.map((o) => o.count)).toEqual([5, 5, 2]);
      const files = await download(second.request, manifest);
      const ids = files.get('Patient')?.map((r) => r.id);
      expect(ids).toEqual(Array.from({ length: N }, (_, i) => `r${String(i).padStart(2, '0')}`));
      expect(fs.existsSync(path.join(dir, 'Patient.9.ndjson'))).toBe(false);
    } finally {
      await runnerOf(second).stop();
      await second.close();
    }
  });

  it.each(['SIGKILL', 'SIGTERM'] as const)(
    'completes after the server process gets %s during the job',
    async (signal) => {
      const env = { DATA_DIR: dataDir, BULK_CHUNK: '1', AUDIT: 'off' };
      let server = await spawnServer(env);
      try {
        const n = 150;
        for (let i = 0; i < n; i++) {
          const r = await httpRequest('PUT', `${server.baseUrl}/Patient/k${i}`, {
            ...patient(),
            id: `k${i}`,
          });
          expect(r.status).toBe(201);
        }
        const kick = await httpRequest('GET', `${server.baseUrl}/$export?_type=Patient`, undefined, {
          prefer: 'respond-async',
        });
        expect(kick.status).toBe(202);
        // BASE_URL names port 0 (PORT=0 picks a free one): talk to the port actually used.
        const statusUrl = kick.headers['content-location'] as string;
        const running = await httpRequest('GET', statusUrl.replace(/^http:\/\/[^/]+\/fhir/, server.baseUrl));
        expect(running.status).toBe(202);
        server.child.kill(signal);
        const code = await server.exited;
        // SIGTERM: a graceful stop (the job is left at its last checkpoint); SIGKILL: no say at all.
        if (signal === 'SIGTERM') expect(code).toBe(0);

        server = await spawnServer(env);
        const url = statusUrl.replace(/^http:\/\/[^/]+\/fhir/, server.baseUrl);
        let status = await httpRequest('GET', url);
        // The resumed job runs in the background; poll as a client would (without the Retry-After wait).
        while (status.status === 202) status = await httpRequest('GET', url);
        expect(status.status).toBe(200);
        const manifest = JSON.parse(status.body) as Manifest;
        let lines: string[] = [];
        for (const o of manifest.output) {
          const f = await httpRequest('GET', o.url.replace(/^http:\/\/[^/]+\/fhir/, server.baseUrl));
          lines = lines.concat(f.body.split('\n').filter((l) => l !== ''));
        }
        const ids = lines.map((l) => (JSON.parse(l) as { id: string }).id);
        expect(new Set(ids).size).toBe(n);
        expect(ids).toHaveLength(n);
      } finally {
        server.child.kill('SIGTERM');
        await server.exited;
      }
    },
    120_000,
  );
});
