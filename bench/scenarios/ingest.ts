import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { expectStatus } from '../lib/http-client';
import { type PhaseResult, runConcurrently, singleRound } from '../lib/phase';
import { type Scenario, type ScenarioContext, at } from '../lib/scenario';
import { readSyntheaBundle, SYNTHEA_DIR, syntheaFiles } from '../lib/synthea';

/**
 * ingest: Synthea patient records as FHIR transactions (shared/data/synthea-blaze), over HTTP.
 *
 * providers: the two `0-*` batch Bundles (Organization, Location, Practitioner, PractitionerRole
 *   with conditional creates), one after the other: the patients refer to them by conditional
 *   references.
 * tx c=1: every other one of the first --patients transaction Bundles (default: all 120), one at
 *   a time.
 * tx c=4: the other half, four in flight. Alternating halves have alike size distributions, and every
 *   patient is loaded once (the embedded store holds everything in memory, so loading the data twice
 *   would measure a store twice as large).
 *
 * The figures are resources per second (Bundle entries, all answered 2xx); latencies are per Bundle.
 * Requests use `Prefer: return=minimal`, as a loader would. The data folder is FHIR_TEST_DATA, or
 * ../shared/data beside the repository.
 */

export interface LoadedBundle {
  name: string;
  entries: number;
  body: unknown;
}

function load(file: string): LoadedBundle {
  const body = readSyntheaBundle(file);
  return { name: path.basename(file), entries: body.entry?.length ?? 0, body };
}

async function post(
  context: ScenarioContext,
  bundles: readonly LoadedBundle[],
  c: number,
  name: string,
): Promise<PhaseResult> {
  const { client, log } = context;
  const resources = bundles.reduce((n, b) => n + b.entries, 0);
  log(`${name}: ${bundles.length} Bundles, ${resources} resources, ${c} in flight`);
  const start = performance.now();
  const timings = await runConcurrently(bundles.length, c, async (index) => {
    const b = at(bundles, index);
    const response = await client.request('POST', '', {
      body: b.body,
      headers: { prefer: 'return=minimal' },
    });
    expectStatus(response, 200, `POST ${b.name}`);
    const entries =
      (JSON.parse(response.body) as { entry?: Array<{ response?: { status?: string } }> }).entry ?? [];
    const failed = entries.filter((e) => !/^2\d\d/.test(e.response?.status ?? ''));
    if (entries.length !== b.entries || failed.length > 0)
      throw new Error(
        `${b.name}: ${failed.length} of ${b.entries} entries failed (${failed[0]?.response?.status ?? '?'})`,
      );
  });
  const seconds = (performance.now() - start) / 1000;
  log(`${name}: ${(resources / seconds).toFixed(0)} resources/s (${seconds.toFixed(1)} s)`);
  return singleRound(name, resources, seconds, timings.latenciesMs);
}

/** What loadSynthea loaded: its three phases, and the patient Bundles as sent (Synthea's urn:uuid ids). */
export interface SyntheaLoad {
  phases: PhaseResult[];
  patients: LoadedBundle[];
}

/**
 * Loads the provider Bundles, then the first --patients patient transactions (`patientsDefault` when
 * the option is absent), over HTTP: the ingest scenario, and the loading step of the scenarios that
 * need Synthea data in the store.
 */
export async function loadSynthea(
  context: ScenarioContext,
  patientsDefault = Infinity,
): Promise<SyntheaLoad> {
  if (!existsSync(SYNTHEA_DIR))
    throw new Error(`${SYNTHEA_DIR} is absent: set FHIR_TEST_DATA to the shared data folder`);
  const files = syntheaFiles();
  const providers = files.providers.map(load);
  const patients = files.patients.slice(0, context.options.patients ?? patientsDefault).map(load);
  const phases = [
    await post(context, providers, 1, 'providers'),
    await post(
      context,
      patients.filter((_, i) => i % 2 === 0),
      1,
      'tx c=1',
    ),
    await post(
      context,
      patients.filter((_, i) => i % 2 === 1),
      4,
      'tx c=4',
    ),
  ];
  return { phases, patients };
}

export const ingest: Scenario = {
  name: 'ingest',
  description:
    'Synthea transactions (shared/data/synthea-blaze) at concurrency 1 and 4; --patients N (default all 120)',
  async run(context) {
    return (await loadSynthea(context)).phases;
  },
};
