import { ID_PATTERN } from '../fhir/resource';
import type { AuditNote } from './note';

/**
 * What a request asked for, read from its method and URL: the audit of requests that never reached
 * a handler (401/403 from auth, 404/405 from routing, 406 from negotiation) or failed before the
 * handler noted anything. A handler's own note always wins over this.
 */
export function inferNote(method: string, path: string, query: string): AuditNote {
  const segs = path.split('/').filter((s) => s !== '');
  const m = method === 'HEAD' ? 'GET' : method;
  const [a, b, c, d] = segs;
  const type = a !== undefined && /^[A-Z][A-Za-z]{1,63}$/.test(a) ? a : undefined;
  const id = b !== undefined && ID_PATTERN.test(b) && !b.startsWith('_') ? b : undefined;
  const withQuery = (n: AuditNote): AuditNote => (query ? { ...n, query } : n);
  const op = segs.find((s) => s.startsWith('$'));
  if (op) {
    return {
      interaction: 'operation',
      operation: op.slice(1),
      resourceType: type,
      id: op === b ? undefined : id,
    };
  }
  if (segs.length === 0) {
    if (m === 'POST') return { interaction: 'transaction' };
    return withQuery({ interaction: 'search-system' });
  }
  if (a === 'metadata') return { interaction: 'capabilities' };
  if (a === '_history') return withQuery({ interaction: 'history-system' });
  if (!type) return withQuery({ interaction: m === 'GET' ? 'search-system' : 'operation' });
  if (segs.length === 1) {
    if (m === 'POST') return { interaction: 'create', resourceType: type };
    if (m === 'PUT') return withQuery({ interaction: 'update', resourceType: type });
    if (m === 'PATCH') return withQuery({ interaction: 'patch', resourceType: type });
    if (m === 'DELETE') return withQuery({ interaction: 'delete', resourceType: type });
    return withQuery({ interaction: 'search-type', resourceType: type });
  }
  if (b === '_history') return withQuery({ interaction: 'history-type', resourceType: type });
  if (b === '_search') return withQuery({ interaction: 'search-type', resourceType: type });
  if (segs.length === 2) {
    const base = { resourceType: type, id };
    if (m === 'PUT') return { interaction: 'update', ...base };
    if (m === 'PATCH') return { interaction: 'patch', ...base };
    if (m === 'DELETE') return { interaction: 'delete', ...base };
    return { interaction: 'read', ...base };
  }
  if (c === '_history') {
    if (d === undefined) return withQuery({ interaction: 'history-instance', resourceType: type, id });
    const v = Number(d);
    return {
      interaction: 'vread',
      resourceType: type,
      id,
      ...(Number.isSafeInteger(v) && v > 0 ? { versionId: v } : {}),
    };
  }
  if (type === 'Patient' && id && c !== undefined && segs.length === 3) {
    return withQuery({ interaction: 'search-compartment', resourceType: c, patients: [id] });
  }
  return { interaction: 'operation', resourceType: type, id };
}

/** The handler's note over the inferred one; a bare default note ('operation' without a name) yields. */
export function mergeNotes(inferred: AuditNote, noted: AuditNote | undefined): AuditNote {
  if (!noted) return inferred;
  const merged: AuditNote = { ...inferred };
  for (const [k, v] of Object.entries(noted) as Array<[keyof AuditNote, unknown]>) {
    if (v !== undefined) (merged as unknown as Record<string, unknown>)[k] = v;
  }
  if (noted.interaction === 'operation' && noted.operation === undefined)
    merged.interaction = inferred.interaction;
  return merged;
}
