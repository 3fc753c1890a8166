import { createHash } from 'node:crypto';
import type { ParametersParameter } from 'fhir/r4';
import { restrict, type AccessPolicy } from '../auth/policy';
import { compartmentFilter } from '../fhir/compartment';
import { badRequest, FhirError, notFound } from '../fhir/errors';
import { ID_PATTERN } from '../fhir/resource';
import type { AppContext } from '../interactions/context';
import { readableCurrent, readableVersion } from '../interactions/crud';
import type { Filter } from '../store/backend';
import { parseViewDefinition, type ViewDefinition } from '../views/definition';
import { VIEW_DEFINITION } from '../views/resource-type';
import { groupMembers } from './group';
import { paramStrings } from './params';

/**
 * What $run and ViewDefinition/$export share: finding the view (inline, stored by reference, or the
 * instance of the URL) with the caller's read access, and the filter over the view's resource type
 * (the caller's visibility, patients, groups, _since).
 */

/** A view to run, and how the request named it (for the audit trail and output names). */
export interface ResolvedView {
  view: ViewDefinition;
  /** `ViewDefinition/<id>` of a stored view, undefined for an inline one. */
  reference?: string;
}

/** A ViewDefinition reference: relative, absolute on this server, with or without _history. */
const LITERAL = /^(?:(.*)\/)?ViewDefinition\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([1-9]\d{0,14}))?$/;

/**
 * A stored ViewDefinition, read with the caller's access (`r` on ViewDefinition, 403 without it;
 * one the caller may not see is 404 like a missing one). References: `ViewDefinition/<id>`,
 * `<base>/ViewDefinition/<id>`, either with `/_history/<version>`, or a canonical URL (`url` or
 * `url|version`) of a stored view.
 */
export async function storedView(ctx: AppContext, policy: AccessPolicy, ref: string): Promise<ResolvedView> {
  policy.require(VIEW_DEFINITION, 'r');
  const m = LITERAL.exec(ref);
  if (m && (m[1] === undefined || m[1] === ctx.config.baseUrl)) {
    const id = m[2] as string;
    const doc = m[3]
      ? await readableVersion(ctx, policy, VIEW_DEFINITION, id, Number(m[3]))
      : await readableCurrent(ctx, policy, VIEW_DEFINITION, id);
    return { view: storedParse(doc.resource), reference: `${VIEW_DEFINITION}/${id}` };
  }
  if (!/^[a-z][a-z0-9+.-]*:/i.test(ref))
    throw badRequest(`viewReference ${ref.slice(0, 100)} is neither ViewDefinition/[id] nor a canonical URL`);
  const [url, version] = ref.split('|');
  const criteria: Array<[string, string]> = [['url', url as string]];
  if (version) criteria.push(['version', version]);
  const ids = await ctx.searcher.matchIds(VIEW_DEFINITION, criteria, 2, undefined, policy);
  if (ids.length === 0) throw notFound(`No ViewDefinition with url ${ref.slice(0, 200)}`);
  if (ids.length > 1)
    throw badRequest(
      `Several ViewDefinitions have url ${ref.slice(0, 200)}; give a version or ViewDefinition/[id]`,
    );
  const doc = await readableCurrent(ctx, policy, VIEW_DEFINITION, ids[0] as string);
  return { view: storedParse(doc.resource), reference: `${VIEW_DEFINITION}/${ids[0] as string}` };
}

/** A stored view was validated when written; one that no longer parses is the server's data, 422. */
function storedParse(resource: unknown): ViewDefinition {
  try {
    return parseViewDefinition(resource);
  } catch (e) {
    if (e instanceof FhirError) throw new FhirError(422, e.issues);
    throw e;
  }
}

/** References given as valueReference or as strings. */
function refParams(params: readonly ParametersParameter[], name: string): string[] {
  return [
    ...paramStrings(params, name),
    ...params
      .filter((p) => p.name === name && typeof p.valueReference?.reference === 'string')
      .map((p) => p.valueReference?.reference as string),
  ];
}

