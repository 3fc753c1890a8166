import path from 'node:path';
import { loadAuthConfig, type AuthConfig } from './auth/config';

export interface Config {
  port: number;
  host: string;
  /** Public base URL of the FHIR endpoint, no trailing slash, e.g. http://localhost:8080/fhir */
  baseUrl: string;
  /** Path the FHIR API is mounted on, taken from baseUrl (e.g. /fhir). */
  mountPath: string;
  mongodbUri?: string;
  mongodbDb: string;
  /** Bulk export (BULK_*; src/bulk/). */
  bulk: BulkConfig;
  dataDir: string;
  profilesDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  maxBody: number;
  maxJsonDepth: number;
  /** VALIDATION: strict (base + claimed profiles enforced), lenient (base only), off (JSON rules only). */
  validation: 'strict' | 'lenient' | 'off';
  /** AUDIT: record an AuditEvent for every interaction (default on). */
  audit: boolean;
  /** AUDIT_SOURCE: this server's identity in AuditEvent.source.observer (default: the BASE_URL host). */
  auditSource: string;
  /** AUTH, SMART_*, CORS_ORIGINS, ALLOW_NO_AUTH (src/auth/config.ts). */
  auth: AuthConfig;
}

export interface BulkConfig {
  /** BULK_DIR: where export output files are written (default DATA_DIR/exports). */
  dir: string;
  /** BULK_MAX_JOBS: export jobs queued or running at once; more kick-offs get 429. */
  maxJobs: number;
  /** BULK_CONCURRENCY: jobs that make progress at the same time (the others wait in the queue). */
  concurrency: number;
  /** BULK_FILE_MAX_RESOURCES: resources per NDJSON file before a new file is started. */
  fileMaxResources: number;
  /** BULK_FILE_MAX_BYTES: size after which a new NDJSON file is started. */
  fileMaxBytes: number;
  /** BULK_CHUNK: resources written between two yields to interactive requests. */
  chunk: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Byte sizes: plain bytes or with a kb/mb/gb suffix (1024-based). */
function bytes(env: NodeJS.ProcessEnv, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const m = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(raw.trim());
  if (!m) throw new ConfigError(`${name} must be a size like 16mb or 1048576, got "${raw}"`);
  const mult = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'] ?? 1;
  const n = Number(m[1]) * mult;
  if (n < 1024) throw new ConfigError(`${name} must be at least 1kb, got "${raw}"`);
  return n;
}

function validationMode(raw: string | undefined): Config['validation'] {
  const v = raw?.trim().toLowerCase() || 'strict';
  if (v !== 'strict' && v !== 'lenient' && v !== 'off')
    throw new ConfigError(`VALIDATION must be strict, lenient or off, got "${raw}"`);
  return v;
}

/** Reads and validates the environment. Throws ConfigError with one clear line. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = int(env, 'PORT', 8080, 0, 65535);
  const host = env.HOST?.trim() || '0.0.0.0';
  const displayHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  const rawBase = env.BASE_URL?.trim() || `http://${displayHost}:${port}/fhir`;
  let url: URL;
  try {
    url = new URL(rawBase);
  } catch {
    throw new ConfigError(`BASE_URL must be an absolute http(s) URL, got "${rawBase}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(`BASE_URL must be an http(s) URL, got "${rawBase}"`);
  if (url.search || url.hash) throw new ConfigError(`BASE_URL must not have a query or fragment`);
  const baseUrl = rawBase.replace(/\/+$/, '');
  const mountPath = url.pathname.replace(/\/+$/, '') || '/';
  const mongodbUri = env.MONGODB_URI?.trim() || undefined;
  if (mongodbUri && !/^mongodb(\+srv)?:\/\//.test(mongodbUri))
    throw new ConfigError('MONGODB_URI must start with mongodb:// or mongodb+srv://');
  const mongodbDb = env.MONGODB_DB?.trim() || 'fhir';
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(mongodbDb))
    throw new ConfigError(`MONGODB_DB must be a plain database name, got "${mongodbDb}"`);
  const dataDir = path.resolve(env.DATA_DIR?.trim() || './data');
  const bulk: BulkConfig = {
    dir: path.resolve(env.BULK_DIR?.trim() || path.join(dataDir, 'exports')),
    maxJobs: int(env, 'BULK_MAX_JOBS', 4, 1, 1000),
    concurrency: int(env, 'BULK_CONCURRENCY', 2, 1, 100),
    fileMaxResources: int(env, 'BULK_FILE_MAX_RESOURCES', 50_000, 1, 100_000_000),
    fileMaxBytes: bytes(env, 'BULK_FILE_MAX_BYTES', 64 * 1024 * 1024),
    chunk: int(env, 'BULK_CHUNK', 200, 1, 100_000),
  };
  const logLevel = (env.LOG_LEVEL?.trim().toLowerCase() || 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  const rawAudit = env.AUDIT?.trim().toLowerCase() || 'on';
  if (!['on', 'off'].includes(rawAudit)) throw new ConfigError(`AUDIT must be on or off, got "${env.AUDIT}"`);
  const auditSource = env.AUDIT_SOURCE?.trim() || url.host;
  let auth: AuthConfig;
  try {
    auth = loadAuthConfig(env, baseUrl);
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e));
  }
  return {
    port,
    host,
    baseUrl,
    mountPath,
    mongodbUri,
    mongodbDb,
    dataDir,
    bulk,
    profilesDir: path.resolve(env.PROFILES_DIR?.trim() || './profiles'),
    logLevel,
    maxBody: bytes(env, 'MAX_BODY', 16 * 1024 * 1024),
    maxJsonDepth: int(env, 'MAX_JSON_DEPTH', 64, 8, 1000),
    validation: validationMode(env.VALIDATION),
    audit: rawAudit === 'on',
    auditSource,
    auth,
  };
}
