import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { FHIR_JSON, type Harness, startHarness } from '../api/harness';

/**
 * Searches a clinician would run, over Synthea patients loaded through the API (the two provider
 * batch Bundles, then the four smallest patient transaction Bundles and one of median size, whose
 * patient the per-patient searches look at), checked against counts computed here from the raw
 * Bundle JSON with plain JavaScript (none of the server's code).
 */

const DIR = '/work/shared/data/synthea-blaze';
const PATIENTS = 5;
const MRN_SYSTEM = 'http://hospital.smarthealthit.org';

interface Coding {
  system?: string;
  code?: string;
}
interface Raw {
  resourceType: string;
  [key: string]: unknown;
}
interface RawBundle {
  entry?: Array<{ fullUrl?: string; resource?: Raw }>;
}
interface SearchBundle {
  total?: number;
  entry?: Array<{ resource?: Raw; search?: { mode?: string } }>;
}

function read(file: string): RawBundle {
  return JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(DIR, file))).toString('utf8')) as RawBundle;
}

const files = fs.existsSync(DIR) ? fs.readdirSync(DIR).filter((f) => f.endsWith('.json.gz')) : [];
const providerFiles = files.filter((f) => f.startsWith('0-')).sort();
const bySize = files
  .filter((f) => !f.startsWith('0-'))
  .map((f) => ({ f, size: fs.statSync(path.join(DIR, f)).size }))
  .sort((a, b) => a.size - b.size || a.f.localeCompare(b.f))
  .map((x) => x.f);
const median = bySize[Math.floor(bySize.length / 2)];
/** The median-sized patient first: the per-patient searches use it. */
const patientFiles = median ? [median, ...bySize.slice(0, PATIENTS - 1)] : [];
const present = providerFiles.length === 2 && patientFiles.length === PATIENTS;
if (!present) console.log(`Synthea search test skipped: no Synthea Bundles in ${DIR}`);

// ---- independent reading of the raw files ----

function codings(concept: unknown): Coding[] {
  const c = concept as { coding?: Coding[] } | undefined;
  return c?.coding ?? [];
}
function hasCoding(concept: unknown, system: string, code: string): boolean {
  return codings(concept).some((c) => c.system === system && c.code === code);
}
/** [start, end] in ms of a dateTime/instant with seconds precision, or of a Period (open ends infinite). */
function range(resource: Raw, dateTimeKey: string, periodKey: string): [number, number] | undefined {
  const dt = resource[dateTimeKey];
  if (typeof dt === 'string') {
    const t = Date.parse(dt);
    return [t, t + 999];
  }
  const p = resource[periodKey] as { start?: string; end?: string } | undefined;
  if (!p) return undefined;
  return [p.start ? Date.parse(p.start) : -Infinity, p.end ? Date.parse(p.end) + 999 : Infinity];
}
/** date=geFROM&date=ltTO (both whole-second instants): the target range overlaps [from, to). */
function inRange(r: [number, number] | undefined, from: number, to: number): boolean {
  return r !== undefined && r[1] >= from && r[0] < to;
}
function refersTo(resource: Raw, key: string, fullUrl: string): boolean {
  return (resource[key] as { reference?: string } | undefined)?.reference === fullUrl;
}

interface RawPatient {
  fullUrl: string;
  patient: Raw;
  mrn: string;
  resources: Raw[];
}

const raw: RawPatient[] = present
  ? patientFiles.map((f) => {
      const entries = read(f).entry ?? [];
      const p = entries.find((e) => e.resource?.resourceType === 'Patient');
      const identifiers = (p?.resource?.identifier ?? []) as Array<{ system?: string; value?: string }>;
      const mrn = identifiers.find((i) => i.system === MRN_SYSTEM)?.value;
      if (!p?.fullUrl || !p.resource || !mrn) throw new Error(`${f}: no Patient with an MRN`);
      return {
        fullUrl: p.fullUrl,
        patient: p.resource,
        mrn,
        resources: entries.flatMap((e) => (e.resource ? [e.resource] : [])),
      };
    })
  : [];
