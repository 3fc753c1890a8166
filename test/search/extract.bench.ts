/**
 * Extraction speed on Synthea transaction Bundles (not part of the test command):
 *   npx tsx test/search/extract.bench.ts [files=3]
 * Prints microseconds per resource (median of 5 passes) and the slowest parameters' types.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Bundle, Resource } from 'fhir/r4';
import { loadDefinitions } from '../../src/fhir/definitions';
import { IndexExtractor } from '../../src/search/extract';

const DIR = '/work/shared/data/synthea-blaze';
const files = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.json.gz') && !f.startsWith('0-'))
  .sort()
  .slice(0, Number(process.argv[2] ?? 3));
const resources: Resource[] = [];
for (const f of files) {
  const bundle = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(DIR, f))).toString('utf8')) as Bundle;
  for (const e of bundle.entry ?? []) if (e.resource) resources.push(e.resource);
}
const { registry } = loadDefinitions();
let errors = 0;
const configs = [
  { fullText: true, fastPaths: true },
  { fullText: false, fastPaths: true },
  { fullText: false, fastPaths: false },
];
for (const { fullText, fastPaths } of configs) {
  const extractor = new IndexExtractor(registry, { fullText, fastPaths, onError: () => errors++ });
  for (const r of resources) extractor.extract(r); // warm-up: compiles every expression once
  const times: number[] = [];
  for (let pass = 0; pass < 5; pass++) {
    const t0 = process.hrtime.bigint();
    for (const r of resources) extractor.extract(r);
    times.push(Number(process.hrtime.bigint() - t0) / 1000 / resources.length);
  }
  times.sort((a, b) => a - b);
  console.log(
    `${resources.length} resources from ${files.length} bundles, fullText=${fullText} fastPaths=${fastPaths}: median ${times[2]?.toFixed(1)} us/resource (errors: ${errors})`,
  );
}
