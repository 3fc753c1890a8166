import express, { type NextFunction, type Request, type Response } from 'express';
import { accessReportHandler, isCsvReportRequest } from './audit/access-report';
import { auditWriteGuard } from './audit/guard';
import { auditMiddleware } from './audit/middleware';
import { verifyHandler } from './audit/verify';
import { authLayer } from './auth/middleware';
import { methodNotAllowed, notFound } from './fhir/errors';
import { RouteTable } from './http/routes';
import { CONSOLE_PATH, consoleCollides, consoleRouter } from './http/console';
import { flatQueryParser } from './http/query';
import { requestId } from './http/request-id';
import { errorHandler, responseType } from './http/respond';
import { metadataHandler, type Features } from './interactions/capabilities';
import type { AppContext } from './interactions/context';
import { bundleHandler } from './interactions/bundle';
import * as crud from './interactions/crud';
import { history } from './interactions/history';
import * as search from './interactions/search';
import { everything } from './operations/everything';
import * as bulk from './operations/export';
import * as terminology from './operations/terminology';
import { validateNeedsPost, validateOperation } from './operations/validate';
import * as viewExport from './operations/view-export';
import { isViewRunRequest, viewRun } from './operations/view-run';

type Handler = (ctx: AppContext, req: Request, res: Response) => Promise<void>;

/**
 * The Express application. Middleware order is the security story, read top-down:
 * request id -> access log -> audit -> security headers, CORS, auth -> content negotiation -> routes -> 404/405 -> the one error renderer.
 */
