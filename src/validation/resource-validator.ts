import type { OperationOutcomeIssue, Resource } from 'fhir/r4';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { FhirError } from '../fhir/errors';
import type { ResourceValidator } from '../interactions/context';
import { JsonRulesValidator } from './json-rules';
import { InstanceValidator, type ValidationResult } from './validator';

export type ValidationMode = 'strict' | 'lenient' | 'off';

/**
 * The validator every write goes through (VALIDATION):
 * - strict: errors against the base definition reject with 400; errors against a profile the
 *   resource claims (meta.profile) reject with 422 (profiling.html allows either);
 * - lenient: base-definition errors reject; profile errors are not enforced;
 * - off: only the JSON representation rules (json-rules.ts).
 * Profiles the server does not hold give a warning, never a rejection.
 */
export class ProfileValidator implements ResourceValidator {
  readonly instance: InstanceValidator;
  private readonly jsonOnly = new JsonRulesValidator();

  constructor(
    registry: DefinitionsRegistry,
    readonly mode: ValidationMode = 'strict',
  ) {
    this.instance = new InstanceValidator(registry);
  }

  validate(resource: unknown, profiles: readonly string[] = []): ValidationResult {
    return this.instance.validate(resource, profiles);
  }

  async check(resource: Resource): Promise<Resource> {
    if (this.mode === 'off') return this.jsonOnly.check(resource);
    const result = this.instance.validate(resource);
    const enforced = result.errors.base > 0 || (this.mode === 'strict' && result.errors.profile > 0);
    if (!enforced) return resource;
    const status = result.errors.base > 0 ? 400 : 422;
    throw new FhirError(status, onlyProblems(result.issues));
  }
}

/** The issues worth returning with a rejection: errors first, then warnings; no information. */
function onlyProblems(issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  const rank = { fatal: 0, error: 1, warning: 2, information: 3 } as const;
  return issues
    .filter((i) => i.severity !== 'information')
    .sort((a, b) => rank[a.severity] - rank[b.severity]);
}
