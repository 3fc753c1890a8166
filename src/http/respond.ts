import type { NextFunction, Request, Response } from 'express';
import type { OperationOutcome, Resource } from 'fhir/r4';
import type { Logger } from 'pino';
import { FhirError, issue, notAcceptable } from '../fhir/errors';
import { queryParam } from './query';

const FHIR_JSON = 'application/fhir+json';

const FORMAT_ALIASES: Record<string, string | null> = {
  json: FHIR_JSON,
  'application/json': 'application/json',
  'application/fhir+json': FHIR_JSON,
  'application/json+fhir': FHIR_JSON,
  xml: null,
  'text/xml': null,
  'application/xml': null,
  'application/fhir+xml': null,
  ttl: null,
  'text/turtle': null,
};

/**
 * The response media type from _format (which wins, http.html#mime-type) or Accept. Only JSON is
 * served; asking for XML or Turtle alone is 406, not a silent JSON answer.
 */
export function responseType(req: Request): string {
  const format = queryParam(req, '_format');
  if (format !== undefined) {
    const t = FORMAT_ALIASES[format.trim().toLowerCase()];
    if (t === undefined || t === null)
      throw notAcceptable(`_format ${format} is not supported; this server speaks JSON`);
    return t;
  }
  const accept = req.get('accept');
  if (!accept) return FHIR_JSON;
  const types = accept.split(',').map((s) => s.split(';')[0]?.trim().toLowerCase() ?? '');
  for (const t of types) {
    if (t === FHIR_JSON || t === 'application/json+fhir' || t === '*/*' || t === 'application/*')
      return FHIR_JSON;
    if (t === 'application/json') return 'application/json';
  }
  if (types.some((t) => t === 'text/html' || t === 'text/*' || t === 'text/plain')) return FHIR_JSON;
  throw notAcceptable(`None of the accepted types (${accept}) can be produced; this server speaks JSON`);
}

function pretty(req: Request): boolean {
  return queryParam(req, '_pretty') === 'true';
}

/**
 * Sends a FHIR JSON body. `Content-Type` follows the negotiated type. Written with `res.end` and an
 * explicit length rather than Express's `res.send`, which copies the text into a Buffer and checks
 * freshness on every answer (conditional reads are answered by the handlers themselves); Node then
 * writes the headers and the body in one go.
 */
export function sendJson(req: Request, res: Response, status: number, body: unknown): void {
  let type = FHIR_JSON;
  try {
    type = responseType(req);
  } catch {
    // Errors are rendered even when negotiation failed.
  }
  res.statusCode = status;
  res.setHeader('Content-Type', `${type}; charset=utf-8`);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const text = JSON.stringify(body, null, pretty(req) ? 2 : undefined);
  res.setHeader('Content-Length', Buffer.byteLength(text, 'utf8'));
  res.end(text, 'utf8');
}

export function outcome(
  severity: 'information' | 'warning' | 'error' | 'fatal',
  code: NonNullable<OperationOutcome['issue'][number]['code']>,
  diagnostics: string,
): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [issue(code, diagnostics, severity)] };
}

export function sendResource(req: Request, res: Response, status: number, resource: Resource): void {
  sendJson(req, res, status, resource);
}

/** The one place errors become HTTP answers. Unknown errors are 500 without internals. */
export function errorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let fe: FhirError;
    if (err instanceof FhirError) {
      fe = err;
    } else if (isBodyParserError(err)) {
      fe = new FhirError(err.status, [issue(err.status === 413 ? 'too-costly' : 'invalid', err.message)]);
    } else {
      log.error({ err, requestId: res.get('x-request-id') }, 'unhandled error');
      fe = new FhirError(500, [
        issue(
          'exception',
          `Internal server error; quote request id ${res.get('x-request-id') ?? ''} when reporting it`,
        ),
      ]);
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [k, v] of Object.entries(fe.headers)) res.set(k, v);
    res.locals.outcome = fe;
    sendJson(req, res, fe.status, fe.toOperationOutcome());
  };
}

function isBodyParserError(e: unknown): e is { status: number; message: string } {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { status?: unknown }).status === 'number' &&
    ((e as { status: number }).status === 400 || (e as { status: number }).status === 413)
  );
}
