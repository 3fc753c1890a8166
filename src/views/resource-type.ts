import type { SearchParameter } from 'fhir/r4';
import type { LogicalResourceType, TopLevelElement } from '../fhir/definitions';

/**
 * ViewDefinition as a resource type of this server. It is a logical model of the SQL-on-FHIR v2 IG
 * (parent CanonicalResource), not an R4 resource, so the R4 definitions know nothing of it: this
 * module tells the definitions registry its top-level elements (for _summary/_elements) and its
 * search parameters, and views/validate.ts checks instances against the model.
 */
export const VIEW_DEFINITION: string = 'ViewDefinition';

export const VIEW_DEFINITION_PROFILE = 'https://sql-on-fhir.org/ig/StructureDefinition/ViewDefinition';

const el = (name: string, summary: boolean, min = 0, choice = false): TopLevelElement => ({
  name,
  summary,
  min,
  choice,
});

/** The model's top-level elements (CanonicalResource's, then ViewDefinition's own). */
const ELEMENTS: TopLevelElement[] = [
  el('id', true),
  el('meta', true),
  el('implicitRules', true),
  el('language', false),
  el('text', false),
  el('contained', false),
  el('extension', false),
  el('modifierExtension', false),
  el('url', true),
  el('identifier', true),
  el('version', true),
  el('versionAlgorithm', true, 0, true),
  el('name', true),
  el('title', true),
  el('status', true, 1),
  el('experimental', true),
  el('date', true),
  el('publisher', true),
  el('contact', false),
  el('description', false),
  el('useContext', true),
  el('jurisdiction', true),
  el('purpose', false),
  el('copyright', false),
  el('copyrightLabel', false),
  el('resource', true, 1),
  el('profile', false),
  el('fhirVersion', true),
  el('constant', false),
  el('select', false, 1),
  el('where', false),
];

function param(
  code: string,
  type: SearchParameter['type'],
  expression: string,
  description: string,
): SearchParameter {
  return {
    resourceType: 'SearchParameter',
    url: `urn:x-fhir-r4-server:SearchParameter/ViewDefinition-${code}`,
    name: code,
    status: 'active',
    description,
    code,
    base: [VIEW_DEFINITION as SearchParameter['base'][number]],
    type,
    expression,
  };
}

const SEARCH_PARAMETERS: SearchParameter[] = [
  param('name', 'string', 'ViewDefinition.name', 'Computationally friendly name of the view (sql-name)'),
  param('title', 'string', 'ViewDefinition.title', 'Human-friendly name of the view'),
  param('url', 'uri', 'ViewDefinition.url', 'Canonical identifier of the view'),
  param('version', 'token', 'ViewDefinition.version', 'Business version of the view'),
  param('status', 'token', 'ViewDefinition.status', 'draft | active | retired | unknown'),
  param('resource', 'token', 'ViewDefinition.resource', 'The FHIR resource type the view is over'),
];

export const VIEW_DEFINITION_TYPE: LogicalResourceType = {
  type: VIEW_DEFINITION,
  profile: VIEW_DEFINITION_PROFILE,
  elements: ELEMENTS,
  searchParameters: SEARCH_PARAMETERS,
};
