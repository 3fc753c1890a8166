import type { OperationOutcomeIssue } from 'fhir/r4';
import { isRecord } from '../search/types/common';

/** A rule the StructureDefinitions state in prose rather than as constraints. */
export interface ProseIssue {
  code: OperationOutcomeIssue['code'];
  message: string;
  expression: string;
}

const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Rules of the specification's text that the validator checks for a datatype or resource:
 * Coding.system is an absolute URI (datatypes.html#Coding), Attachment.size is the size of
 * Attachment.data (datatypes.html#Attachment), Bundle.entry.fullUrl is absolute, link relations are
 * unique, and search matches carry an id (bundle.html).
 */
export function proseRules(type: string, value: Record<string, unknown>, loc: string): ProseIssue[] {
  const out: ProseIssue[] = [];
  if (type === 'Coding' && typeof value.system === 'string' && !ABSOLUTE.test(value.system)) {
    out.push({
      code: 'value',
      message: `Coding.system must be an absolute URI, not '${value.system}'`,
      expression: `${loc}.system`,
    });
  }
  if (type === 'Attachment' && typeof value.data === 'string' && typeof value.size === 'number') {
    const s = value.data.replace(/\s+/g, '');
    const padding = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
    const bytes = (s.length / 4) * 3 - padding;
    if (Number.isInteger(bytes) && bytes !== value.size) {
      out.push({
        code: 'value',
        message: `Attachment.size is ${value.size} but the data has ${bytes} bytes`,
        expression: `${loc}.size`,
      });
    }
  }
  if (type === 'Bundle') {
    const entries = Array.isArray(value.entry) ? value.entry : [];
    entries.forEach((e, i) => {
      if (!isRecord(e)) return;
      if (typeof e.fullUrl === 'string' && !ABSOLUTE.test(e.fullUrl)) {
        out.push({
          code: 'value',
          message: `The fullUrl must be an absolute URL (not '${e.fullUrl}')`,
          expression: `${loc}.entry[${i}].fullUrl`,
        });
      }
      const search = isRecord(e.search) ? e.search : undefined;
      if (
        value.type === 'searchset' &&
        search?.mode === 'match' &&
        isRecord(e.resource) &&
        e.resource.id === undefined
      ) {
        out.push({
          code: 'required',
          message: 'Search results must have ids',
          expression: `${loc}.entry[${i}].resource`,
        });
      }
    });
    const seen = new Set<string>();
    const links = Array.isArray(value.link) ? value.link : [];
    links.forEach((l, i) => {
      if (!isRecord(l) || typeof l.relation !== 'string') return;
      if (seen.has(l.relation)) {
        out.push({
          code: 'invariant',
          message: `The link relation '${l.relation}' can only occur once`,
          expression: `${loc}.link[${i}]`,
        });
      }
      seen.add(l.relation);
    });
  }
  return out;
}
