import type { Request, Response } from 'express';
import type { AuditEvent, Bundle, BundleEntry, OperationOutcome } from 'fhir/r4';
import { accessOf, restrict } from '../auth/policy';
import { checkId } from '../fhir/resource';
import { queryParam } from '../http/query';
import { responseType, sendJson } from '../http/respond';
import type { AppContext } from '../interactions/context';
import { SearchService } from '../interactions/search';
import { parseSearchRequest } from '../search/parse';
import { linkOf } from './chain';
import { noteAccess } from './note';
import { AUDIT_TYPE } from './recorder';

/** The report is bounded: a longer period must be asked for in parts (start/end). */
export const MAX_REPORT_ROWS = 10_000;

const CSV_FORMATS = new Set(['csv', 'text/csv']);

/** Whether the client asked for CSV (_format=csv or Accept: text/csv); content negotiation lets it pass. */
export function wantsCsv(req: Request): boolean {
  const format = queryParam(req, '_format');
  if (format !== undefined) return CSV_FORMATS.has(format.trim().toLowerCase());
  const accept = req.get('accept') ?? '';
  return accept.split(',').some((t) => t.split(';')[0]?.trim().toLowerCase() === 'text/csv');
}

/** True for GET [base]/Patient/[id]/$access-report asking for CSV (the one non-FHIR-JSON answer). */
export function isCsvReportRequest(req: Request): boolean {
  return /^\/Patient\/[^/]+\/\$access-report$/.test(req.path) && wantsCsv(req);
}

export interface AccessRow {
  recorded: string;
  who: string;
  client: string;
  fhirUser: string;
  address: string;
  action: string;
  interaction: string;
  resource: string;
  outcome: string;
  outcomeDesc: string;
  requestId: string;
  auditEvent: string;
  sequence: string;
}

const COLUMNS: Array<keyof AccessRow> = [
  'recorded',
  'who',
  'client',
  'fhirUser',
  'address',
  'action',
  'interaction',
  'resource',
  'outcome',
  'outcomeDesc',
  'requestId',
  'auditEvent',
  'sequence',
];

/** One line of the accounting: who, when, how, what, with what outcome. */
export function rowOf(e: AuditEvent): AccessRow {
  const requestor = e.agent.find((a) => a.requestor) ?? e.agent[0];
  const client = e.agent.find((a) => !a.requestor && a.type?.coding?.some((c) => c.code === '110153'));
  const resource = e.entity?.find((x) => x.role?.code === '4')?.what?.reference;
  const query = e.entity?.find((x) => x.role?.code === '24');
  const decoded = query?.query ? Buffer.from(query.query, 'base64').toString('utf8') : undefined;
  const what =
    resource ??
    (query ? `${query.description ?? ''}?${decoded ?? ''}` : (e.entity?.[0]?.what?.reference ?? ''));
  return {
    recorded: e.recorded,
    who: requestor?.who?.identifier?.value ?? requestor?.who?.display ?? '',
    client: client?.who?.identifier?.value ?? '',
    fhirUser: requestor?.who?.reference ?? '',
    address: requestor?.network?.address ?? '',
    action: e.action ?? '',
    interaction: e.subtype?.map((s) => s.code ?? '').join(' ') ?? '',
    resource: what,
    outcome: e.outcome ?? '',
    outcomeDesc: e.outcomeDesc ?? '',
    requestId: e.entity?.find((x) => x.type?.code === 'XrequestId')?.what?.identifier?.value ?? '',
    auditEvent: e.id ?? '',
    sequence: e.extension ? String(linkOf(e)?.sequence ?? '') : '',
  };
}

/** RFC 4180 fields; a leading = + - @ is defused so that spreadsheets do not run it as a formula. */
function csvField(v: string): string {
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(rows: AccessRow[]): string {
  const lines = [COLUMNS.join(',')];
  for (const r of rows) lines.push(COLUMNS.map((c) => csvField(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * GET [base]/Patient/[id]/$access-report?start=&end=: who accessed the patient's records, when
 * and how (an accounting of disclosures), from the AuditEvents that name the patient, oldest
 * first. A searchset Bundle of those AuditEvents, or CSV (one row each) with _format=csv or
 * Accept: text/csv. start and end take FHIR dates (inclusive, at their precision).
 */
export function accessReportHandler(ctx: AppContext) {
  const searcher = new SearchService(ctx);
  return async (req: Request, res: Response): Promise<void> => {
    const id = checkId(req.params.id as string);
    noteAccess(res, {
      interaction: 'operation',
      operation: 'access-report',
      resourceType: 'Patient',
      id,
      patients: [id],
    });
    const csv = wantsCsv(req);
    if (!csv) responseType(req);
    const policy = accessOf(res);
    policy.require(AUDIT_TYPE, 's');
    const params: Array<[string, string]> = [['patient', `Patient/${id}`]];
    const start = queryParam(req, 'start');
    const end = queryParam(req, 'end');
    if (start) params.push(['date', `ge${start}`]);
    if (end) params.push(['date', `le${end}`]);
    const request = parseSearchRequest(AUDIT_TYPE, params, ctx.registry, { strict: true });
    const { filter: compiled } = await searcher.compile(request, policy);
    const filter = restrict(compiled, policy, AUDIT_TYPE, 's');
    const docs = filter
      ? await ctx.store.find(
          AUDIT_TYPE,
          { ...filter, deleted: false },
          { sort: { seq: 1 }, limit: MAX_REPORT_ROWS + 1 },
        )
      : [];
    const truncated = docs.length > MAX_REPORT_ROWS;
    const events = docs.slice(0, MAX_REPORT_ROWS).map((d) => d.resource as AuditEvent);
    noteAccess(res, { count: events.length });
    if (truncated)
      res.set('Warning', `199 - "report truncated at ${MAX_REPORT_ROWS} rows; narrow start/end"`);
    if (csv) {
      res.status(200);
      res.set('Content-Type', 'text/csv; charset=utf-8');
      res.set('Content-Disposition', `attachment; filename="access-report-${id}.csv"`);
      res.send(toCsv(events.map(rowOf)));
      return;
    }
    const entry: BundleEntry[] = events.map((e) => ({
      fullUrl: `${ctx.config.baseUrl}/${AUDIT_TYPE}/${e.id ?? ''}`,
      resource: e,
      search: { mode: 'match' },
    }));
    if (truncated) {
      const warning: OperationOutcome = {
        resourceType: 'OperationOutcome',
        issue: [
          {
            severity: 'warning',
            code: 'too-costly',
            diagnostics: `The report holds the first ${MAX_REPORT_ROWS} accesses only; narrow start/end`,
          },
        ],
      };
      entry.push({ resource: warning, search: { mode: 'outcome' } });
    }
    const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total: events.length, entry };
    if (entry.length === 0) delete bundle.entry;
    sendJson(req, res, 200, bundle);
  };
}
