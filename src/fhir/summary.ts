import type { Resource } from 'fhir/r4';
import { badRequest } from './errors';
import type { DefinitionsRegistry, TopLevelElement } from './definitions';

export type SummaryMode = 'true' | 'text' | 'data' | 'count' | 'false';

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

export function parseSummary(value: string | undefined): SummaryMode | undefined {
  if (value === undefined) return undefined;
  if (['true', 'text', 'data', 'count', 'false'].includes(value)) return value as SummaryMode;
  throw badRequest(`_summary must be one of true, text, data, count, false; got "${value}"`);
}

function matches(el: TopLevelElement, key: string): boolean {
  const k = key.startsWith('_') ? key.slice(1) : key;
  if (!el.choice) return k === el.name;
  return k.startsWith(el.name) && /^[A-Z]/.test(k.slice(el.name.length));
}

function tagged(resource: Record<string, unknown>): Record<string, unknown> {
  const meta = (resource.meta ?? {}) as { tag?: unknown[] } & Record<string, unknown>;
  return { ...resource, meta: { ...meta, tag: [...(meta.tag ?? []), SUBSETTED] } };
}

/**
 * _summary and _elements (search.html#summary, #elements): a new, subsetted copy of the resource,
 * marked with the SUBSETTED tag. `false`/undefined give the resource unchanged.
 */
export function subset(
  resource: Resource,
  registry: DefinitionsRegistry,
  summary: SummaryMode | undefined,
  elements: string[] | undefined,
): Resource {
  const r = resource as unknown as Record<string, unknown>;
  const els = registry.topLevelElements(resource.resourceType);
  const always = new Set(['resourceType', 'id', 'meta']);
  let keep: (key: string) => boolean;
  if (elements && elements.length > 0) {
    const wanted = new Set(elements.map((e) => e.trim()).filter(Boolean));
    const mandatory = els.filter((e) => e.min > 0);
    keep = (k) =>
      always.has(k) ||
      [...wanted].some((w) => k === w || k === `_${w}` || els.some((e) => e.name === w && matches(e, k))) ||
      mandatory.some((e) => matches(e, k));
  } else if (summary === 'true') {
    const sum = els.filter((e) => e.summary);
    keep = (k) => always.has(k) || sum.some((e) => matches(e, k));
  } else if (summary === 'text') {
    const mandatory = els.filter((e) => e.min > 0);
    keep = (k) => always.has(k) || k === 'text' || mandatory.some((e) => matches(e, k));
  } else if (summary === 'data') {
    keep = (k) => k !== 'text';
  } else {
    return resource;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (keep(k)) out[k] = v;
  return tagged(out) as unknown as Resource;
}
