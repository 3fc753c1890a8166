import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectStatus, header } from '../lib/http-client';
import { type PhaseResult, singleRound } from '../lib/phase';
import type { Scenario, ScenarioContext } from '../lib/scenario';
import { ingest } from './ingest';

/**
 * export: loads the Synthea patients (the ingest scenario, --patients N), then runs a system level
 * bulk export and a de-identified one (`_deidentify=safe-harbor`), each from kick-off to the
 * manifest, and reports resources/s. While the first export runs, one client reads a Patient in a
 * loop: its latencies show whether the background job starves interactive requests (compare with
 * the `read idle` phase, the same reads with no export running).
 */

interface Manifest {
  output: Array<{ type: string; url: string; count: number }>;
}

async function reads(
  context: ScenarioContext,
  id: string,
  until: () => boolean,
  min: number,
): Promise<number[]> {
  const latencies: number[] = [];
  while (!until() || latencies.length < min) {
    const t = performance.now();
    expectStatus(await context.client.request('GET', `Patient/${id}`), 200, 'read');
    latencies.push(performance.now() - t);
  }
  return latencies;
}

function phase(name: string, count: number, seconds: number, latenciesMs: number[]): PhaseResult {
  return singleRound(name, count, seconds, latenciesMs.length > 0 ? latenciesMs : [0]);
}

async function runExport(
  context: ScenarioContext,
  query: string,
  name: string,
  readId?: string,
): Promise<PhaseResult[]> {
  const { client, log } = context;
  const start = performance.now();
  const kick = expectStatus(
    await client.request('GET', `$export${query}`, { headers: { prefer: 'respond-async' } }),
    202,
    'kick-off',
  );
  const statusPath = new URL(header(kick, 'content-location') as string).pathname.replace(/^\/fhir\//, '');
  let done = false;
  const reading = readId ? reads(context, readId, () => done, 1) : Promise.resolve([]);
  let status = await client.request('GET', statusPath);
  while (status.status === 202) {
    await sleep(20);
    status = await client.request('GET', statusPath);
  }
  const seconds = (performance.now() - start) / 1000;
  done = true;
  expectStatus(status, 200, 'status');
  const manifest = JSON.parse(status.body) as Manifest;
  const count = manifest.output.reduce((n, o) => n + o.count, 0);
  log(`${name}: ${count} resources in ${seconds.toFixed(1)} s, ${(count / seconds).toFixed(0)} resources/s`);
  const out = [phase(name, count, seconds, [seconds * 1000])];
  const latencies = await reading;
  if (readId) out.push(phase('read during export', latencies.length, seconds, latencies));
  await client.request('DELETE', statusPath);
  return out;
}

export const exportScenario: Scenario = {
  name: 'export',
  description: 'bulk export of the Synthea patients (plain and _deidentify=safe-harbor); --patients N',
  async run(context) {
    const loaded = await ingest.run(context);
    const search = expectStatus(await context.client.request('GET', 'Patient?_count=1'), 200, 'search');
    const id = (JSON.parse(search.body) as { entry: Array<{ resource: { id: string } }> }).entry[0]?.resource
      .id;
    if (!id) throw new Error('no Patient loaded');
    const t = performance.now();
    const idle = await reads(context, id, () => performance.now() - t > 2000, 50);
    const idlePhase = phase('read idle', idle.length, (performance.now() - t) / 1000, idle);
    return [
      ...loaded,
      idlePhase,
      ...(await runExport(context, '', 'export', id)),
      ...(await runExport(context, '?_deidentify=safe-harbor', 'export deid')),
    ];
  },
};