/**
 * The view named by the instance URL, a viewReference or a viewResource (exactly one of them,
 * per the $run and $export definitions).
 */
export async function resolveView(
  ctx: AppContext,
  policy: AccessPolicy,
  from: { id?: string; params: readonly ParametersParameter[] },
): Promise<ResolvedView> {
  const inline = from.params.filter((p) => p.name === 'viewResource');
  const refs = refParams(from.params, 'viewReference');
  const given = (from.id === undefined ? 0 : 1) + inline.length + refs.length;
  if (given > 1)
    throw badRequest(
      from.id === undefined
        ? 'Give one viewResource or one viewReference, not several'
        : 'The instance-level operation runs the ViewDefinition of the URL: do not add viewResource or viewReference',
    );
  if (from.id !== undefined) {
    if (!ID_PATTERN.test(from.id)) throw badRequest(`Invalid ViewDefinition id ${from.id.slice(0, 80)}`);
    return storedView(ctx, policy, `${VIEW_DEFINITION}/${from.id}`);
  }
  const resource = inline[0]?.resource;
  if (inline.length === 1) {
    if (!resource) throw badRequest('viewResource must carry the ViewDefinition in its resource');
    return { view: parseViewDefinition(resource) };
  }
  if (refs.length === 1) return storedView(ctx, policy, refs[0] as string);
  throw badRequest(
    'Name the view: a viewResource (inline ViewDefinition) or a viewReference (ViewDefinition/[id])',
  );
}

/** A digest of the view, so the audit trail identifies inline views too. */
export function viewDigest(view: ViewDefinition): string {
  return createHash('sha256').update(JSON.stringify(view)).digest('hex').slice(0, 16);
}

/** How the audit trail and output names call a view: its name, else its id, else the digest. */
export function viewLabel(r: ResolvedView): string {
  return r.view.name ?? r.reference ?? r.view.id ?? `inline-${viewDigest(r.view)}`;
}

function patientId(v: string): string {
  const id = v.replace(/^(?:.*\/)?Patient\//, '');
  if (!ID_PATTERN.test(id)) throw badRequest(`patient ${v.slice(0, 80)} is not a Patient reference`);
  return id;
}

/**
 * The patients of the `patient` and `group` parameters ($run and $export): the Patients referenced
 * and the members of the Groups, each once; undefined when neither is given (everyone).
 */
export async function requestedPatients(
  ctx: AppContext,
  policy: AccessPolicy,
  params: readonly ParametersParameter[],
): Promise<string[] | undefined> {
  const patientRefs = [...new Set(refParams(params, 'patient'))];
  const groupRefs = [...new Set(refParams(params, 'group'))];
  if (patientRefs.length === 0 && groupRefs.length === 0) return undefined;
  const patients = patientRefs.map(patientId);
  for (const g of groupRefs) patients.push(...(await groupMembers(ctx, policy, g)));
  return [...new Set(patients)];
}

/** Which resources of the view's type to read: the population asked for, not yet the caller's visibility. */
export interface Population {
  /** Patient ids (from patient and group); undefined for everyone. */
  patients?: string[];
  /** Only resources updated after this instant. */
  since?: string;
  /** Only resources updated at or before this instant (an export's transaction time). */
  until?: string;
}

/** The filter over current documents of `type` for a population as the caller may see it; null for nothing. */
export function populationFilter(
  ctx: AppContext,
  policy: AccessPolicy,
  type: string,
  population: Population,
): Filter | null {
  const parts: Filter[] = [{ deleted: false }];
  if (population.since) parts.push({ lastUpdated: { $gt: population.since } });
  if (population.until) parts.push({ lastUpdated: { $lte: population.until } });
  if (population.patients) {
    const c = compartmentFilter(ctx.registry, type, population.patients);
    if (!c) return null;
    parts.push(c);
  }
  return restrict({ $and: parts }, policy, type, 's');
}
