import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { HttpClient } from './http-client';
import { type PhaseResult, runConcurrently, toPhase, toRound, useServerCpuClock } from './phase';
import { readCpuMs } from './server';

/**
 * The floor: what this machine, right now, gives a trivial Express route (one small JSON answer)
 * with the same client, concurrency and request count. Figures of the FHIR server are only
 * comparable across machines and moments as ratios to it; a shared 2-CPU machine under load can
 * halve every figure.
 */
const TRIVIAL_SERVER = `
const express = require('express');
const app = express();
app.get('/floor', (req, res) => res.json({ resourceType: 'Bundle', type: 'searchset', total: 0 }));
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

export async function measureFloor(
  rootDir: string,
  requests: number,
  concurrency: number,
  rounds: number,
): Promise<PhaseResult> {
  const child = spawn(process.execPath, ['-e', TRIVIAL_SERVER], {
    cwd: rootDir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
    const port = Number(chunk.toString('utf8').trim());
    if (!Number.isInteger(port)) throw new Error(`the floor server did not start: ${chunk.toString()}`);
    const client = new HttpClient(new URL(`http://127.0.0.1:${port}/`), concurrency);
    const pid = child.pid ?? -1;
    useServerCpuClock(() => readCpuMs(pid));
    try {
      // Warm-up: JIT and one connection per worker.
      await runConcurrently(Math.min(requests, 1000), concurrency, async () => {
        await client.request('GET', 'floor');
      });
      const results = [];
      for (let r = 0; r < rounds; r++) {
        const timings = await runConcurrently(requests, concurrency, async () => {
          const response = await client.request('GET', 'floor');
          if (response.status !== 200) throw new Error(`floor answered ${response.status}`);
        });
        results.push(toRound(timings));
      }
      return toPhase('floor', results);
    } finally {
      useServerCpuClock(undefined);
      client.close();
    }
  } finally {
    child.kill();
  }
}
