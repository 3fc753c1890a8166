import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, spawnServer } from '../process';

/**
 * kill -9 in the middle of a stream of writes: every write that was acknowledged before the kill
 * is there after a restart, with its version. Runs the real server in a child process.
 */
describe('crash durability of the embedded store', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-crash-'));
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  test('acknowledged creates and updates survive SIGKILL, over several rounds', async () => {
    /** id -> highest acknowledged versionId */
    const acked = new Map<string, number>();
    for (let round = 0; round < 3; round++) {
      const server = await spawnServer({ DATA_DIR: dataDir });
      // Everything acknowledged in earlier rounds is still there.
      for (const [id, v] of acked) {
        const r = await httpRequest('GET', `${server.baseUrl}/Patient/${id}`);
        expect(r.status).toBe(200);
        expect(
          Number((JSON.parse(r.body) as { meta: { versionId: string } }).meta.versionId),
        ).toBeGreaterThanOrEqual(v);
      }
      let stop = false;
      const worker = async (w: number): Promise<void> => {
        let mine: string | undefined;
        for (let i = 0; !stop; i++) {
          try {
            if (!mine || i % 3 === 0) {
              const r = await httpRequest('POST', `${server.baseUrl}/Patient`, {
                resourceType: 'Patient',
                name: [{ family: `Round${round}`, given: [`w${w}-${i}`] }],
              });
              if (r.status === 201) {
                mine = (JSON.parse(r.body) as { id: string }).id;
                acked.set(mine, 1);
              }
            } else {
              const r = await httpRequest('PUT', `${server.baseUrl}/Patient/${mine}`, {
                resourceType: 'Patient',
                id: mine,
                name: [{ family: `Round${round}`, given: [`w${w}-${i}`] }],
              });
              if (r.status === 200)
                acked.set(
                  mine,
                  Number((JSON.parse(r.body) as { meta: { versionId: string } }).meta.versionId),
                );
            }
          } catch {
            return; // the server is gone
          }
        }
      };
      const workers = Array.from({ length: 8 }, (_, w) => worker(w));
      await new Promise((r) => setTimeout(r, 400 + Math.floor(Math.random() * 600)));
      server.child.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);
      await server.exited;
    }
    expect(acked.size).toBeGreaterThan(10);
    const server = await spawnServer({ DATA_DIR: dataDir });
    try {
      for (const [id, v] of acked) {
        const r = await httpRequest('GET', `${server.baseUrl}/Patient/${id}`);
        expect(r.status).toBe(200);
        const versionId = Number((JSON.parse(r.body) as { meta: { versionId: string } }).meta.versionId);
        expect(versionId).toBeGreaterThanOrEqual(v);
        const hist = await httpRequest('GET', `${server.baseUrl}/Patient/${id}/_history`);
        expect((JSON.parse(hist.body) as { total: number }).total).toBe(versionId);
      }
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  }, 120_000);
});

describe('graceful shutdown', () => {
  test('SIGTERM finishes, flushes the store and exits 0; data is there after restart', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-term-'));
    try {
      const s1 = await spawnServer({ DATA_DIR: dataDir });
      const r = await httpRequest('POST', `${s1.baseUrl}/Patient`, {
        resourceType: 'Patient',
        gender: 'male',
      });
      expect(r.status).toBe(201);
      const id = (JSON.parse(r.body) as { id: string }).id;
      s1.child.kill('SIGTERM');
      expect(await s1.exited).toBe(0);
      expect(fs.existsSync(path.join(dataDir, 'LOCK'))).toBe(false);
      const s2 = await spawnServer({ DATA_DIR: dataDir });
      expect((await httpRequest('GET', `${s2.baseUrl}/Patient/${id}`)).status).toBe(200);
      s2.child.kill('SIGTERM');
      expect(await s2.exited).toBe(0);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  test('a bad configuration value stops the start with one clear line', async () => {
    await expect(spawnServer({ PORT: 'eighty' })).rejects.toThrow(
      /configuration error: PORT must be an integer/,
    );
  }, 30_000);
});