export function createApp(ctx: AppContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Flat, string-only query parsing: `name[$ne]=x` stays a string, never an object.
  app.set('query parser', flatQueryParser);

  app.use(requestId);
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      ctx.log.info(
        {
          requestId: res.locals.requestId as string,
          method: req.method,
          url: req.originalUrl.length > 2000 ? `${req.originalUrl.slice(0, 2000)}...` : req.originalUrl,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'request',
      );
    });
    next();
  });

  // The records console (console/, built to console/dist): static files that hold no data and call
  // the API below with the user's own token; before audit and auth, so loading it records nothing.
  if (!consoleCollides(ctx.config.mountPath)) app.use(CONSOLE_PATH, consoleRouter({ config: ctx.config }));

  // Every answer waits until its AuditEvent is durable (AUDIT=on); before auth, so refusals are audited.
  if (ctx.config.audit) {
    app.use(
      auditMiddleware({
        recorder: ctx.audit,
        source: ctx.config.auditSource,
        mountPath: ctx.config.mountPath,
        log: ctx.log,
      }),
    );
  }

  // Security headers, CORS, SMART discovery and the bearer token (AUTH=smart): after the request id,
  // access log and audit, so refusals are logged and audited; before any FHIR route.
  app.use(
    authLayer({
      config: ctx.config,
      registry: ctx.registry,
      indexOf: (r, only) => ctx.store.indexOf(r, only),
      log: ctx.log,
    }),
  );

  const router = express.Router({ caseSensitive: true, strict: false });
  const h =
    (fn: Handler) =>
    (req: Request, res: Response): Promise<void> =>
      fn(ctx, req, res);
  // Negotiate before doing any work: a client that accepts only XML gets 406 up front.
  router.use((req: Request, _res: Response, next: NextFunction) => {
    if (
      !isCsvReportRequest(req) &&
      !bulk.isExportFileRequest(req) &&
      !isViewRunRequest(req) &&
      !viewExport.isViewExportFileRequest(req)
    )
      responseType(req);
    next();
  });
  // The audit log is read-only over the API (405 for any write, conditional forms included).
  router.use(auditWriteGuard);
  const routes = new RouteTable(router);
  routes.add('get', '/AuditEvent/$verify', verifyHandler(ctx.audit));
  routes.add('post', '/AuditEvent/$verify', verifyHandler(ctx.audit));
  routes.add('get', '/Patient/:id/$access-report', accessReportHandler(ctx));
  // Bulk export and $everything: before the generic /:type/:id routes (Express 5 takes `$` literally).
  for (const [path, level] of [
    ['/$export', 'system'],
    ['/Patient/$export', 'patient'],
    ['/Group/:id/$export', 'group'],
  ] as const) {
    routes.add('get', path, h(bulk.kickOff(level)));
    routes.add('post', path, h(bulk.kickOff(level)));
  }
  routes.add('get', '/$export-status/:id', h(bulk.exportStatus));
  routes.add('delete', '/$export-status/:id', h(bulk.exportCancel));
  routes.add('get', '/$export-file/:id/:name', h(bulk.exportFile));
  routes.add('get', '/Patient/:id/$everything', h(everything));
  // SQL-on-FHIR v2 ViewDefinition $run (operations/view-run.ts): rows as JSON, NDJSON or CSV.
  routes.add('post', '/ViewDefinition/$run', h(viewRun));
  routes.add('get', '/ViewDefinition/:id/$run', h(viewRun));
  routes.add('post', '/ViewDefinition/:id/$run', h(viewRun));
  // ViewDefinition/$export (operations/view-export.ts): async, on the bulk export job runner.
  routes.add('post', '/ViewDefinition/$export', h(viewExport.viewExportKickOff));
  routes.add('get', '/ViewDefinition/$export-status/:id', h(viewExport.viewExportStatus));
  routes.add('delete', '/ViewDefinition/$export-status/:id', h(viewExport.viewExportCancel));
  routes.add('get', '/ViewDefinition/$export-file/:id/:name', h(viewExport.viewExportFile));
  // Terminology and $validate (operations/terminology.ts, operations/validate.ts).
  for (const [path, fn] of [
    ['/ValueSet/$expand', terminology.expand],
    ['/ValueSet/:id/$expand', terminology.expand],
    ['/ValueSet/$validate-code', terminology.valueSetValidateCode],
    ['/ValueSet/:id/$validate-code', terminology.valueSetValidateCode],
    ['/CodeSystem/$validate-code', terminology.codeSystemValidateCode],
    ['/CodeSystem/$lookup', terminology.lookup],
    ['/CodeSystem/$subsumes', terminology.subsumes],
  ] as const) {
    routes.add('get', path, h(fn));
    routes.add('post', path, h(fn));
  }
  routes.add('post', '/:type/$validate', h(validateOperation));
  routes.add('get', '/:type/$validate', h(validateNeedsPost));
  routes.add('get', '/:type/:id/$validate', h(validateOperation));
  routes.add('post', '/:type/:id/$validate', h(validateOperation));

  routes.add('get', '/metadata', metadataHandler(ctx, search.FEATURES));
  routes.add('get', '/_history', h(history));
  routes.add('get', '/', h(search.systemSearch));
  routes.add('post', '/', h(bundleHandler));
  routes.add('get', '/:type/_history', h(history));
  routes.add('post', '/:type/_search', h(search.typeSearchPost));
  routes.add('get', '/:type', h(search.typeSearch));
  routes.add('post', '/:type', h(crud.create));
  routes.add('put', '/:type', h(crud.conditionalUpdate));
  routes.add('patch', '/:type', h(crud.conditionalPatch));
  routes.add('delete', '/:type', h(crud.conditionalDelete));
  routes.add('get', '/:type/:id/_history/:vid', h(crud.vread));
  routes.add('get', '/:type/:id/_history', h(history));
  routes.add('get', '/:type/:id', h(crud.read));
  routes.add('put', '/:type/:id', h(crud.update));
  routes.add('patch', '/:type/:id', h(crud.patch));
  routes.add('delete', '/:type/:id', h(crud.remove));
  routes.add('get', '/Patient/:id/:compartmentType', h(search.compartmentSearch));

  router.use((req: Request) => {
    const allowed = routes.allowed(req.path);
    if (allowed.length > 0)
      throw methodNotAllowed(`${req.method} is not allowed on ${req.path}`, allowed.join(', '));
    throw notFound(`No FHIR interaction at ${req.method} ${req.path}`);
  });

  app.use(ctx.config.mountPath, router);
  app.use(() => {
    throw notFound(`Nothing here; the FHIR API is at ${ctx.config.baseUrl}`);
  });
  app.use(errorHandler(ctx.log));
  return app;
}

export type { Features };
