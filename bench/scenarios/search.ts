import { expectStatus } from '../lib/http-client';
import { type PhaseResult, runConcurrently, toPhase, toRound } from '../lib/phase';
import { type Scenario, type ScenarioContext, at } from '../lib/scenario';
import { type LoadedBundle, loadSynthea } from './ingest';

/**
 * search: loads --patients Synthea patients (default 100, about 50k resources; the ingest scenario's
 * loading, whose phases are reported too), then runs clinicians' searches at concurrency 8, each kind
 * --n / 5 requests per round (default 2000), --rounds times (median reported):
 *
 * token       Observation?code=http://loinc.org|<one of the 5 most common codes>&_count=20
 * reference   Observation?subject=Patient/<random patient>&_count=20
 * identifier  Patient?identifier=<MRN system>|<random patient's MRN>
 * date        Observation?subject=Patient/<random patient>&date=ge2015-01-01&date=lt2020-01-01&_count=20
 * condition   Condition?code=http://snomed.info/sct|<one of the 5 most common codes>&_count=20
 *
 * `--kinds reference,date` runs only those (each then gets --n / their number requests).
 *
 * Searches do not change the store (but for their AuditEvents, under AUDIT=on), so every round
 * measures the same thing. Every answer must be 200 with a searchset Bundle; the log shows how many
 * entries each kind returned on average.
 */

const CONCURRENCY = 8;
const DEFAULT_PATIENTS = 100;
const MRN_SYSTEM = 'http://hospital.smarthealthit.org';
const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';

interface RawResource {
  resourceType?: string;
  identifier?: Array<{ system?: string; value?: string }>;
  code?: { coding?: Array<{ system?: string; code?: string }> };
}

function resources(bundles: readonly LoadedBundle[]): RawResource[] {
  return bundles.flatMap((b) =>
    ((b.body as { entry?: Array<{ resource?: RawResource }> }).entry ?? []).flatMap((e) =>
      e.resource ? [e.resource] : [],
    ),
  );
}

/** The `n` codes of `system` most used by resources of `type`, most used first. */
function commonCodes(all: readonly RawResource[], type: string, system: string, n: number): string[] {
  const counts = new Map<string, number>();
  for (const r of all) {
    if (r.resourceType !== type) continue;
    for (const c of r.code?.coding ?? [])
      if (c.system === system && c.code) counts.set(c.code, (counts.get(c.code) ?? 0) + 1);
  }
  const codes = [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([code]) => code);
  if (codes.length === 0) throw new Error(`no ${type} coded in ${system}`);
  return codes;
}

interface LoadedPatient {
  id: string;
  mrn: string;
}

/** Each loaded patient's MRN, and its server id (found by that MRN). */
async function findPatients(context: ScenarioContext, all: readonly RawResource[]): Promise<LoadedPatient[]> {
  const mrns = all
    .filter((r) => r.resourceType === 'Patient')
    .map((p) => p.identifier?.find((i) => i.system === MRN_SYSTEM)?.value)
    .filter((v): v is string => v !== undefined);
  const found: LoadedPatient[] = [];
  for (const mrn of mrns) {
    const response = expectStatus(
      await context.client.request('GET', `Patient?identifier=${encodeURIComponent(`${MRN_SYSTEM}|${mrn}`)}`),
      200,
      `Patient by MRN ${mrn}`,
    );
    const id = (JSON.parse(response.body) as { entry?: Array<{ resource?: { id?: string } }> }).entry?.[0]
      ?.resource?.id;
    if (!id) throw new Error(`Patient with MRN ${mrn} not found after loading`);
    found.push({ id, mrn });
  }
  if (found.length === 0) throw new Error('no Patient loaded');
  return found;
}

interface Kind {
  name: string;
  query(index: number): string;
}

async function runKind(context: ScenarioContext, kind: Kind, requests: number): Promise<PhaseResult> {
  const { client, options, log } = context;
  const rounds = [];
  let entries = 0;
  for (let round = 0; round < options.rounds; round++) {
    entries = 0;
    const timings = await runConcurrently(requests, CONCURRENCY, async (index) => {
      const query = kind.query(index);
      const response = expectStatus(await client.request('GET', query), 200, `GET ${query}`);
      const bundle = JSON.parse(response.body) as { resourceType?: string; type?: string; entry?: unknown[] };
      if (bundle.resourceType !== 'Bundle' || bundle.type !== 'searchset')
        throw new Error(`GET ${query}: not a searchset Bundle`);
      entries += bundle.entry?.length ?? 0;
    });
    rounds.push(toRound(timings));
  }
  const phase = toPhase(kind.name, rounds);
  log(
    `${kind.name}: ${phase.perSecond.toFixed(0)} req/s, p50 ${phase.medianMs.toFixed(2)} ms, ` +
      `p99 ${phase.p99Ms.toFixed(2)} ms, ${(entries / requests).toFixed(1)} entries per answer`,
  );
  return phase;
}

export const searchScenario: Scenario = {
  name: 'search',
  description: `Synthea patients (--patients N, default ${DEFAULT_PATIENTS}), then 5 kinds of search at concurrency ${CONCURRENCY}, --n/5 requests each`,
  async run(context) {
    const loaded = await loadSynthea(context, DEFAULT_PATIENTS);
    const all = resources(loaded.patients);
    const loinc = commonCodes(all, 'Observation', LOINC, 5);
    const snomed = commonCodes(all, 'Condition', SNOMED, 5);
    const patients = await findPatients(context, all);
    context.log(`${patients.length} patients; LOINC ${loinc.join(', ')}; SNOMED ${snomed.join(', ')}`);
    const { random } = context;
    const somePatient = (): LoadedPatient => random.pick(patients);
    const token = (system: string, code: string): string => encodeURIComponent(`${system}|${code}`);
    const kinds: Kind[] = [
      {
        name: 'token',
        query: (i) => `Observation?code=${token(LOINC, at(loinc, i % loinc.length))}&_count=20`,
      },
      { name: 'reference', query: () => `Observation?subject=Patient/${somePatient().id}&_count=20` },
      {
        name: 'identifier',
        query: () => `Patient?identifier=${token(MRN_SYSTEM, somePatient().mrn)}`,
      },
      {
        name: 'date',
        query: () =>
          `Observation?subject=Patient/${somePatient().id}&date=ge2015-01-01&date=lt2020-01-01&_count=20`,
      },
      {
        name: 'condition',
        query: (i) => `Condition?code=${token(SNOMED, at(snomed, i % snomed.length))}&_count=20`,
      },
    ];
    const wanted = context.options.kinds;
    const unknown = wanted?.filter((k) => !kinds.some((kind) => kind.name === k)) ?? [];
    if (unknown.length > 0) throw new Error(`unknown search kinds: ${unknown.join(', ')}`);
    const chosen = wanted ? kinds.filter((k) => wanted.includes(k.name)) : kinds;
    const requests = Math.max(1, Math.ceil(context.options.n / chosen.length));
    const phases = [...loaded.phases];
    for (const kind of chosen) phases.push(await runKind(context, kind, requests));
    return phases;
  },
};
