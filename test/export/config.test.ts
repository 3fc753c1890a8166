import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';

describe('bulk export configuration', () => {
  it('defaults: BULK_DIR under DATA_DIR, 4 jobs, 2 at a time, 50000 resources or 64 MB per file, chunks of 200', () => {
    const c = loadConfig({ DATA_DIR: '/tmp/fhir-data' });
    expect(c.bulk).toEqual({
      dir: path.resolve('/tmp/fhir-data/exports'),
      maxJobs: 4,
      concurrency: 2,
      fileMaxResources: 50_000,
      fileMaxBytes: 64 * 1024 * 1024,
      chunk: 200,
    });
  });

  it('reads every BULK_ variable', () => {
    const c = loadConfig({
      BULK_DIR: '/tmp/exports',
      BULK_MAX_JOBS: '10',
      BULK_CONCURRENCY: '3',
      BULK_FILE_MAX_RESOURCES: '1000',
      BULK_FILE_MAX_BYTES: '8mb',
      BULK_CHUNK: '50',
    });
    expect(c.bulk).toEqual({
      dir: path.resolve('/tmp/exports'),
      maxJobs: 10,
      concurrency: 3,
      fileMaxResources: 1000,
      fileMaxBytes: 8 * 1024 * 1024,
      chunk: 50,
    });
  });

  it.each([
    ['BULK_MAX_JOBS', '0'],
    ['BULK_MAX_JOBS', 'many'],
    ['BULK_CONCURRENCY', '-1'],
    ['BULK_FILE_MAX_RESOURCES', '0'],
    ['BULK_FILE_MAX_BYTES', 'big'],
    ['BULK_CHUNK', '1.5'],
  ])('refuses %s=%s with a ConfigError', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});
