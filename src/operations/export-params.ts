import type { Request } from 'express';
import { parseInstantParam } from '../fhir/instant';
import type { Parameters } from 'fhir/r4';
import { badRequest } from '../fhir/errors';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { ID_PATTERN } from '../fhir/resource';
import { readJson } from '../http/body';
import { queryPairs } from '../http/query';

/** The kick-off parameters (bulk data IG v2, export.html#query-parameters), checked. */
export interface ExportParams {
  since?: string;
  /** _type, undefined for "all types the caller may see". */
  types?: string[];
  /** _typeFilter: type -> search query strings (ORed). */
  typeFilters: Map<string, string[]>;
  /** _elements: type ('' for every type) -> element names. */
  elements: Map<string, string[]>;
  /** patient: logical ids of Patients (Patient and Group level only). */
  patients?: string[];
  deidentify?: 'safe-harbor';
}

const OUTPUT_FORMATS: ReadonlySet<string> = new Set([
  'application/fhir+ndjson',
  'application/ndjson',
  'ndjson',
]);

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A Parameters body (POST kick-off) as [name, value] pairs like the query string's. */
function parametersToPairs(body: unknown): Array<[string, string]> {
  const p = body as Parameters;
  if (typeof body !== 'object' || body === null || p.resourceType !== 'Parameters')
    throw badRequest('POST $export takes a Parameters resource');
  const out: Array<[string, string]> = [];
  for (const param of p.parameter ?? []) {
    const name = param.name;
    if (typeof name !== 'string') throw badRequest('Every parameter needs a name');
    const v =
      param.valueString ??
      param.valueCode ??
      param.valueInstant ??
      param.valueDateTime ??
      param.valueUri ??
      param.valueReference?.reference;
    if (typeof v !== 'string') throw badRequest(`Parameter ${name} has no usable value`);
    out.push([name, v]);
  }
  return out;
}

/** The parameters of a kick-off request: the query string, plus a Parameters body on POST. */
export async function readExportPairs(
  req: Request,
  limits: { maxBody: number; maxJsonDepth: number },
): Promise<Array<[string, string]>> {
  const pairs = queryPairs(req);
  if (req.method === 'POST') {
    const { value } = await readJson(req, limits, ['resource']);
    pairs.push(...parametersToPairs(value));
  }
  return pairs;
}

/** Validates and collects the kick-off parameters; client mistakes are 400 with an OperationOutcome. */
export function parseExportParams(
  pairs: Array<[string, string]>,
  registry: DefinitionsRegistry,
  level: 'system' | 'patient' | 'group',
): ExportParams {
  const out: ExportParams = { typeFilters: new Map(), elements: new Map() };
  const knownType = (t: string, param: string): string => {
    if (!registry.isResourceType(t))
      throw badRequest(`Unknown resource type "${t.slice(0, 80)}" in ${param}`);
    return t;
  };
  for (const [name, value] of pairs) {
    switch (name) {
      case '_outputFormat':
        if (!OUTPUT_FORMATS.has(value.trim()))
          throw badRequest(
            `_outputFormat ${value} is not supported; use application/fhir+ndjson (or application/ndjson, ndjson)`,
          );
        break;
      case '_since': {
        out.since = parseInstantParam('_since', value);
        break;
      }
      case '_type':
        out.types = [...new Set([...(out.types ?? []), ...list(value).map((t) => knownType(t, '_type'))])];
        break;
      case '_typeFilter':
        for (const f of list(value)) {
          const q = f.indexOf('?');
          if (q <= 0)
            throw badRequest(`_typeFilter must look like Type?param=value, got "${f.slice(0, 80)}"`);
          const type = knownType(f.slice(0, q), '_typeFilter');
          const queries = out.typeFilters.get(type) ?? [];
          queries.push(f.slice(q + 1));
          out.typeFilters.set(type, queries);
        }
        break;
      case '_elements':
        for (const e of list(value)) {
          const dot = e.indexOf('.');
          const type = dot > 0 ? knownType(e.slice(0, dot), '_elements') : '';
          const element = dot > 0 ? e.slice(dot + 1) : e;
          if (!/^[A-Za-z][A-Za-z0-9]*$/.test(element))
            throw badRequest(`_elements takes element names (or Type.element), got "${e.slice(0, 80)}"`);
          out.elements.set(type, [...(out.elements.get(type) ?? []), element]);
        }
        break;
      case 'patient': {
        if (level === 'system')
          throw badRequest('The patient parameter applies to Patient and Group level exports only');
        const m = /^(?:.*\/)?Patient\/([^/]+)$/.exec(value.trim());
        const id = m ? m[1] : value.trim();
        if (!id || !ID_PATTERN.test(id))
          throw badRequest(`patient must be a Patient reference, got "${value.slice(0, 80)}"`);
        out.patients = [...new Set([...(out.patients ?? []), id])];
        break;
      }
      case '_deidentify':
        if (value.trim() !== 'safe-harbor')
          throw badRequest(`_deidentify supports only safe-harbor, got "${value.slice(0, 80)}"`);
        out.deidentify = 'safe-harbor';
        break;
      case '_format':
      case '_pretty':
        break;
      case 'includeAssociatedData':
      case '_until':
      case 'organizeOutputBy':
      case 'allowPartialManifests':
        throw badRequest(`${name} is not supported by this server`, 'not-supported');
      default:
        throw badRequest(`Unknown $export parameter ${name.slice(0, 80)}`, 'not-supported');
    }
  }
  return out;
}
