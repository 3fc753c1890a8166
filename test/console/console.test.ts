import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bundle, Patient } from 'fhir/r4';
import type { BrowserContext, Page } from 'playwright-core';
import { httpRequest, spawnServer, type RunningServer } from '../process';
import {
  describeWithBrowser,
  ensureConsoleBuilt,
  expectNotBlank,
  launchChromium,
  ROOT,
  watchErrors,
} from './browser';
import { decodePng, imageStats } from './png';

/**
 * The records console in a real browser: Debian's Chromium driven by playwright-core (no browser
 * download), against a server started from the sources with AUTH=none and a small fixture set
 * (fixtures/console-chart.json: a patient with encounters, conditions, medications, a document and
 * six readings each of weight, blood pressure and heart rate).
 * `npm run screenshot` runs it with CONSOLE_SCREENSHOT=docs/console-chart.png to refresh the README image.
 */
describeWithBrowser('records console in Chromium', () => {
  let server: RunningServer;
  let dataDir: string;
  let userDataDir: string;
  let shotsDir: string;
  let context: BrowserContext;
  let page: Page;
  let origin: string;
  let patientId: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    ensureConsoleBuilt();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-console-'));
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-console-chromium-'));
    shotsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-console-shots-'));
    server = await spawnServer({ DATA_DIR: dataDir, AUTH: 'none' });
    origin = `http://127.0.0.1:${server.port}`;
    const bundle = JSON.parse(
      fs.readFileSync(path.join(ROOT, 'fixtures/console-chart.json'), 'utf8'),
    ) as Bundle;
    const seeded = await httpRequest('POST', server.baseUrl, bundle);
    expect(seeded.status).toBe(200);
    const found = await httpRequest('GET', `${server.baseUrl}/Patient?identifier=MRN-CONSOLE-1`);
    const match = (JSON.parse(found.body) as Bundle).entry?.[0]?.resource as Patient | undefined;
    patientId = match?.id ?? '';
    expect(patientId).not.toBe('');
    context = await launchChromium(userDataDir);
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
    // The one expected failure: AUTH=none has no smart-configuration (404), which is how the console knows.
    watchErrors(
      page,
      pageErrors,
      (status, url) => status === 404 && url.endsWith('/fhir/.well-known/smart-configuration'),
    );
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    for (const d of [dataDir, userDataDir, shotsDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  }, 60_000);

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  test('the blank-screenshot check rejects a blank page', async () => {
    const blank = await context.newPage();
    await blank.setViewportSize({ width: 400, height: 300 });
    await blank.setContent('<html><body style="background:#fff"></body></html>');
    const stats = imageStats(decodePng(await blank.screenshot()));
    await blank.close();
    expect(stats.inkShare).toBe(0);
    expect(stats.colours).toBe(1);
  }, 60_000);

  test('finds a patient by name and opens the chart', async () => {
    await page.goto(`${origin}/console/`);
    await page.getByRole('heading', { name: 'Find a patient' }).waitFor();
    await page.getByLabel('Name').fill('okaf');
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.getByRole('link', { name: 'Grace Adaeze Okafor' });
    await row.waitFor();
    // The other fixture patients do not match "okaf" (Okoro starts with "oko").
    expect(await page.locator('table tbody tr').count()).toBe(1);
    await row.click();
    await page.getByRole('heading', { level: 1, name: 'Grace Adaeze Okafor' }).waitFor();
    expect(page.url()).toBe(`${origin}/console/patient/${patientId}`);
    await expect(page.locator('.facts').textContent()).resolves.toContain('MRN-CONSOLE-1');
    for (const [section, text] of [
      ['conditions', 'Hypertension'],
      ['medications', 'lisinopril 10 MG Oral Tablet'],
      ['documents', 'Visit note'],
      ['encounters', 'Check-up'],
    ] as const) {
      await page.locator(`section.${section} table, section.${section} ul`).getByText(text).first().waitFor();
    }
    await page.locator('svg.timeline circle').first().waitFor();
    expect(await page.locator('svg.timeline circle').count()).toBe(6);
  }, 60_000);

  test('plots the numeric observations over time, with their units', async () => {
    const bp = page.getByRole('row', { name: /Blood pressure/ });
    await bp.getByRole('button', { name: 'Plot' }).click();
    const plot = page.locator('.plot[role="img"]');
    await expect(plot.getAttribute('aria-label')).resolves.toMatch(/^Blood pressure: 6 readings in mmHg/);
    await plot.locator('canvas').waitFor();
    await expect(plot.locator('.u-legend').textContent()).resolves.toMatch(/Systolic.*Diastolic/);
    const plotShot = await plot.screenshot({ path: path.join(shotsDir, 'plot.png') });
    expectNotBlank(plotShot, 'blood pressure plot');

    await page
      .getByRole('row', { name: /Body weight/ })
      .getByRole('button', { name: 'Plot' })
      .click();
    await expect(plot.getAttribute('aria-label')).resolves.toMatch(/^Body weight: 6 readings in kg/);
    // The readings as a table, for those who cannot see the canvas.
    await page.locator('.plot-figure summary').click();
    await expect(page.locator('.plot-figure table.compact').textContent()).resolves.toContain('78.6');

    await page.locator('.plot-figure summary').click();
    const chartShot = await page.screenshot({ fullPage: false });
    expectNotBlank(chartShot, 'patient chart');
    const keep = process.env.CONSOLE_SCREENSHOT;
    if (keep) fs.writeFileSync(path.resolve(ROOT, keep), chartShot);
  }, 60_000);

  test('shows a document attachment', async () => {
    await page.getByRole('button', { name: 'Show' }).click();
    await expect(page.locator('pre.note').textContent()).resolves.toContain('Blood pressure 128/82 mmHg');
  }, 60_000);

  test('opens the audit trail of the patient', async () => {
    await page.getByRole('link', { name: 'Audit trail' }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit' }).waitFor();
    expect(page.url()).toBe(`${origin}/console/audit?patient=${patientId}`);
    const trail = page.locator('section[aria-labelledby="trail-h"] table');
    await trail.waitFor();
    // Opening the chart read the Patient: that read is in the trail.
    await expect(trail.textContent()).resolves.toContain(`Patient/${patientId}`);
    expect(await trail.locator('tbody tr').count()).toBeGreaterThan(3);
    expectNotBlank(await page.screenshot(), 'audit trail');

    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await page.getByText('The chain is intact.').waitFor();
  }, 60_000);

  test('downloads the access report as CSV', async () => {
    await expect(page.getByLabel('Patient', { exact: true }).nth(1).inputValue()).resolves.toBe(patientId);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`access-report-${patientId}.csv`);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    const lines = csv.trim().split(/\r?\n/);
    expect(lines[0]).toBe(
      'recorded,who,client,fhirUser,address,action,interaction,resource,outcome,outcomeDesc,requestId,auditEvent,sequence',
    );
    expect(lines.some((l) => l.includes(`Patient/${patientId}`) && l.includes(',read,'))).toBe(true);

    await page.getByRole('button', { name: 'Show report' }).click();
    await page.getByText(/accesses to the records of Patient\//).waitFor();
    expectNotBlank(await page.screenshot(), 'access report');
  }, 60_000);

  test('shows a resource with its versions and the diff between them', async () => {
    const current = await httpRequest('GET', `${server.baseUrl}/Patient/${patientId}`);
    const changed = {
      ...(JSON.parse(current.body) as Patient),
      telecom: [{ system: 'phone', value: '+1 555 0199' }],
    };
    expect((await httpRequest('PUT', `${server.baseUrl}/Patient/${patientId}`, changed)).status).toBe(200);
    await page.goto(`${origin}/console/resource/Patient/${patientId}`);
    await page.getByRole('heading', { name: 'History (2 versions)' }).waitFor();
    const diff = page.locator('pre.diff');
    await expect(diff.locator('.d-added').allTextContents()).resolves.toContainEqual(
      expect.stringContaining('+1 555 0199'),
    );
    await expect(diff.locator('.d-removed').allTextContents()).resolves.toContainEqual(
      expect.stringContaining('+1 555 0100'),
    );
  }, 60_000);

  test('validates a type against a profile and groups the failing resources', async () => {
    await page.getByRole('link', { name: 'Data quality' }).click();
    await page.getByLabel('Resource type').selectOption('Observation');
    await page
      .getByLabel('Profiles')
      .selectOption('http://example.org/fhir/StructureDefinition/study-heart-rate');
    await page.getByRole('button', { name: 'Start validation' }).click();
    await page.locator('label[for="q-progress"]', { hasText: /^Done: 19 resources of Observation/ }).waitFor({
      timeout: 60_000,
    });
    // The weights, pressures and the smoking status are no study heart rates.
    const groups = page.locator('ul.issues > li');
    expect(await groups.count()).toBeGreaterThan(0);
    await groups.first().locator('summary').click();
    await groups.first().locator('a[href^="/console/resource/Observation/"]').first().waitFor();
  }, 90_000);

  test('starts a bulk export and downloads its file', async () => {
    await page.getByRole('link', { name: 'Studies' }).click();
    await page.getByLabel('Types').fill('Patient');
    await page.getByRole('button', { name: 'Start export' }).click();
    const button = page.getByRole('button', { name: 'Download Patient.1.ndjson' });
    await button.waitFor({ timeout: 60_000 });
    const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
    const lines = fs
      .readFileSync(await download.path(), 'utf8')
      .trim()
      .split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.some((l) => l.includes('Okafor'))).toBe(true);
  }, 90_000);
});
