import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnServer, type RunningServer } from '../process';
import {
  createCounters,
  makeClient,
  newLedger,
  newStats,
  runLoad,
  sampleRss,
  summarize,
  verifyLedger,
  type Client,
} from './load-driver';

/**
 * `npm run test:load`: the real server in a child process under many concurrent clients, then under
 * SIGKILL at random moments. Bounded by environment variables (defaults in brackets):
 * LOAD_SECONDS [20], LOAD_CLIENTS [32], LOAD_KILL_ROUNDS [4], LOAD_REQUEST_TIMEOUT_MS [15000],
 * LOAD_RESTART_LIMIT_MS [30000], LOAD_RSS_GROWTH [2] (second-half over first-half mean RSS).
 */
const num = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};
const SECONDS = num('LOAD_SECONDS', 20);
const CLIENTS = num('LOAD_CLIENTS', 32);
const KILL_ROUNDS = num('LOAD_KILL_ROUNDS', 4);
const REQUEST_TIMEOUT_MS = num('LOAD_REQUEST_TIMEOUT_MS', 15_000);
const RESTART_LIMIT_MS = num('LOAD_RESTART_LIMIT_MS', 30_000);
const RSS_GROWTH = num('LOAD_RSS_GROWTH', 2);

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

let dataDir: string;
let client: Client;
beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-load-'));
  client = makeClient(CLIENTS + 4, REQUEST_TIMEOUT_MS);
});
afterAll(() => {
  client.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function stopServer(server: RunningServer): Promise<void> {
  server.child.kill('SIGTERM');
  expect(await server.exited).toBe(0);
}

test(`${CLIENTS} clients for ${SECONDS} s: nothing lost, no update lost, nothing hung, memory bounded`, async () => {
  const server = await spawnServer({ DATA_DIR: dataDir });
  try {
    const ledger = newLedger();
    const stats = newStats();
    const counters = await createCounters(client, server.baseUrl, 4, ledger);
    const rss = sampleRss(server.child.pid ?? 0, 250);
    const t0 = performance.now();
    await runLoad(
      client,
      server.baseUrl,
      { clients: CLIENTS, until: delay(SECONDS * 1000), counters, killed: () => false },
      ledger,
      stats,
    );
    const elapsed = (performance.now() - t0) / 1000;
    const samples = rss.stop();
    const half = Math.floor(samples.length / 2);
    const first = mean(samples.slice(0, half));
    const second = mean(samples.slice(half));
    const t1 = performance.now();
    const verified = await verifyLedger(client, server.baseUrl, ledger);
    console.log(
      [
        `load: ${CLIENTS} clients, ${elapsed.toFixed(1)} s`,
        summarize(stats, elapsed),
        `  RSS start ${Math.round((samples[0] ?? 0) / 1024)} MB, end ${Math.round((samples.at(-1) ?? 0) / 1024)} MB, ` +
          `mean first half ${Math.round(first / 1024)} MB, second half ${Math.round(second / 1024)} MB`,
        `  verified ${verified.resources} resources (${verified.versions} versions), ${verified.transactions} transactions, ` +
          `${verified.auditChecked} audit checks in ${((performance.now() - t1) / 1000).toFixed(1)} s`,
      ].join('\n'),
    );
    expect(stats.unexpected).toEqual([]);
    expect(stats.timeouts).toBe(0);
    expect(verified.problems).toEqual([]);
    for (const [id, n] of ledger.increments) {
      // Without a kill no answer is lost: the counter is exactly the acknowledged increments.
      expect(ledger.inDoubt.get(id)).toBe(0);
      expect(n).toBeGreaterThan(0);
    }
    expect(stats.count.transaction).toBeGreaterThan(0);
    expect(samples.length).toBeGreaterThan(4);
    expect(second).toBeLessThan(first * RSS_GROWTH);
  } finally {
    await stopServer(server);
  }
});

test(`SIGKILL at random moments under load, ${KILL_ROUNDS} rounds: every acknowledged write survives with history and audit`, async () => {
  const ledger = newLedger();
  const stats = newStats();
  let counters: string[] = [];
  const restarts: number[] = [];
  let loadSeconds = 0;
  for (let round = 0; round < KILL_ROUNDS; round++) {
    const t0 = performance.now();
    const server = await spawnServer({ DATA_DIR: dataDir });
    restarts.push(performance.now() - t0);
    if (round === 0) counters = await createCounters(client, server.baseUrl, 4, ledger);
    let killed = false;
    // A random moment between 0.3 and 3 s into the load.
    const killAt = delay(300 + Math.floor(Math.random() * 2700)).then(() => {
      killed = true;
      server.child.kill('SIGKILL');
    });
    const l0 = performance.now();
    await runLoad(
      client,
      server.baseUrl,
      { clients: CLIENTS, until: killAt, counters, killed: () => killed },
      ledger,
      stats,
    );
    loadSeconds += (performance.now() - l0) / 1000;
    await server.exited;
  }
  const t0 = performance.now();
  const server = await spawnServer({ DATA_DIR: dataDir });
  restarts.push(performance.now() - t0);
  try {
    const verified = await verifyLedger(client, server.baseUrl, ledger);
    const inDoubt = [...ledger.inDoubt.values()].reduce((a, b) => a + b, 0);
    const unacked = [...ledger.transactions.values()].filter((x) => !x).length;
    console.log(
      [
        `crash: ${KILL_ROUNDS} SIGKILLs under ${CLIENTS} clients`,
        summarize(stats, loadSeconds),
        `  restart (spawn to listening) ms: ${restarts.map((x) => Math.round(x)).join(', ')}`,
        `  verified ${verified.resources} resources (${verified.versions} versions), ${verified.transactions} transactions ` +
          `(${unacked} unacknowledged, each whole or absent), ${inDoubt} increments in doubt, ${verified.auditChecked} audit checks`,
      ].join('\n'),
    );
    expect(stats.unexpected).toEqual([]);
    expect(verified.problems).toEqual([]);
    expect(verified.resources).toBeGreaterThan(10);
    for (const ms of restarts) expect(ms).toBeLessThan(RESTART_LIMIT_MS);
  } finally {
    await stopServer(server);
  }
});
