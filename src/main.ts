import http from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { createApp } from './app';
import { AUDIT_TYPE, CHAIN_COLLECTION, type ChainHead } from './audit/documents';
import { AuditLog } from './audit/log';
import { AuditLogRecorder, AuditRecorder, type AuditSink } from './audit/recorder';
import { bulkRunnerFor } from './bulk/runner';
import { ConfigError, loadConfig, type Config } from './config';
import { loadDefinitions, type DefinitionsRegistry } from './fhir/definitions';
import { issue, type IssueCode } from './fhir/errors';
import type { AppContext } from './interactions/context';
import { SearchService } from './interactions/search';
import { createLogger } from './logger';
import { IndexExtractor } from './search/extract';
import type { Backend } from './store/backend';
import { EmbeddedBackend } from './store/embedded/engine';
import { connectMongo } from './store/mongo';
import { OverlayBackend } from './store/overlay';
import { ResourceStore } from './store/resource-store';
import { hotSearchIndexes } from './search/indexes';
import { ViewAwareValidator } from './views/validate';

export interface Server {
  ctx: AppContext;
  http: http.Server;
  close(): Promise<void>;
}

/**
 * MongoDB when configured; otherwise the embedded engine, with the audit log beside it in its own
 * append-only file (DATA_DIR/audit.log), served as the AuditEvent collection (store/overlay.ts).
 */
async function openBackend(
  config: Config,
  registry: DefinitionsRegistry,
  log: Logger,
): Promise<{ backend: Backend; auditLog?: AuditLog }> {
  if (config.mongodbUri) {
    return { backend: await connectMongo(config.mongodbUri, config.mongodbDb, (msg) => log.info(msg)) };
  }
  const engine = await EmbeddedBackend.open({
    dataDir: config.dataDir,
    autoIndexPrefix: 'idx.',
    freeze: process.env.NODE_ENV !== 'production',
    log: (msg, fields) => log.info(fields ?? {}, msg),
  });
  try {
    const started = Date.now();
    const { auditLog, tornTail } = await AuditLog.open(path.join(config.dataDir, 'audit.log'), registry);
    const moved = await auditLog.migrateFrom(engine);
    log.info(
      {
        events: auditLog.size,
        tornTailDropped: tornTail,
        movedFromDocuments: moved,
        ms: Date.now() - started,
      },
      'audit log opened',
    );
    return { backend: new OverlayBackend(engine, auditLog.overlay()), auditLog };
  } catch (e) {
    await engine.close();
    throw e;
  }
}

/** Assembles the server from a config: definitions -> store -> app. Does not listen. */
export async function buildContext(config: Config, log: Logger): Promise<AppContext> {
  const { registry, errors } = loadDefinitions(config.profilesDir);
  for (const e of errors) log.warn({ file: e }, 'could not load a conformance resource from PROFILES_DIR');
  log.info(registry.stats(), 'definitions loaded');
  const { backend, auditLog } = await openBackend(config, registry, log);
  const extractor = new IndexExtractor(registry, {
    onError: (type, code, e) =>
      log.debug({ type, code, err: String(e) }, 'search parameter extraction failed'),
  });
  const store = new ResourceStore({
    backend,
    extractor,
    searchIndexes: (type) => hotSearchIndexes(registry, type),
  });
  await store.init();
  const reindexStarted = Date.now();
  const rebuilt = await store.reindexStale([AUDIT_TYPE]);
  if (rebuilt.length > 0)
    log.info(
      { types: rebuilt, ms: Date.now() - reindexStarted },
      'search indexes rebuilt (search parameters or index format changed)',
    );
  auditLog?.anchorIn(store.backend.collection<ChainHead>(CHAIN_COLLECTION), (e) =>
    log.warn({ err: String(e) }, 'could not anchor the audit chain head'),
  );
  const audit: AuditSink = auditLog ? new AuditLogRecorder(auditLog) : new AuditRecorder(store, registry);
  // ViewAwareValidator: the R4 ProfileValidator plus the SQL-on-FHIR ViewDefinition model (views/validate.ts).
  const base = {
    config,
    registry,
    store,
    log,
    validator: new ViewAwareValidator(registry, config.validation),
    audit,
  };
  return { ...base, searcher: new SearchService(base) };
}

/**
 * Requests that Node's HTTP parser refuses before Express sees them (a request line or headers over
 * the 16 KB limit, malformed HTTP) get an OperationOutcome too, not Node's bare 431/400.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, code, diagnostics]: [number, IssueCode, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'too-long', 'Request line or headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'timeout', 'Request timeout']
        : [400, 'structure', 'Malformed HTTP request'];
  const body = JSON.stringify({ resourceType: 'OperationOutcome', issue: [issue(code, diagnostics)] });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nContent-Type: application/fhir+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export async function startServer(config: Config, log: Logger): Promise<Server> {
  if (config.auth.mode === 'none')
    log.warn('AUTH=none: no bearer token is required; every client may read and write everything');
  else log.info({ issuer: config.auth.smart?.issuer, audience: config.auth.smart?.audience }, 'AUTH=smart');
  const ctx = await buildContext(config, log);
  const app = createApp(ctx);
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const addr = server.address();
  log.info(
    {
      port: typeof addr === 'object' && addr ? addr.port : config.port,
      baseUrl: config.baseUrl,
      store: ctx.store.backend.kind,
    },
    'FHIR server listening',
  );
  // Export jobs that were queued or running when the server last stopped go on from their checkpoint.
  const bulk = bulkRunnerFor(ctx);
  await bulk.start();
  let closing: Promise<void> | undefined;
  return {
    ctx,
    http: server,
    close: () =>
      (closing ??= (async () => {
        // Stop accepting, let in-flight requests finish (bounded), then flush the store.
        const done = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), 10_000);
        await done;
        clearTimeout(timer);
        await bulk.stop();
        await ctx.store.backend.close();
      })()),
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`configuration error: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger(config.logLevel);
  let server: Server;
  try {
    server = await startServer(config, log);
  } catch (e) {
    log.fatal({ err: e }, 'could not start');
    process.stderr.write(`could not start: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  const stop = (signal: string): void => {
    log.info({ signal }, 'shutting down');
    server.close().then(
      () => {
        log.info('stopped cleanly');
        process.exit(0);
      },
      (e: unknown) => {
        log.error({ err: e }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) void main();
