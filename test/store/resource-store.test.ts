import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Patient, Resource } from 'fhir/r4';
import { loadDefinitions } from '../../src/fhir/definitions';
import { FhirError } from '../../src/fhir/errors';
import { IndexExtractor } from '../../src/search/extract';
import type { Backend } from '../../src/store/backend';
import { EmbeddedBackend } from '../../src/store/embedded/engine';
import { connectMongo } from '../../src/store/mongo';
import { ResourceStore } from '../../src/store/resource-store';

/**
 * The ResourceStore's behaviour, on every backend this machine has: always the embedded engine,
 * and MongoDB when MONGODB_URI is set (a fresh database per run, dropped afterwards).
 */
interface BackendFixture {
  name: string;
  open(): Promise<{ backend: Backend; cleanup(): Promise<void> }>;
}

const fixtures: BackendFixture[] = [
  {
    name: 'embedded',
    open: async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-'));
      const backend = await EmbeddedBackend.open({ dataDir: dir });
      return {
        backend,
        cleanup: async () => {
          await backend.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];
if (process.env.MONGODB_URI) {
  const uri = process.env.MONGODB_URI;
  fixtures.push({
    name: 'mongodb',
    open: async () => {
      const db = `fhir_store_test_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
      const backend = await connectMongo(uri, db, () => undefined);
      return {
        backend,
        cleanup: async () => {
          const { MongoClient } = await import('mongodb');
          const c = new MongoClient(uri);
          await c.db(db).dropDatabase();
          await c.close();
          await backend.close();
        },
      };
    },
  });
} else {
  console.log('MONGODB_URI not set: ResourceStore tests run on the embedded store only');
}

const { registry } = loadDefinitions();
const extractor = new IndexExtractor(registry);

describe.each(fixtures)('ResourceStore on $name', (fixture) => {
  let store: ResourceStore;
  let cleanup: () => Promise<void>;
  let seq = 0;
  beforeAll(async () => {
    const opened = await fixture.open();
    cleanup = opened.cleanup;
    store = new ResourceStore({ backend: opened.backend, extractor, newId: () => `id-${++seq}` });
    await store.init();
  });
  afterAll(async () => cleanup());

  const anna: Patient = { resourceType: 'Patient', name: [{ family: 'Smith', given: ['Anna'] }] };

  test('create sets id, versionId 1 and lastUpdated, and indexes search values', async () => {
    const w = await store.create('Patient', anna);
    expect(w.created).toBe(true);
    expect(w.versionId).toBe(1);
    expect(w.resource.meta?.versionId).toBe('1');
    expect(w.resource.meta?.lastUpdated).toBe(w.lastUpdated);
    const doc = await store.read('Patient', w.resource.id as string);
    expect(doc?.idx.family).toBeDefined();
    expect(doc?.deleted).toBe(false);
  });

  test('update makes version 2 and keeps version 1 in history', async () => {
    const w = await store.create('Patient', anna);
    const id = w.resource.id as string;
    const u = await store.update('Patient', id, { ...anna, id, gender: 'female' } as Resource);
    expect(u.versionId).toBe(2);
    expect(u.created).toBe(false);
    expect((await store.vread('Patient', id, 1))?.resource).not.toHaveProperty('gender');
    expect((await store.vread('Patient', id, 2))?.resource).toHaveProperty('gender', 'female');
    expect(u.lastUpdated >= w.lastUpdated).toBe(true);
  });

  test('If-Match with a stale version throws 412 and changes nothing', async () => {
    const w = await store.create('Patient', anna);
    const id = w.resource.id as string;
    await store.update('Patient', id, { ...anna, id } as Resource, { ifMatch: 1 });
    await expect(
      store.update('Patient', id, { ...anna, id } as Resource, { ifMatch: 1 }),
    ).rejects.toMatchObject({
      status: 412,
    });
    expect((await store.read('Patient', id))?.versionId).toBe(2);
  });

  test('concurrent unconditional updates all land, each as its own version', async () => {
    const w = await store.create('Patient', anna);
    const id = w.resource.id as string;
    const rs = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store.update('Patient', id, { ...anna, id, birthDate: `200${i}` } as Resource),
      ),
    );
    expect(rs.map((r) => r.versionId).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const h = await store.historyOf({ type: 'Patient', id, count: 100, offset: 0 });
    expect(h.total).toBe(11);
  });

  test('delete writes a tombstone version; deleting again is a no-op', async () => {
    const w = await store.create('Patient', anna);
    const id = w.resource.id as string;
    expect((await store.delete('Patient', id)).versionId).toBe(2);
    const doc = await store.read('Patient', id);
    expect(doc?.deleted).toBe(true);
    expect(doc?.resource).toBeNull();
    expect((await store.delete('Patient', id)).versionId).toBeUndefined();
    const h = await store.historyOf({ id, count: 10, offset: 0 });
    expect(h.entries.map((e) => e.method)).toEqual(['DELETE', 'POST']);
  });

  test('modify applies a change to the current version atomically', async () => {
    const w = await store.create('Patient', anna);
    const id = w.resource.id as string;
    const rs = await Promise.all(
      Array.from({ length: 5 }, () =>
        store.modify('Patient', id, (cur) => {
          const p = cur as Patient;
          return { ...p, multipleBirthInteger: (p.multipleBirthInteger ?? 0) + 1 } as Resource;
        }),
      ),
    );
    expect(rs.length).toBe(5);
    expect(((await store.read('Patient', id))?.resource as Patient).multipleBirthInteger).toBe(5);
  });

  test('conditional create with a guard makes one resource under concurrency', async () => {
    const find = async (): Promise<string[]> =>
      (
        await store.find(
          'Patient',
          { deleted: false, 'resource.gender': 'unknown' },
          { projection: { _id: 1 } },
        )
      ).map((d) => d._id);
    const rs = await Promise.all(
      Array.from({ length: 8 }, () =>
        store.createIfNoneExist(
          'Patient',
          { ...anna, gender: 'unknown' } as Resource,
          'gender=unknown',
          find,
        ),
      ),
    );
    expect(rs.filter((r) => !('existing' in r))).toHaveLength(1);
    expect(await find()).toHaveLength(1);
  });

  test('a missing resource cannot be modified (404)', async () => {
    await expect(store.modify('Patient', 'nope', (r) => r)).rejects.toBeInstanceOf(FhirError);
  });
});
