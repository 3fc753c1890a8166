import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Bundle } from 'fhir/r4';
import { IndexExtractor } from '../../src/search/extract';
import { registry } from './helpers';

const DIR = '/work/shared/data/synthea-blaze';
const file = fs.existsSync(DIR)
  ? fs
      .readdirSync(DIR)
      .filter((f) => f.endsWith('.json.gz') && !f.startsWith('0-'))
      .sort()[0]
  : undefined;

if (!file) {
  console.log(`Synthea extraction test skipped: no Bundles in ${DIR}`);
}

(file ? describe : describe.skip)('extraction over a Synthea Bundle', () => {
  // Read and unzipped once for both tests.
  let bundle: Bundle;
  beforeAll(() => {
    bundle = JSON.parse(
      zlib.gunzipSync(fs.readFileSync(path.join(DIR, file ?? ''))).toString('utf8'),
    ) as Bundle;
  });

  it('extracts every resource without throwing or failing a parameter', () => {
    const failures: string[] = [];
    const extractor = new IndexExtractor(registry, {
      onError: (t, c, e) => failures.push(`${t}.${c}: ${String(e)}`),
    });
    let count = 0;
    for (const entry of bundle.entry ?? []) {
      if (!entry.resource) continue;
      const idx = extractor.extract(entry.resource);
      expect(typeof idx).toBe('object');
      count++;
    }
    expect(count).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  });

  it('the fast path evaluator gives the same index as fhirpath', () => {
    const fast = new IndexExtractor(registry, { fastPaths: true });
    const slow = new IndexExtractor(registry, { fastPaths: false });
    const differences: string[] = [];
    for (const entry of bundle.entry ?? []) {
      if (!entry.resource) continue;
      const a = fast.extract(entry.resource);
      const b = slow.extract(entry.resource);
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (JSON.stringify(a[k]) !== JSON.stringify(b[k]))
          differences.push(`${entry.resource.resourceType}.${k}`);
      }
    }
    expect([...new Set(differences)]).toEqual([]);
  });
});
