import type { Observation, Patient } from 'fhir/r4';
import { type HttpResponse, expectStatus, header } from '../lib/http-client';
import {
  type PhaseResult,
  type Timings,
  concatTimings,
  runConcurrently,
  toPhase,
  toRound,
} from '../lib/phase';
import { type Scenario, type ScenarioContext, at } from '../lib/scenario';
import { modified, syntheticPatient, syntheticVitalSign } from '../lib/synthetic';

/**
 * create: N resources, half Patients, then half vital-sign Observations whose subjects are random
 *   Patients from the first half. Run once: it builds the data set the other phases use. It meets
 *   a cold server (JIT, first connections), which is part of what it measures.
 * read: N GETs of random created ids, repeated --rounds times (median reported); reads do not
 *   change the store, so every round measures the same thing.
 * update: N PUTs with If-Match, each resource once in random order with one field changed.
 *   Run once: a second round would measure a different store (version 3, longer history).
 */

type Resource = Patient | Observation;

interface Created {
  id: string;
  versionId: string;
  resource: Resource;
}

const HISTORY_PATH = /\/(Patient|Observation)\/([^/]+)\/_history\/([^/]+)\/?$/;

/** id and versionId of a created resource: from Location, falling back to the returned body. */
function createdIdentity(response: HttpResponse): { id: string; versionId: string } {
  const location = header(response, 'location');
  const match = location === undefined ? null : HISTORY_PATH.exec(location);
  if (match?.[2] !== undefined && match[3] !== undefined) return { id: match[2], versionId: match[3] };
  const body = JSON.parse(response.body) as { id?: unknown; meta?: { versionId?: unknown } };
  if (typeof body.id === 'string' && typeof body.meta?.versionId === 'string') {
    return { id: body.id, versionId: body.meta.versionId };
  }
  throw new Error(
    `create answered 201 without Location or id/meta.versionId (Location: ${String(location)})`,
  );
}

function createAll(
  context: ScenarioContext,
  resources: readonly Resource[],
  into: Created[],
): Promise<Timings> {
  const { client, options } = context;
  const offset = into.length;
  return runConcurrently(resources.length, options.concurrency, async (index) => {
    const resource = at(resources, index);
    const response = await client.request('POST', resource.resourceType, { body: resource });
    expectStatus(response, 201, `POST ${resource.resourceType}`);
    into[offset + index] = { ...createdIdentity(response), resource };
  });
}

async function createPhase(context: ScenarioContext): Promise<{ created: Created[]; phase: PhaseResult }> {
  const { options, random, log } = context;
  const patientCount = Math.ceil(options.n / 2);
  log(`create: ${patientCount} Patients, ${options.n - patientCount} Observations`);
  const created: Created[] = [];
  const patients = Array.from({ length: patientCount }, (_, i) => syntheticPatient(random, i));
  const patientTimings = await createAll(context, patients, created);
  const observations = Array.from({ length: options.n - patientCount }, () =>
    syntheticVitalSign(random, { reference: `Patient/${random.pick(created).id}` }),
  );
  const observationTimings = await createAll(context, observations, created);
  return {
    created,
    phase: toPhase('create', [toRound(concatTimings([patientTimings, observationTimings]))]),
  };
}

async function readPhase(context: ScenarioContext, created: readonly Created[]): Promise<PhaseResult> {
  const { client, options, random, log } = context;
  const rounds = [];
  for (let round = 1; round <= options.rounds; round++) {
    log(`read: round ${round} of ${options.rounds}`);
    const targets = Array.from({ length: options.n }, () => random.pick(created));
    const timings = await runConcurrently(targets.length, options.concurrency, async (index) => {
      const { id, resource } = at(targets, index);
      const response = await client.request('GET', `${resource.resourceType}/${id}`);
      expectStatus(response, 200, `GET ${resource.resourceType}/${id}`);
    });
    rounds.push(toRound(timings));
  }
  return toPhase('read', rounds);
}

async function updatePhase(context: ScenarioContext, created: readonly Created[]): Promise<PhaseResult> {
  const { client, options, random, log } = context;
  log('update: every resource once, in random order');
  const targets = random.shuffled(created).map((target) => ({
    ...target,
    next: { ...modified(target.resource, random), id: target.id },
  }));
  const timings = await runConcurrently(targets.length, options.concurrency, async (index) => {
    const { id, versionId, next } = at(targets, index);
    const response = await client.request('PUT', `${next.resourceType}/${id}`, {
      body: next,
      headers: { 'if-match': `W/"${versionId}"` },
    });
    expectStatus(response, 200, `PUT ${next.resourceType}/${id}`);
  });
  return toPhase('update', [toRound(timings)]);
}

export const crud: Scenario = {
  name: 'crud',
  description: 'create, read (x rounds), update of Patients and vital-sign Observations',
  async run(context) {
    const { created, phase: create } = await createPhase(context);
    const read = await readPhase(context, created);
    const update = await updatePhase(context, created);
    return [create, read, update];
  },
};
