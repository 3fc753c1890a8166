import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Observation } from 'fhir/r4';
import { IndexExtractor } from '../../src/search/extract';
import { hotSearchIndexes } from '../../src/search/indexes';
import type { Backend, BaseDoc, Collection, IndexSpec } from '../../src/store/backend';
import { EmbeddedBackend } from '../../src/store/embedded/engine';
import { ResourceStore } from '../../src/store/resource-store';
import { registry } from './helpers';

describe('hot search indexes (MongoDB)', () => {
  it('token code/identifier with system, and patient references, each with lastUpdated', () => {
    const obs = hotSearchIndexes(registry, 'Observation');
    expect(obs).toEqual(
      expect.arrayContaining([
        { name: 'hot_code', key: { 'idx.code.c': 1, 'idx.code.s': 1, lastUpdated: -1 } },
        { name: 'hot_identifier', key: { 'idx.identifier.c': 1, 'idx.identifier.s': 1, lastUpdated: -1 } },
        { name: 'hot_subject', key: { 'idx.subject.r': 1, lastUpdated: -1 } },
        { name: 'hot_patient', key: { 'idx.patient.r': 1, lastUpdated: -1 } },
      ]),
    );
    // Patient has identifier but no code, subject or patient parameter.
    expect(hotSearchIndexes(registry, 'Patient').map((s) => s.name)).toEqual(['hot_identifier']);
  });

  it('the store creates them on MongoDB only', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hot-idx-'));
    const engine = await EmbeddedBackend.open({ dataDir: dir });
    try {
      const created: Array<[string, IndexSpec]> = [];
      const asKind = (kind: Backend['kind']): Backend => {
        const backend = Object.create(engine) as Backend & { kind: Backend['kind'] };
        Object.defineProperty(backend, 'kind', { value: kind });
        backend.collection = <T extends BaseDoc>(name: string): Collection<T> => {
          const c = engine.collection<T>(name);
          return Object.assign(Object.create(c) as Collection<T>, {
            createIndex: async (spec: IndexSpec) => {
              created.push([name, spec]);
              await c.createIndex(spec);
            },
          });
        };
        return backend;
      };
      const obs: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
      const make = (kind: Backend['kind']): ResourceStore =>
        new ResourceStore({
          backend: asKind(kind),
          extractor: new IndexExtractor(registry),
          searchIndexes: (type) => hotSearchIndexes(registry, type),
        });
      await make('embedded').create('Observation', obs);
      expect(created.map(([, s]) => s.name).filter((n) => n.startsWith('hot_'))).toEqual([]);
      await make('mongodb').create('Observation', obs);
      expect(created.filter(([c, s]) => c === 'Observation' && s.name.startsWith('hot_')).length).toBe(4);
    } finally {
      await engine.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
