import type { OperationOutcomeIssue, Resource } from 'fhir/r4';
import type { DefinitionsRegistry } from '../fhir/definitions';
import { FhirError, isFhirError } from '../fhir/errors';
import { ID_PATTERN } from '../fhir/resource';
import { isRecord } from '../search/types/common';
import { ProfileValidator, type ValidationMode } from '../validation/resource-validator';
import type { ValidationResult } from '../validation/validator';
import { NAME, Problems, readViewDefinition } from './definition';
import { VIEW_DEFINITION } from './resource-type';
import { compileView } from './runner';

/**
 * Validation of stored ViewDefinitions against the SQL-on-FHIR v2 logical model
 * (https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html, parent CanonicalResource).
 * The R4 validator has no definition of it (it is not an R4 resource), so the elements, their JSON
 * types, the required ones, the sql-name invariant and the bindings that matter are checked here,
 * then the view is compiled as $run would (FHIRPath syntax, constants, unionAll columns).
 */

type Kind = 'string' | 'boolean' | 'object' | 'string[]' | 'object[]';

/** CanonicalResource's elements and ViewDefinition's own metadata, by JSON shape. */
const METADATA: Record<string, Kind> = {
  id: 'string',
  meta: 'object',
  implicitRules: 'string',
  language: 'string',
  text: 'object',
  contained: 'object[]',
  extension: 'object[]',
  modifierExtension: 'object[]',
  url: 'string',
  identifier: 'object[]',
  version: 'string',
  versionAlgorithmString: 'string',
  versionAlgorithmCoding: 'object',
  name: 'string',
  title: 'string',
  status: 'string',
  experimental: 'boolean',
  date: 'string',
  publisher: 'string',
  contact: 'object[]',
  description: 'string',
  useContext: 'object[]',
  jurisdiction: 'object[]',
  purpose: 'string',
  copyright: 'string',
  copyrightLabel: 'string',
  resource: 'string',
  profile: 'string[]',
  fhirVersion: 'string[]',
};
/** Elements the structural reader (views/definition.ts) checks. */
const STRUCTURE = new Set(['resourceType', 'constant', 'select', 'where']);
/** Metadata it reads (and checks as non-empty strings) too. */
const READ = new Set(['id', 'name', 'status', 'resource']);

const NESTED: Record<string, ReadonlySet<string>> = {
  select: new Set(['column', 'select', 'forEach', 'forEachOrNull', 'repeat', 'unionAll']),
  column: new Set(['name', 'path', 'description', 'collection', 'type', 'tag']),
  where: new Set(['path', 'description']),
  constant: new Set(['name']),
  tag: new Set(['name', 'value']),
};
const ELEMENT = ['id', 'extension', 'modifierExtension'];

const STATUS = new Set(['draft', 'active', 'retired', 'unknown']);

/** Constant value[x] types of the model. */
const CONSTANT_TYPES = new Set(
  [
    'base64Binary',
    'boolean',
    'canonical',
    'code',
    'date',
    'dateTime',
    'decimal',
    'id',
    'instant',
    'integer',
    'integer64',
    'oid',
    'string',
    'positiveInt',
    'time',
    'unsignedInt',
    'uri',
    'url',
    'uuid',
  ].map((t) => `value${t.charAt(0).toUpperCase()}${t.slice(1)}`),
);

function shapeOk(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'string':
      return typeof v === 'string' && v.length > 0;
    case 'boolean':
      return typeof v === 'boolean';
    case 'object':
      return isRecord(v);
    case 'string[]':
      return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && x.length > 0);
    case 'object[]':
      return Array.isArray(v) && v.length > 0 && v.every(isRecord);
  }
}

const SHAPE_TEXT: Record<Kind, string> = {
  string: 'a non-empty string',
  boolean: 'a boolean',
  object: 'an object',
  'string[]': 'a non-empty array of strings',
  'object[]': 'a non-empty array of objects',
};

