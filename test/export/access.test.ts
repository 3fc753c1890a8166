import { patient, startHarness, type Harness } from '../api/harness';
import { download, exportAll, patientPolicy, put, runnerOf, withPolicy } from './helpers';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ AUDIT: 'off' });
  for (const id of ['pa', 'pb']) {
    await put(h.request, { ...patient({ name: [{ family: `Family-${id}` }] }), id });
    await put(h.request, {
      resourceType: 'Observation',
      id: `obs-${id}`,
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
      subject: { reference: `Patient/${id}` },
      performer: [{ reference: 'Practitioner/dr' }],
    });
  }
  await put(h.request, { resourceType: 'Practitioner', id: 'dr', name: [{ family: 'Doctor' }] });
  await put(h.request, { resourceType: 'Organization', id: 'org', name: 'Hospital' });
});

afterAll(async () => {
  await runnerOf(h).stop();
  await h.close();
});

describe('a patient-scoped token', () => {
  it('gets only its own compartment from Patient/$export', async () => {
    const api = withPolicy(h.ctx, patientPolicy(h.ctx, 'pa'));
    const { manifest } = await exportAll(api, runnerOf(h), '/fhir/Patient/$export');
    const files = await download(api, manifest);
    expect(files.get('Patient')?.map((r) => r.id)).toEqual(['pa']);
    expect(files.get('Observation')?.map((r) => r.id)).toEqual(['obs-pa']);
  });

  it('cannot widen its export with the patient parameter', async () => {
    const api = withPolicy(h.ctx, patientPolicy(h.ctx, 'pa'));
    const { manifest } = await exportAll(api, runnerOf(h), '/fhir/Patient/$export?patient=Patient/pb');
    expect(manifest.output).toEqual([]);
  });

  it('is refused a system level export (403)', async () => {
    const api = withPolicy(h.ctx, patientPolicy(h.ctx, 'pa'));
    const res = await api.get('/fhir/$export').set('Prefer', 'respond-async');
    expect(res.status).toBe(403);
  });
});

describe('a de-identified export', () => {
  it('keeps references consistent across files and removes the names', async () => {
    const { manifest } = await exportAll(
      h.request,
      runnerOf(h),
      '/fhir/$export?_type=Patient,Observation,Practitioner&_deidentify=safe-harbor',
    );
    const files = await download(h.request, manifest);
    const patients = new Set(files.get('Patient')?.map((r) => `Patient/${r.id as string}`));
    const practitioners = new Set(files.get('Practitioner')?.map((r) => `Practitioner/${r.id as string}`));
    expect(patients.size).toBe(2);
    expect(patients.has('Patient/pa')).toBe(false);
    for (const o of files.get('Observation') ?? []) {
      expect(patients.has((o.subject as { reference: string }).reference)).toBe(true);
      const performer = (o.performer as Array<{ reference: string }>)[0]?.reference as string;
      expect(practitioners.has(performer)).toBe(true);
    }
    expect(JSON.stringify([...files.values()])).not.toMatch(/Family-p|Doctor/);
  });

  it('uses new pseudonyms in every export', async () => {
    const ids = async (): Promise<unknown[]> => {
      const { manifest } = await exportAll(
        h.request,
        runnerOf(h),
        '/fhir/$export?_type=Patient&_deidentify=safe-harbor',
      );
      return ((await download(h.request, manifest)).get('Patient') ?? []).map((r) => r.id).sort();
    };
    const [a, b] = [await ids(), await ids()];
    expect(a).toHaveLength(2);
    expect(a).not.toEqual(b);
  });

  it('forgets its pseudonym key once the job is done', async () => {
    const { id } = await exportAll(
      h.request,
      runnerOf(h),
      '/fhir/$export?_type=Patient&_deidentify=safe-harbor',
    );
    const job = await runnerOf(h).jobs.get(id);
    expect(job?.deidentify).toEqual({ mode: 'safe-harbor', key: '' });
  });

  it('refuses another _deidentify mode (400)', async () => {
    const res = await h.request
      .get('/fhir/$export?_deidentify=limited-data-set')
      .set('Prefer', 'respond-async');
    expect(res.status).toBe(400);
  });
});
