import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DefinitionsRegistry, loadCoreResources, loadProfileDir } from '../../src/fhir/definitions';
import { InstanceValidator } from '../../src/validation/validator';
import { type PhaseResult, toPhase, toRound } from '../lib/phase';
import type { Scenario, ScenarioContext } from '../lib/scenario';
import { readSyntheaBundle, SHARED_DATA_DIR, syntheaFiles } from '../lib/synthea';
import { syntheticPatient, syntheticVitalSign } from '../lib/synthetic';

/**
 * validate: resources validated per second on one core, in process (the validator alone, no HTTP;
 * the server the runner starts is not used). Phases, each repeated --rounds times:
 * - base: Synthea resources (../shared/data/synthea-blaze, else the HL7 R4 examples, else synthetic
 *   data) against their base StructureDefinitions only (meta.profile removed);
 * - core-profiles: the same resources as they are, so the core vital-signs profiles they claim apply;
 * - us-core: the US Core 7.0.0 examples against their US Core profiles (IG loaded from
 *   ../shared/data/us-core), when present.
 * n resources per phase, cycling through the data set; the first pass over the set is a warm-up
 * (compiling the element trees and invariants) and is not timed.
 */

function syntheaResources(limit: number): unknown[] {
  const out: unknown[] = [];
  for (const f of syntheaFiles().patients) {
    const b = readSyntheaBundle(f);
    for (const e of b.entry ?? []) out.push(e.resource);
    if (out.length >= limit) break;
  }
  return out;
}

function examples(dir: string): unknown[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'package.json')
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as unknown);
}

function withoutProfiles(r: unknown): unknown {
  if (typeof r !== 'object' || r === null) return r;
  const meta = (r as { meta?: Record<string, unknown> }).meta;
  if (!meta?.profile) return r;
  const { profile: _profile, ...rest } = meta;
  return { ...r, meta: rest };
}

function phase(
  name: string,
  validator: InstanceValidator,
  resources: unknown[],
  n: number,
  rounds: number,
): PhaseResult {
  for (const r of resources) validator.validate(r);
  const results = [];
  for (let round = 0; round < rounds; round++) {
    const latenciesMs = new Array<number>(n);
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      validator.validate(resources[i % resources.length]);
      latenciesMs[i] = performance.now() - t;
    }
    results.push(toRound({ seconds: (performance.now() - start) / 1000, latenciesMs }));
  }
  return toPhase(name, results);
}

export const validate: Scenario = {
  name: 'validate',
  description: 'validator throughput, one core, in process: base, core profiles, US Core',
  async run({ options, random, log }: ScenarioContext): Promise<PhaseResult[]> {
    const core = loadCoreResources();
    let data = syntheaResources(Math.min(options.n, 20_000));
    let source = 'synthea-blaze';
    if (data.length === 0) {
      data = examples(path.join(SHARED_DATA_DIR, 'hl7-r4-examples/package'));
      source = 'hl7-r4-examples';
    }
    if (data.length === 0) {
      const patients = Array.from({ length: 100 }, (_, i) => syntheticPatient(random, i));
      data = [
        ...patients,
        ...patients.map((_, i) => syntheticVitalSign(random, { reference: `Patient/${i}` })),
      ];
      source = 'synthetic';
    }
    log(`validate: ${data.length} resources from ${source}`);
    const base = new InstanceValidator(new DefinitionsRegistry(core));
    const phases = [
      phase('base', base, data.map(withoutProfiles), options.n, options.rounds),
      phase('core-profiles', base, data, options.n, options.rounds),
    ];
    const usCore = path.join(SHARED_DATA_DIR, 'us-core/hl7.fhir.us.core-7.0.0');
    if (fs.existsSync(usCore)) {
      const ig = loadProfileDir(usCore);
      const validator = new InstanceValidator(new DefinitionsRegistry([...core, ...ig.resources]));
      const usExamples = examples(path.join(usCore, 'package/example'));
      log(`validate: ${usExamples.length} US Core 7.0.0 examples`);
      phases.push(phase('us-core', validator, usExamples, options.n, options.rounds));
    } else {
      log(`validate: ${usCore} not found, skipping the us-core phase`);
    }
    return phases;
  },
};
