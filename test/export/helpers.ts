import express from 'express';
import supertest from 'supertest';
import { createApp } from '../../src/app';
import type { AccessPolicy } from '../../src/auth/policy';
import { bulkRunnerFor, type BulkRunner } from '../../src/bulk/runner';
import { compartmentFilter } from '../../src/fhir/compartment';
import type { AppContext } from '../../src/interactions/context';
import type { Filter } from '../../src/store/backend';
import { FHIR_JSON, type Harness } from '../api/harness';

export type Agent = ReturnType<typeof supertest>;

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: Array<{ type: string; url: string; count: number }>;
  error: Array<{ type: string; url: string }>;
  extension?: Record<string, unknown>;
}

export function runnerOf(h: Harness): BulkRunner {
  return bulkRunnerFor(h.ctx);
}

/** The app behind supertest with a hand-made AccessPolicy in place of the one auth would build. */
export function withPolicy(ctx: AppContext, policy: AccessPolicy): Agent {
  const outer = express();
  outer.use((_req, res, next) => {
    res.locals.access = policy;
    next();
  });
  outer.use(createApp(ctx));
  return supertest(outer);
}

/** A policy limited to one Patient's compartment (what a patient/*.rs token gives). */
export function patientPolicy(ctx: AppContext, patientId: string, who = 'patient-app'): AccessPolicy {
  const visible = (type: string): Filter | null => compartmentFilter(ctx.registry, type, [patientId]);
  return {
    agent: { who, patient: patientId, scopeLevel: 'patient' },
    require: () => undefined,
    visible,
    canSee: () => true,
    canWrite: () => false,
  };
}

export function openPolicy(who: string, scopeLevel?: 'patient' | 'user' | 'system'): AccessPolicy {
  return {
    agent: { who, scopeLevel },
    require: () => undefined,
    visible: () => ({}),
    canSee: () => true,
    canWrite: () => true,
  };
}

export async function create(
  agent: Agent,
  resource: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const type = resource.resourceType as string;
  const res = await agent.post(`/fhir/${type}`).set('Content-Type', FHIR_JSON).send(resource);
  if (res.status !== 201) throw new Error(`create ${type}: ${res.status} ${res.text}`);
  return res.body as Record<string, unknown>;
}

export async function put(agent: Agent, resource: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await agent
    .put(`/fhir/${resource.resourceType as string}/${resource.id as string}`)
    .set('Content-Type', FHIR_JSON)
    .send(resource);
  if (res.status !== 201 && res.status !== 200) throw new Error(`put: ${res.status} ${res.text}`);
  return res.body as Record<string, unknown>;
}

/** The job id from a 202 kick-off answer's Content-Location. */
export function jobIdOf(res: supertest.Response): string {
  const loc = res.headers['content-location'] as string | undefined;
  if (res.status !== 202 || !loc) throw new Error(`kick-off: ${res.status} ${res.text}`);
  return loc.slice(loc.lastIndexOf('/') + 1);
}

export function pathOf(url: string): string {
  return new URL(url).pathname;
}

/** Kick-off, wait for the runner, fetch the manifest. */
export async function exportAll(
  agent: Agent,
  runner: BulkRunner,
  path: string,
): Promise<{ id: string; manifest: Manifest }> {
  const kick = await agent.get(path).set('Prefer', 'respond-async').set('Accept', FHIR_JSON);
  const id = jobIdOf(kick);
  await runner.settled(id);
  const status = await agent.get(`/fhir/$export-status/${id}`);
  if (status.status !== 200) throw new Error(`status: ${status.status} ${status.text}`);
  return { id, manifest: JSON.parse(status.text) as Manifest };
}

/** Every resource of the manifest's files, by type. */
export async function download(
  agent: Agent,
  manifest: Manifest,
): Promise<Map<string, Array<Record<string, unknown>>>> {
  const out = new Map<string, Array<Record<string, unknown>>>();
  for (const o of manifest.output) {
    const res = await agent
      .get(pathOf(o.url))
      .set('Accept', 'application/fhir+ndjson')
      .buffer(true)
      .parse(textParser);
    if (res.status !== 200) throw new Error(`download ${o.url}: ${res.status} ${String(res.body)}`);
    const lines = (res.body as string).split('\n').filter((l) => l !== '');
    const list = out.get(o.type) ?? [];
    list.push(...lines.map((l) => JSON.parse(l) as Record<string, unknown>));
    out.set(o.type, list);
  }
  return out;
}

/** Reads an NDJSON answer as text (supertest only parses JSON by itself). */
export function textParser(res: unknown, cb: (err: Error | null, body: string) => void): void {
  const stream = res as NodeJS.ReadableStream;
  let data = '';
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => (data += c));
  stream.on('end', () => cb(null, data));
}