const all = raw.flatMap((p) => p.resources);
const first = raw[0];

function mostCommon(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  const best = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
  if (!best) throw new Error('nothing to choose from');
  return best[0];
}
const utcYear = (y: number): string => `${y}-01-01T00:00:00Z`;

/** The patient's own resources of a type (those whose subject is the patient). */
function mineOf(p: RawPatient, type: string): Raw[] {
  return p.resources.filter((r) => r.resourceType === type && refersTo(r, 'subject', p.fullUrl));
}
/** The most common code of `system` in the resources' `code`. */
function commonCode(resources: Raw[], system: string): string {
  return mostCommon(
    resources.flatMap((r) => codings(r.code).filter((c) => c.system === system)).map((c) => c.code ?? ''),
  );
}
/**
 * A window of `span` UTC years from the start year at `1/divisor` through the resources' sorted
 * start years, and how many of the resources' date ranges overlap it.
 */
function yearWindow(
  resources: Raw[],
  dateTimeKey: string,
  periodKey: string,
  divisor: number,
  span: number,
): { from: string; to: string; expected: number } {
  const years = resources
    .map((r) => range(r, dateTimeKey, periodKey)?.[0])
    .filter((t): t is number => t !== undefined && Number.isFinite(t))
    .map((t) => new Date(t).getUTCFullYear())
    .sort((a, b) => a - b);
  const fromYear = years[Math.floor(years.length / divisor)] ?? 2000;
  const [from, to] = [utcYear(fromYear), utcYear(fromYear + span)];
  const expected = resources.filter((r) =>
    inRange(range(r, dateTimeKey, periodKey), Date.parse(from), Date.parse(to)),
  ).length;
  return { from, to, expected };
}

// ---- the server ----

let h: Harness;

async function search(query: string): Promise<SearchBundle> {
  const r = await h.request.get(`/fhir/${query}&_count=1000&_total=accurate`);
  expect(r.status).toBe(200);
  return JSON.parse(r.text) as SearchBundle;
}
async function count(query: string): Promise<number> {
  const bundle = await search(query);
  const matches = (bundle.entry ?? []).filter((e) => e.search?.mode !== 'include');
  expect(bundle.total).toBe(matches.length);
  return matches.length;
}
async function serverPatientId(mrn: string): Promise<string> {
  const bundle = await search(`Patient?identifier=${encodeURIComponent(`${MRN_SYSTEM}|${mrn}`)}`);
  const id = bundle.entry?.[0]?.resource?.id;
  if (typeof id !== 'string') throw new Error(`no Patient with MRN ${mrn}`);
  return id;
}

