import type { OperationOutcomeIssue, Resource } from 'fhir/r4';
import { FhirError, issue } from '../fhir/errors';
import type { ResourceValidator } from '../interactions/context';

/**
 * The rules of FHIR's JSON representation (json.html) that hold for every resource whatever its
 * type: no null values, no empty objects, no empty arrays, no empty strings (an element either has a
 * value or is absent). Reports each violation with its FHIRPath-like location.
 */
export function jsonRepresentationIssues(resource: Resource): OperationOutcomeIssue[] {
  const out: OperationOutcomeIssue[] = [];
  const walk = (v: unknown, path: string, partner?: unknown): void => {
    if (out.length >= 100) return;
    if (v === null) {
      out.push(
        issue('structure', `${path} is null; absent elements are omitted in FHIR JSON`, 'error', [path]),
      );
    } else if (Array.isArray(v)) {
      if (v.length === 0) out.push(issue('structure', `${path} is an empty array`, 'error', [path]));
      v.forEach((x, i) => {
        // In primitive extension arrays (`_given`), null marks "no extension for this index"; in
        // the value array, null marks "extension only" when the `_` partner has one at that index.
        if (x === null && /\._[^.[]+$/.test(path)) return;
        if (x === null && Array.isArray(partner) && partner[i] !== null && partner[i] !== undefined) return;
        walk(x, `${path}[${i}]`);
      });
    } else if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0) out.push(issue('structure', `${path} is an empty object`, 'error', [path]));
      const obj = v as Record<string, unknown>;
      for (const [k, x] of entries) walk(x, `${path}.${k}`, obj[`_${k}`]);
    } else if (v === '') {
      out.push(issue('value', `${path} is an empty string`, 'error', [path]));
    }
  };
  walk(resource, resource.resourceType);
  return out;
}

/** Validation that every write gets: the JSON representation rules. validation/ adds the rest. */
export class JsonRulesValidator implements ResourceValidator {
  async check(resource: Resource): Promise<Resource> {
    const issues = jsonRepresentationIssues(resource);
    if (issues.length > 0) throw new FhirError(400, issues);
    return resource;
  }
}
