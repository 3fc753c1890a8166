import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { accessOf } from '../auth/policy';
import { FhirError, issue } from '../fhir/errors';
import type { AuditFacts } from './build';
import { inferNote, mergeNotes } from './infer';
import { auditNoteOf, type AuditEntryNote, type AuditNote } from './note';
import type { AuditSink } from './recorder';

export interface AuditMiddlewareOptions {
  recorder: AuditSink;
  /** AUDIT_SOURCE. */
  source: string;
  /** Where the FHIR API is mounted (paths are interpreted relative to it). */
  mountPath: string;
  log: Logger;
  now?: () => Date;
}

type End = (...args: unknown[]) => Response;

/** The status recorded for a request whose client closed the connection before the answer. */
const CLIENT_CLOSED = 499;

/**
 * Holds every response until its AuditEvent(s) are durable: `res.end` is wrapped, so the status
 * line and body leave only after the recorder has written them. If the audit cannot be written
 * the client gets 503 instead of the answer (nothing is acknowledged without its audit record).
 * Installed before authentication, so that 401/403 answers are audited like any other.
 */
export function auditMiddleware(o: AuditMiddlewareOptions): RequestHandler {
  const now = o.now ?? ((): Date => new Date());
  const mount = o.mountPath === '/' ? '' : o.mountPath;
  return (req: Request, res: Response, next: NextFunction): void => {
    const end = res.end.bind(res) as End;
    let held = false;
    const wrapped = (...args: unknown[]): Response => {
      if (held) return end(...args);
      held = true;
      let events: AuditFacts[];
      try {
        events = factsFor(req, res, o.source, mount, now());
      } catch (e) {
        o.log.error({ err: e, requestId: res.locals.requestId as string }, 'could not build the AuditEvent');
        refuse(res, end);
        return res;
      }
      o.recorder.record(events).then(
        () => end(...args),
        (e: unknown) => {
          o.log.error({ err: e, requestId: res.locals.requestId as string }, 'audit record not durable');
          refuse(res, end);
        },
      );
      return res;
    };
    res.end = wrapped as unknown as Response['end'];
    // A client that hangs up before the answer is ready still accessed something: record the
    // attempt (status 499, outcome 4). Nothing is acknowledged, so nothing waits for it.
    res.on('close', () => {
      if (held) return;
      held = true;
      try {
        const events = factsFor(req, res, o.source, mount, now(), CLIENT_CLOSED);
        o.recorder.record(events).catch((e: unknown) => {
          o.log.error({ err: e, requestId: res.locals.requestId as string }, 'audit record not durable');
        });
      } catch (e) {
        o.log.error({ err: e, requestId: res.locals.requestId as string }, 'could not build the AuditEvent');
      }
    });
    next();
  };
}

const WITHHELD = [
  'etag',
  'last-modified',
  'location',
  'content-location',
  'content-type',
  'content-length',
  'content-disposition',
  'warning',
];

/** 503 in place of the answer; if part of the answer already left, the connection is cut. */
function refuse(res: Response, end: End): void {
  if (res.headersSent) {
    res.socket?.destroy();
    return;
  }
  // What described the withheld answer goes; security, CORS and request-id headers stay.
  for (const name of WITHHELD) res.removeHeader(name);
  const body = JSON.stringify(
    new FhirError(503, [
      issue('transient', 'The access could not be recorded in the audit log; nothing was acknowledged'),
    ]).toOperationOutcome(),
  );
  res.statusCode = 503;
  res.setHeader('Content-Type', 'application/fhir+json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  end(res.req.method === 'HEAD' ? undefined : body);
}

function outcomeText(res: Response): string | undefined {
  const fe = res.locals.outcome as FhirError | undefined;
  return fe instanceof FhirError ? fe.message : undefined;
}

/** The facts of one request's AuditEvents: one, or for a Bundle one per entry plus one for the Bundle. */
export function factsFor(
  req: Request,
  res: Response,
  source: string,
  mount: string,
  at: Date,
  status = res.statusCode,
): AuditFacts[] {
  const url = req.originalUrl;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  // Outside the FHIR API (e.g. SMART discovery) there is no interaction to infer.
  const inFhir = path === mount || path.startsWith(`${mount}/`) || mount === '';
  const inferred: AuditNote = inFhir
    ? inferNote(req.method, path.slice(mount.length), q === -1 ? '' : url.slice(q + 1))
    : { interaction: 'operation' };
  const note = mergeNotes(inferred, auditNoteOf(res));
  const agent = accessOf(res).agent;
  const requestId = (res.locals.requestId as string | undefined) ?? '';
  const recorded = at.toISOString();
  const base = { agent, requestId, recorded, source };
  const text =
    status === CLIENT_CLOSED ? 'the client closed the connection before the answer' : outcomeText(res);
  const facts: AuditFacts[] = [
    { ...base, note, status, ...(text !== undefined ? { outcomeText: text } : {}) },
  ];
  const entries = res.locals.auditEntries as AuditEntryNote[] | undefined;
  if (Array.isArray(entries)) {
    for (const { status: entryStatus, ...entryNote } of entries)
      facts.push({ ...base, note: entryNote, status: entryStatus });
  }
  return facts;
}
