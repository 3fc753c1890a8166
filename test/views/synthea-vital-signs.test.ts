import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Bundle, Observation } from 'fhir/r4';
import { parseViewDefinition } from '../../src/views/definition';
import { compileView, type Row } from '../../src/views/runner';

/**
 * The vital-signs view (fixtures/views/vital-signs.json) flattens the Synthea patients' vital signs
 * into one table; a few rows are checked against the raw Bundles.
 */
const DIR = path.resolve(
  process.env.FHIR_TEST_DATA ?? path.join(__dirname, '../../../shared/data'),
  'synthea-blaze',
);
const VIEW = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../../fixtures/views/vital-signs.json'), 'utf8'),
) as unknown;
const present = fs.existsSync(DIR);
if (!present) console.log(`Synthea vital-signs view test skipped: ${DIR} is absent`);

const VITAL = 'http://terminology.hl7.org/CodeSystem/observation-category';

function bundles(n: number): Bundle[] {
  return fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith('.json.gz') && !f.startsWith('0-'))
    .sort()
    .slice(0, n)
    .map((f) => JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(DIR, f))).toString('utf8')) as Bundle);
}

(present ? describe : describe.skip)('Synthea vital signs as one table', () => {
  const data = present ? bundles(3) : [];
  const resources = data.flatMap((b) => (b.entry ?? []).map((e) => e.resource));
  const view = compileView(parseViewDefinition(VIEW));
  const rows: Row[] = resources.flatMap((r) => view.rows(r));
  const vitals = resources.filter(
    (r): r is Observation =>
      r?.resourceType === 'Observation' &&
      ((r as Observation).category ?? []).some((c) =>
        (c.coding ?? []).some((x) => x.system === VITAL && x.code === 'vital-signs'),
      ),
  );

  it('has one row per vital-sign Observation of the raw Bundles, in the ten columns', () => {
    expect(vitals.length).toBeGreaterThan(0);
    expect(rows).toHaveLength(vitals.length);
    expect(view.columns).toHaveLength(10);
  });

  it('each checked row carries the raw Observation values and its patient', () => {
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [i, b] of data.entries()) {
      const patient = b.entry?.find((e) => e.resource?.resourceType === 'Patient')?.resource;
      const own = vitals.filter((o) => o.subject?.reference === `urn:uuid:${patient?.id ?? ''}`);
      expect(own.length).toBeGreaterThan(0);
      for (const o of own.slice(0, 3 + i)) {
        const coding = o.code.coding?.[0];
        expect(byId.get(o.id)).toEqual({
          id: o.id,
          patient: patient?.id,
          encounter: o.encounter?.reference?.replace('urn:uuid:', '') ?? null,
          status: o.status,
          effective: o.effectiveDateTime ?? null,
          code_system: coding?.system ?? null,
          code: coding?.code ?? null,
          display: coding?.display ?? null,
          value: o.valueQuantity?.value ?? null,
          unit: o.valueQuantity?.unit ?? null,
        });
      }
    }
  });

  it('blood pressure panels (values in components) have an empty value column', () => {
    const bp = rows.find((r) => r.code === '85354-9');
    expect(bp).toBeDefined();
    expect(bp?.value).toBeNull();
  });
});
