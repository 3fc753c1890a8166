import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { collectFiles, inProcessSink, runImport, type ImportOptions } from '../scripts/import';
import { startHarness, type Harness } from './api/harness';

let h: Harness;
let dir: string;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h.close());
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-import-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const FIXTURES = path.resolve(__dirname, '..', 'fixtures');

function options(inputs: string[], extra: Partial<ImportOptions> = {}, on: Harness = h): ImportOptions {
  return { inputs, sink: inProcessSink(on.ctx), statePath: path.join(dir, 'state.json'), ...extra };
}

async function live(type: string, on: Harness = h): Promise<number> {
  return on.ctx.store.count(type, { deleted: false });
}

const patientLine = (mrn: string, id?: string): string =>
  JSON.stringify({
    resourceType: 'Patient',
    ...(id ? { id } : {}),
    identifier: [{ system: 'http://import.example/mrn', value: mrn }],
  });

describe('import CLI', () => {
  test('provider Bundles (hospitalInformation*, practitionerInformation*, 0-*) are loaded first', () => {
    for (const f of [
      'a.json',
      'practitionerInformation1.json',
      'b.ndjson',
      '0-x.json.gz',
      'hospitalInformation1.json',
      'notes.txt',
    ])
      fs.writeFileSync(path.join(dir, f), '');
    expect(collectFiles([dir]).map((f) => path.basename(f))).toEqual([
      '0-x.json.gz',
      'hospitalInformation1.json',
      'practitionerInformation1.json',
      'a.json',
      'b.ndjson',
    ]);
  });

  test('a transaction Bundle loads through the bundle service; the summary counts resources per type', async () => {
    const s = await runImport(options([path.join(FIXTURES, 'bundle-transaction.json')]));
    expect(s.errors).toEqual([]);
    expect(s.resources).toEqual({ Patient: 1, Encounter: 1, Observation: 1 });
  });

  test('NDJSON: one resource per line (PUT with an id, POST without); bad lines are errors with file and line', async () => {
    const file = path.join(dir, 'patients.ndjson.gz');
    const lines = [
      patientLine('N-1'),
      patientLine('N-2', 'nd-2'),
      '{not json',
      patientLine('N-4'),
      '{"resourceType":"Patient","id":"bad id"}',
    ];
    fs.writeFileSync(file, zlib.gzipSync(lines.join('\n')));
    const s = await runImport(options([file], { chunk: 2 }));
    expect(s.resources).toEqual({ Patient: 3 });
    expect(s.errors.map((e) => [path.basename(e.file), e.line])).toEqual([
      ['patients.ndjson.gz', 3],
      ['patients.ndjson.gz', 5],
    ]);
    expect((await h.ctx.store.read('Patient', 'nd-2'))?.deleted).toBe(false);
  });

  test('an interrupted import resumes where it stopped: nothing is loaded twice', async () => {
    const file = path.join(dir, 'resume.ndjson');
    fs.writeFileSync(file, Array.from({ length: 6 }, (_, i) => patientLine(`R-${i}`)).join('\n'));
    const before = await live('Patient');
    // Interrupted after the first chunk (as SIGINT does: the work in flight finishes).
    const inner = inProcessSink(h.ctx);
    let sent = 0;
    const sink: ImportOptions['sink'] = async (b) => {
      const r = await inner(b);
      sent++;
      return r;
    };
    const first = await runImport(options([file], { chunk: 2, sink, stopped: () => sent >= 1 }));
    expect(first.resources).toEqual({ Patient: 2 });
    const second = await runImport(options([file], { chunk: 2 }));
    expect(second.resources).toEqual({ Patient: 4 });
    const third = await runImport(options([file], { chunk: 2 }));
    expect(third.skipped).toBe(1);
    expect(third.resources).toEqual({});
    expect(await live('Patient')).toBe(before + 6);
  });
});

const SYNTHEA = path.join(
  process.env.FHIR_TEST_DATA ?? path.resolve(__dirname, '..', '..', 'shared', 'data'),
  'synthea-blaze',
);

const describeSynthea = fs.existsSync(SYNTHEA) ? describe : describe.skip;
if (!fs.existsSync(SYNTHEA)) console.log(`skipping the Synthea import test: ${SYNTHEA} is absent`);

describeSynthea('import of Synthea (shared/data/synthea-blaze)', () => {
  let fresh: Harness;
  beforeAll(async () => {
    fresh = await startHarness();
  });
  afterAll(async () => fresh.close());

  test('provider batch Bundles plus 3 patient transactions: every resource stored, references resolved', async () => {
    const all = fs.readdirSync(SYNTHEA).filter((f) => f.endsWith('.json.gz'));
    const picked = [
      ...all.filter((f) => f.startsWith('0-')),
      ...all
        .filter((f) => !f.startsWith('0-'))
        .sort()
        .slice(0, 3),
    ];
    const expected: Record<string, number> = {};
    for (const f of picked) {
      const b = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(SYNTHEA, f))).toString('utf8')) as {
        entry: Array<{ resource: { resourceType: string } }>;
      };
      for (const e of b.entry)
        expected[e.resource.resourceType] = (expected[e.resource.resourceType] ?? 0) + 1;
    }
    // Patient Bundles first on the command line: the loader must still load the providers first.
    const inputs = [...picked].reverse().map((f) => path.join(SYNTHEA, f));
    const s = await runImport(options(inputs, { concurrency: 2 }, fresh));
    expect(s.errors).toEqual([]);
    expect(s.resources).toEqual(expected);
    for (const [type, n] of Object.entries(expected))
      expect([type, await live(type, fresh)]).toEqual([type, n]);
    const [enc] = await fresh.ctx.store.find('Encounter', { deleted: false }, { limit: 1 });
    const text = JSON.stringify(enc?.resource);
    expect(text).not.toContain('urn:uuid:');
    expect(text).not.toContain('?identifier=');
    expect(text).toMatch(/"reference":"Practitioner\/[^"]+"/);
  }, 120_000);
});
