import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseViewDefinition } from '../../src/views/definition';
import { compileView } from '../../src/views/runner';
import { RowWriter } from '../../src/views/output';
import { type PhaseResult, toPhase, toRound } from '../lib/phase';
import type { Scenario, ScenarioContext } from '../lib/scenario';
import { readSyntheaBundle, syntheaFiles } from '../lib/synthea';
import { syntheticVitalSign } from '../lib/synthetic';

/**
 * views: SQL-on-FHIR rows per second on one core, in process (the runner alone, no HTTP or store; the
 * server the runner starts is not used). The 10-column vital-signs view (fixtures/views/vital-signs.json)
 * runs over the Synthea patients' Observations (../shared/data/synthea-blaze, --patients bundles,
 * default all; synthetic vital signs when absent). Phases, each repeated --rounds times:
 * - rows: compile once, evaluate every Observation (the where plus the ten columns);
 * - csv: the same, each row also written as CSV.
 * "count" is rows produced; latency is per resource. The first pass is a warm-up and is not timed.
 */
const VIEW_FILE = path.join(__dirname, '../../fixtures/views/vital-signs.json');

function syntheaObservations(patients: number | undefined): unknown[] {
  const out: unknown[] = [];
  for (const f of syntheaFiles().patients.slice(0, patients ?? Infinity)) {
    const b = readSyntheaBundle(f);
    for (const e of b.entry ?? []) if (e.resource?.resourceType === 'Observation') out.push(e.resource);
  }
  return out;
}

function phase(name: string, resources: unknown[], rounds: number, csv: boolean): PhaseResult {
  const view = compileView(parseViewDefinition(JSON.parse(fs.readFileSync(VIEW_FILE, 'utf8'))));
  for (const r of resources) view.rows(r);
  const results = [];
  for (let round = 0; round < rounds; round++) {
    const latenciesMs = new Array<number>(resources.length);
    const writer = new RowWriter('csv', view.columns);
    let count = 0;
    const start = performance.now();
    for (const [i, r] of resources.entries()) {
      const t = performance.now();
      const rows = view.rows(r);
      if (csv) for (const row of rows) writer.write(row);
      count += rows.length;
      latenciesMs[i] = performance.now() - t;
    }
    if (csv) writer.finish();
    const seconds = (performance.now() - start) / 1000;
    const round_ = toRound({ seconds, latenciesMs });
    // Throughput in rows, not resources.
    results.push({ ...round_, count, perSecond: count / seconds });
  }
  return toPhase(name, results);
}

export const viewsScenario: Scenario = {
  name: 'views',
  description: 'SQL-on-FHIR ViewDefinition rows/s (10-column vital-signs view), one core, in process',
  async run({ options, random, log }: ScenarioContext): Promise<PhaseResult[]> {
    let data = syntheaObservations(options.patients);
    let source = 'synthea-blaze';
    if (data.length === 0) {
      data = Array.from({ length: options.n }, (_, i) =>
        syntheticVitalSign(random, { reference: `Patient/p${i % 100}` }),
      );
      source = 'synthetic';
    }
    log(`views: ${data.length} Observations from ${source}`);
    return Promise.resolve([
      phase('rows', data, options.rounds, false),
      phase('rows+csv', data, options.rounds, true),
    ]);
  },
};
