import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Bundle } from 'fhir/r4';

/** The shared data folder: FHIR_TEST_DATA, or ../shared/data beside the repository. */
export const SHARED_DATA_DIR = path.resolve(
  process.env.FHIR_TEST_DATA ?? path.join(__dirname, '../../../shared/data'),
);

/** Synthea's Bundles (gzipped JSON): `0-*` provider batches, then one transaction per patient. */
export const SYNTHEA_DIR = path.join(SHARED_DATA_DIR, 'synthea-blaze');

/** The Synthea Bundle files (full paths, sorted by name); both lists empty when the folder is absent. */
export function syntheaFiles(): { providers: string[]; patients: string[] } {
  if (!existsSync(SYNTHEA_DIR)) return { providers: [], patients: [] };
  const files = readdirSync(SYNTHEA_DIR)
    .filter((f) => f.endsWith('.json.gz'))
    .sort();
  const full = (f: string): string => path.join(SYNTHEA_DIR, f);
  return {
    providers: files.filter((f) => f.startsWith('0-')).map(full),
    patients: files.filter((f) => !f.startsWith('0-')).map(full),
  };
}

export function readSyntheaBundle(file: string): Bundle {
  return JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as Bundle;
}
