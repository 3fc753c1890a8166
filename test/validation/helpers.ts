import fs from 'node:fs';
import path from 'node:path';
import type {
  Bundle,
  ElementDefinition,
  FhirResource,
  OperationOutcomeIssue,
  StructureDefinition,
} from 'fhir/r4';
import { DefinitionsRegistry, loadCoreResources } from '../../src/fhir/definitions';
import { InstanceValidator, type ValidatorOptions } from '../../src/validation/validator';

let core: FhirResource[] | undefined;

/** The example study profile shipped in profiles/ (StructureDefinitions, ValueSet, CodeSystem). */
export function studyResources(): FhirResource[] {
  const b = JSON.parse(
    fs.readFileSync(path.join(__dirname, '../../profiles/study-heart-rate.json'), 'utf8'),
  ) as Bundle;
  return (b.entry ?? []).map((e) => e.resource as FhirResource);
}

export function registryWith(extra: FhirResource[] = []): DefinitionsRegistry {
  core ??= loadCoreResources();
  return new DefinitionsRegistry([...core, ...extra]);
}

export function validatorWith(extra: FhirResource[] = [], options: ValidatorOptions = {}): InstanceValidator {
  return new InstanceValidator(registryWith(extra), options);
}

export function fixture(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '../../fixtures', name), 'utf8')) as Record<
    string,
    unknown
  >;
}

export const errorsOf = (issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] =>
  issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');

/** The errors of validating `r` (against `profiles` too), as `expression: diagnostics` lines. */
export function errorLines(v: InstanceValidator, r: unknown, profiles?: readonly string[]): string[] {
  return errorsOf(v.validate(r, profiles).issues).map(
    (i) => `${i.expression?.[0] ?? ''}: ${i.diagnostics ?? ''}`,
  );
}

export const warningsOf = (issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] =>
  issues.filter((i) => i.severity === 'warning');

/** A differential-only Observation profile (the validator generates its snapshot). */
export function observationProfile(
  id: string,
  elements: Array<Record<string, unknown>>,
): StructureDefinition {
  return {
    resourceType: 'StructureDefinition',
    id,
    url: `http://example.org/fhir/StructureDefinition/${id}`,
    name: id.replace(/[^A-Za-z0-9]/g, ''),
    status: 'active',
    kind: 'resource',
    abstract: false,
    type: 'Observation',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Observation',
    derivation: 'constraint',
    differential: {
      element: elements.map((e) => ({
        path: String(e.id).replace(/:[^.]+/g, ''),
        ...e,
      })) as ElementDefinition[],
    },
  };
}

export function observation(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: '2024-03-01T09:30:00Z',
    ...extra,
  };
}