/** Unknown keys in the backbone elements (select, column, where, constant, tag), recursively. */
function nestedKeys(v: unknown, kind: string, at: string, p: Problems): void {
  if (!isRecord(v)) return;
  const allowed = NESTED[kind] ?? new Set<string>();
  for (const [k, child] of Object.entries(v)) {
    if (ELEMENT.includes(k) || allowed.has(k)) {
      if (Array.isArray(child) && (k === 'column' || k === 'tag' || k === 'select' || k === 'unionAll'))
        child.forEach((c, i) => nestedKeys(c, k === 'unionAll' ? 'select' : k, `${at}.${k}[${i}]`, p));
      continue;
    }
    if (kind === 'constant' && k.startsWith('value')) {
      if (!CONSTANT_TYPES.has(k))
        p.add(`${at}.${k} is not a constant type of the ViewDefinition model`, `${at}.${k}`);
      continue;
    }
    p.add(`${at}.${k} is not an element of ${kind}`, `${at}.${k}`);
  }
}

/**
 * Every problem of a ViewDefinition meant to be stored: the model (elements, types, required
 * status, resource and select, sql-name), the R4 resource type it is over, and the view compiled.
 */
export function viewDefinitionIssues(v: unknown, registry: DefinitionsRegistry): OperationOutcomeIssue[] {
  const { view, issues } = readViewDefinition(v);
  if (!isRecord(v)) return issues;
  const p = new Problems();
  const at = VIEW_DEFINITION;
  for (const [k, value] of Object.entries(v)) {
    if (STRUCTURE.has(k) || READ.has(k) || k.startsWith('_')) continue;
    const kind = METADATA[k];
    if (!kind) p.add(`${at}.${k} is not an element of ViewDefinition`, `${at}.${k}`);
    else if (!shapeOk(value, kind)) p.add(`${at}.${k} must be ${SHAPE_TEXT[kind]}`, `${at}.${k}`);
  }
  if (typeof v.id === 'string' && !ID_PATTERN.test(v.id)) p.add(`${at}.id is not a valid id`, `${at}.id`);
  if (v.status === undefined)
    p.add(`${at}.status is required (draft | active | retired | unknown)`, `${at}.status`);
  else if (typeof v.status === 'string' && !STATUS.has(v.status))
    p.add(`${at}.status must be one of draft, active, retired, unknown`, `${at}.status`);
  if (typeof v.name === 'string' && !NAME.test(v.name))
    p.add(`${at}.name must match ${NAME.source} (sql-name)`, `${at}.name`);
  if (typeof v.resource === 'string' && v.resource && !registry.isResourceType(v.resource))
    p.add(`${at}.resource ${v.resource} is not a resource type of this server`, `${at}.resource`);
  for (const k of ['select', 'where', 'constant'] as const)
    if (Array.isArray(v[k])) (v[k] as unknown[]).forEach((x, i) => nestedKeys(x, k, `${at}.${k}[${i}]`, p));
  const all = [...issues, ...p.issues];
  if (all.length > 0) return all;
  try {
    compileView(view);
  } catch (e) {
    if (!isFhirError(e)) throw e;
    return e.issues.map((i) => ({ ...i, code: 'invalid' as const }));
  }
  return [];
}

/**
 * The write path's validator with ViewDefinition added: R4 resources go to the ProfileValidator
 * (VALIDATION applies); ViewDefinitions are checked against their logical model under every mode,
 * because a stored view that cannot run is of no use. Invalid ones are 422 (business rules).
 */
export class ViewAwareValidator extends ProfileValidator {
  constructor(
    private readonly registry: DefinitionsRegistry,
    mode: ValidationMode = 'strict',
  ) {
    super(registry, mode);
  }

  override validate(resource: unknown, profiles: readonly string[] = []): ValidationResult {
    if (!isRecord(resource) || resource.resourceType !== VIEW_DEFINITION)
      return super.validate(resource, profiles);
    const issues = viewDefinitionIssues(resource, this.registry);
    for (const profile of profiles)
      issues.push({
        severity: 'warning',
        code: 'not-supported',
        diagnostics: `Profile ${profile} is not checked: ViewDefinitions are validated against the SQL-on-FHIR model only`,
      });
    return { issues, errors: { base: issues.filter((i) => i.severity === 'error').length, profile: 0 } };
  }

  override async check(resource: Resource): Promise<Resource> {
    if (resource.resourceType !== VIEW_DEFINITION) return super.check(resource);
    const issues = viewDefinitionIssues(resource, this.registry);
    if (issues.length > 0) throw new FhirError(422, issues);
    return resource;
  }
}
