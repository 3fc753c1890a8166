import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Resource } from 'fhir/r4';
import { startHarness, type Harness } from '../api/harness';
import { download, exportAll, runnerOf } from './helpers';

const DATA = process.env.FHIR_TEST_DATA ?? path.resolve(__dirname, '../../../shared/data');
const DIR = path.join(DATA, 'smart-bulk-10-patients');
const present = fs.existsSync(DIR);
if (!present) console.log(`skipping the smart-bulk-10-patients export tests: ${DIR} is absent`);
const describeData = present ? describe : describe.skip;

/** type -> its resources, from the upstream NDJSON files. */
function readInput(): Map<string, Resource[]> {
  const out = new Map<string, Resource[]>();
  for (const f of fs.readdirSync(DIR).filter((n) => n.endsWith('.ndjson.gz'))) {
    const text = zlib.gunzipSync(fs.readFileSync(path.join(DIR, f))).toString('utf8');
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const r = JSON.parse(line) as Resource;
      const list = out.get(r.resourceType) ?? [];
      list.push(r);
      out.set(r.resourceType, list);
    }
  }
  return out;
}

/** Strings a de-identified export must not contain: names, street lines, telecoms, identifiers, birth dates. */
function identifyingStrings(patients: Resource[]): Set<string> {
  const out = new Set<string>();
  const add = (s: unknown): void => {
    // Short values ("Mr.", "MA") cannot be told apart from ordinary codes and words.
    if (typeof s === 'string' && s.length >= 4) out.add(s);
  };
  for (const r of patients) {
    const p = r as fhir4.Patient;
    for (const n of p.name ?? []) {
      add(n.family);
      for (const g of n.given ?? []) add(g);
    }
    for (const a of p.address ?? []) {
      for (const l of a.line ?? []) add(l);
      add(a.postalCode);
    }
    for (const t of p.telecom ?? []) add(t.value);
    for (const i of p.identifier ?? []) add(i.value);
    add(p.birthDate);
  }
  return out;
}

describeData('export of the SMART bulk sample (Synthea, 13 types)', () => {
  let h: Harness;
  let input: Map<string, Resource[]>;

  beforeAll(async () => {
    h = await startHarness({ AUDIT: 'off' });
    input = readInput();
    for (const [type, list] of input) for (const r of list) await h.ctx.store.update(type, r.id as string, r);
  }, 300_000);

  afterAll(async () => {
    await runnerOf(h).stop();
    await h.close();
  });

  it('exports as many resources of each type as were imported', async () => {
    const { manifest } = await exportAll(h.request, runnerOf(h), '/fhir/$export');
    const counts: Record<string, number> = {};
    for (const o of manifest.output) counts[o.type] = (counts[o.type] ?? 0) + o.count;
    const expected = Object.fromEntries([...input].map(([t, l]) => [t, l.length]));
    expect(counts).toEqual(expected);
  });

  it('a de-identified export contains no name, street line, telecom, identifier or exact birth date of the patients', async () => {
    const { manifest } = await exportAll(h.request, runnerOf(h), '/fhir/$export?_deidentify=safe-harbor');
    expect(manifest.extension).toEqual({ deidentify: 'safe-harbor' });
    const files = await download(h.request, manifest);
    const text = [...files.values()].map((l) => JSON.stringify(l)).join('\n');
    // Whole words only: a zip code like 67060 also occurs inside SNOMED code 46706006.
    const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const leaks = [...identifyingStrings(input.get('Patient') ?? [])].filter((s) =>
      new RegExp(`(^|[^A-Za-z0-9])${escape(s)}($|[^A-Za-z0-9])`).test(text),
    );
    expect(leaks).toEqual([]);
    for (const p of input.get('Patient') ?? []) expect(text).not.toContain((p as fhir4.Patient).birthDate);
    // Every reference between exported resources still resolves within the export.
    const ids = new Set([...files].flatMap(([t, l]) => l.map((r) => `${t}/${r.id as string}`)));
    const dangling = [...text.matchAll(/"reference":"([A-Za-z]+\/[0-9a-f]{32})"/g)]
      .map((m) => m[1] as string)
      .filter((r) => !ids.has(r));
    const original = new Set([...input].flatMap(([t, l]) => l.map((r) => `${t}/${r.id as string}`)));
    // References to resources that were not in the input either may stay unresolved, nothing else.
    expect(dangling.length).toBeLessThanOrEqual(
      [...JSON.stringify([...input.values()]).matchAll(/"reference":"([A-Za-z]+\/[^"]+)"/g)].filter(
        (m) => !original.has(m[1] as string),
      ).length,
    );
    expect(files.get('Patient')).toHaveLength(input.get('Patient')?.length ?? 0);
  });
});
