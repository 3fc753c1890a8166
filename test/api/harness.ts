import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import supertest from 'supertest';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import type { AppContext } from '../../src/interactions/context';
import { buildContext } from '../../src/main';
import { EmbeddedBackend } from '../../src/store/embedded/engine';
import { OverlayBackend } from '../../src/store/overlay';

export interface Harness {
  ctx: AppContext;
  request: ReturnType<typeof supertest>;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * A real server (embedded store in a fresh temporary DATA_DIR, or in `env.DATA_DIR` to restart on an
 * earlier one) behind supertest. `close()` removes the DATA_DIR it made (a given one is the caller's).
 */
export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const given = env.DATA_DIR;
  const dataDir = given ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-api-'));
  const config = loadConfig({
    DATA_DIR: dataDir,
    BASE_URL: 'http://fhir.test/fhir',
    PROFILES_DIR: path.join(dataDir, 'profiles'),
    ...env,
  });
  const ctx = await buildContext(config, pino({ level: 'silent' }));
  const app = createApp(ctx);
  return {
    ctx,
    request: supertest(app),
    dataDir,
    close: async () => {
      await ctx.store.backend.close();
      if (given === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The embedded engine under a harness's store (beside it, the audit log: store/overlay.ts). */
export function engineOf(ctx: AppContext): EmbeddedBackend {
  const backend = ctx.store.backend;
  const engine = backend instanceof OverlayBackend ? backend.base : backend;
  if (!(engine instanceof EmbeddedBackend)) throw new Error('this harness does not run the embedded store');
  return engine;
}

export const FHIR_JSON = 'application/fhir+json';

export function patient(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    identifier: [{ system: 'http://hospital.example/mrn', value: 'MRN-1' }],
    name: [{ family: 'Smith', given: ['Anna'] }],
    gender: 'female',
    birthDate: '1980-02-29',
    ...extra,
  };
}