(present ? describe : describe.skip)('clinician searches over Synthea patients', () => {
  jest.setTimeout(120_000);

  beforeAll(async () => {
    h = await startHarness();
    for (const f of [...providerFiles, ...patientFiles]) {
      const r = await h.request
        .post('/fhir')
        .set('Content-Type', FHIR_JSON)
        .set('Prefer', 'return=minimal')
        .send(JSON.stringify(read(f)));
      if (r.status !== 200) throw new Error(`POST ${f}: ${r.status} ${r.text.slice(0, 300)}`);
    }
  }, 120_000);

  afterAll(async () => {
    await h.close();
  });

  it("finds a patient's Observations by LOINC code", async () => {
    if (!first) throw new Error('no patient');
    const mine = mineOf(first, 'Observation');
    const code = commonCode(mine, 'http://loinc.org');
    const expected = mine.filter((o) => hasCoding(o.code, 'http://loinc.org', code)).length;
    const id = await serverPatientId(first.mrn);
    const got = await count(
      `Observation?subject=Patient/${id}&code=${encodeURIComponent(`http://loinc.org|${code}`)}`,
    );
    expect(expected).toBeGreaterThan(1);
    expect(got).toBe(expected);
  });

  it("finds a patient's Observations by LOINC code and date range", async () => {
    if (!first) throw new Error('no patient');
    const mine = mineOf(first, 'Observation');
    const code = commonCode(mine, 'http://loinc.org');
    const withCode = mine.filter((o) => hasCoding(o.code, 'http://loinc.org', code));
    const { from, to, expected } = yearWindow(withCode, 'effectiveDateTime', 'effectivePeriod', 3, 3);
    const id = await serverPatientId(first.mrn);
    const got = await count(
      `Observation?patient=${id}&code=${encodeURIComponent(`http://loinc.org|${code}`)}` +
        `&date=ge${encodeURIComponent(from)}&date=lt${encodeURIComponent(to)}`,
    );
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(withCode.length);
    expect(got).toBe(expected);
  });

  it('finds Conditions by SNOMED code, across patients and for one patient', async () => {
    if (!first) throw new Error('no patient');
    const conditions = all.filter((r) => r.resourceType === 'Condition');
    const code = commonCode(conditions, 'http://snomed.info/sct');
    const token = encodeURIComponent(`http://snomed.info/sct|${code}`);
    const expectedAll = conditions.filter((c) => hasCoding(c.code, 'http://snomed.info/sct', code)).length;
    const expectedMine = conditions.filter(
      (c) => hasCoding(c.code, 'http://snomed.info/sct', code) && refersTo(c, 'subject', first.fullUrl),
    ).length;
    expect(expectedAll).toBeGreaterThan(1);
    expect(await count(`Condition?code=${token}`)).toBe(expectedAll);
    const id = await serverPatientId(first.mrn);
    expect(await count(`Condition?patient=Patient/${id}&code=${token}`)).toBe(expectedMine);
  });

  it("finds a patient's Encounters by date range", async () => {
    if (!first) throw new Error('no patient');
    const mine = mineOf(first, 'Encounter');
    const { from, to, expected } = yearWindow(mine, 'period-has-no-dateTime', 'period', 2, 5);
    const id = await serverPatientId(first.mrn);
    const got = await count(
      `Encounter?subject=Patient/${id}&date=ge${encodeURIComponent(from)}&date=lt${encodeURIComponent(to)}`,
    );
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(mine.length);
    expect(got).toBe(expected);
  });

  it('finds Patients by family name prefix, case-insensitively', async () => {
    if (!first) throw new Error('no patient');
    const names = (p: Raw): Array<{ family?: string }> => (p.name ?? []) as Array<{ family?: string }>;
    const family = names(first.patient)[0]?.family ?? '';
    const prefix = family.slice(0, 3);
    const expected = raw.filter((p) =>
      names(p.patient).some((n) => (n.family ?? '').toLowerCase().startsWith(prefix.toLowerCase())),
    ).length;
    expect(await count(`Patient?family=${encodeURIComponent(prefix.toUpperCase())}`)).toBe(expected);
    expect(expected).toBeGreaterThan(0);
  });

  it('finds Patients by birthdate, exactly and by range', async () => {
    if (!first) throw new Error('no patient');
    const birthDate = first.patient.birthDate as string;
    const exact = raw.filter((p) => p.patient.birthDate === birthDate).length;
    expect(await count(`Patient?birthdate=${birthDate}`)).toBe(exact);
    const year = birthDate.slice(0, 4);
    const before = raw.filter((p) => (p.patient.birthDate as string) < `${year}-01-01`).length;
    expect(await count(`Patient?birthdate=lt${year}`)).toBe(before);
  });

  it('finds each Patient by its MRN (system|value) and by no one else', async () => {
    for (const p of raw) {
      const bundle = await search(`Patient?identifier=${encodeURIComponent(`${MRN_SYSTEM}|${p.mrn}`)}`);
      expect(bundle.total).toBe(1);
      expect(bundle.entry?.[0]?.resource?.birthDate).toBe(p.patient.birthDate);
    }
    expect(await count(`Patient?identifier=${encodeURIComponent(`${MRN_SYSTEM}|not-an-mrn`)}`)).toBe(0);
  });
});
