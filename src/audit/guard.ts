import type { NextFunction, Request, Response } from 'express';
import { methodNotAllowed } from '../fhir/errors';

const AUDIT_PATH = /^\/AuditEvent(?:\/([^/]*))?(\/.*)?$/;

/** What may be done on an AuditEvent path: read, search and the $verify operation, nothing else. */
function allowedOn(path: string): string | undefined {
  const m = AUDIT_PATH.exec(path);
  if (!m) return undefined;
  const [, second, rest] = m;
  if (second === '_search' && rest === undefined) return 'POST';
  if (second === '$verify' && rest === undefined) return 'GET, POST';
  return 'GET, HEAD';
}

/**
 * The audit log cannot be changed over the API: create, update, patch and delete of AuditEvents,
 * also in their conditional forms, answer 405. One guard for the whole router, ahead of the routes.
 */
export function auditWriteGuard(req: Request, _res: Response, next: NextFunction): void {
  const allow = allowedOn(req.path);
  if (
    allow !== undefined &&
    !allow.split(', ').includes(req.method) &&
    !(req.method === 'HEAD' && allow.includes('GET'))
  )
    throw methodNotAllowed(`AuditEvents cannot be changed or deleted (${req.method} ${req.path})`, allow);
  next();
}

/** For batch/transaction entries: throws 405 when an entry would write an AuditEvent. */
export function assertNotAuditWrite(resourceType: string | undefined, method: string): void {
  if (resourceType === 'AuditEvent' && !['GET', 'HEAD'].includes(method.toUpperCase()))
    throw methodNotAllowed('AuditEvents cannot be changed or deleted', 'GET, HEAD');
}
