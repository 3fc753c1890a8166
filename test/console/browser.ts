import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { decodePng, imageStats } from './png';

/**
 * Browser tests of the records console: Debian's Chromium (apt-get install chromium; .ci/run
 * installs it when missing) driven by playwright-core, which downloads no browser of its own.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const ROOT = path.resolve(__dirname, '../..');

/** `describe` when Chromium is installed; otherwise `describe.skip`, saying why. */
export function describeWithBrowser(name: string, fn: () => void): void {
  if (fs.existsSync(CHROMIUM)) {
    describe(name, fn);
    return;
  }
  console.warn(`${name}: skipped, no Chromium at ${CHROMIUM} (apt-get install chromium; CI installs it)`);
  describe.skip(name, fn);
}

/** Builds console/dist when it is missing or older than a console source (the server serves it). */
export function ensureConsoleBuilt(): void {
  const index = path.join(ROOT, 'console/dist/index.html');
  const newest = (p: string): number => {
    const st = fs.statSync(p);
    if (!st.isDirectory()) return st.mtimeMs;
    return Math.max(0, ...fs.readdirSync(p).map((n) => newest(path.join(p, n))));
  };
  const sources = Math.max(
    newest(path.join(ROOT, 'console/src')),
    newest(path.join(ROOT, 'console/index.html')),
    newest(path.join(ROOT, 'console/vite.config.ts')),
  );
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= sources) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', 'console'], {
    cwd: ROOT,
    stdio: 'pipe',
  });
}

/** Headless Chromium with a fresh profile in `userDataDir`, quiet on the network. */
export function launchChromium(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    acceptDownloads: true,
    viewport: { width: 1366, height: 900 },
  });
}

/**
 * Collects what goes wrong in the page: script errors, console errors (a CSP violation is one) and
 * answers >= 400, except those `expected` says are part of the flow.
 */
export function watchErrors(
  page: Page,
  errors: string[],
  expected: (status: number, url: string) => boolean,
): void {
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Failed loads are reported with their URL by the response handler below.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      errors.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !expected(r.status(), r.url()))
      errors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
}

/** A screenshot with content: many colours, and a real share of pixels away from the background. */
export function expectNotBlank(png: Buffer, what: string): void {
  const stats = imageStats(decodePng(png));
  const message = `${what}: ${JSON.stringify(stats)}`;
  expect({
    what,
    visible: stats.colours > 16 && stats.inkShare > 0.005 && stats.lumaStdDev > 8,
    message,
  }).toEqual({ what, visible: true, message });
}
