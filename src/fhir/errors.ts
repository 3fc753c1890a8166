import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4';

export type IssueSeverity = OperationOutcomeIssue['severity'];
export type IssueCode = OperationOutcomeIssue['code'];

/**
 * The one error currency of the server: an HTTP status plus OperationOutcome issues.
 * Thrown anywhere, rendered once at the HTTP edge (http/outcome.ts).
 */
export class FhirError extends Error {
  readonly status: number;
  readonly issues: OperationOutcomeIssue[];
  /** Extra response headers (e.g. WWW-Authenticate, Allow). */
  readonly headers: Record<string, string>;

  constructor(status: number, issues: OperationOutcomeIssue[], headers: Record<string, string> = {}) {
    super(issues.map((i) => i.diagnostics ?? i.details?.text ?? i.code).join('; '));
    this.name = 'FhirError';
    this.status = status;
    this.issues = issues;
    this.headers = headers;
  }

  toOperationOutcome(): OperationOutcome {
    return { resourceType: 'OperationOutcome', issue: this.issues };
  }
}

export function issue(
  code: IssueCode,
  diagnostics: string,
  severity: IssueSeverity = 'error',
  expression?: string[],
): OperationOutcomeIssue {
  const i: OperationOutcomeIssue = { severity, code, diagnostics };
  if (expression && expression.length > 0) i.expression = expression;
  return i;
}

export const badRequest = (msg: string, code: IssueCode = 'invalid', expression?: string[]): FhirError =>
  new FhirError(400, [issue(code, msg, 'error', expression)]);
export const notFound = (msg: string): FhirError => new FhirError(404, [issue('not-found', msg)]);
export const gone = (msg: string): FhirError => new FhirError(410, [issue('deleted', msg)]);
export const conflict = (msg: string): FhirError => new FhirError(409, [issue('conflict', msg)]);
export const preconditionFailed = (msg: string): FhirError => new FhirError(412, [issue('conflict', msg)]);
export const unprocessable = (msg: string, expression?: string[]): FhirError =>
  new FhirError(422, [issue('processing', msg, 'error', expression)]);
export const notSupported = (msg: string): FhirError => new FhirError(501, [issue('not-supported', msg)]);
export const methodNotAllowed = (msg: string, allow: string): FhirError =>
  new FhirError(405, [issue('not-supported', msg)], { Allow: allow });
export const tooLarge = (msg: string): FhirError => new FhirError(413, [issue('too-costly', msg)]);
export const unsupportedMediaType = (msg: string): FhirError =>
  new FhirError(415, [issue('not-supported', msg)]);
export const notAcceptable = (msg: string): FhirError => new FhirError(406, [issue('not-supported', msg)]);
export const unavailable = (msg: string): FhirError => new FhirError(503, [issue('transient', msg)]);

export function isFhirError(e: unknown): e is FhirError {
  return e instanceof FhirError;
}
