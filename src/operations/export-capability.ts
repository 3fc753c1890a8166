import type { CapabilityStatementRestResourceOperation } from 'fhir/r4';

/**
 * What the CapabilityStatement says about bulk export and $everything (only what works). The
 * `_deidentify` parameter is a server extension; its documentation is here so that clients
 * reading the statement learn what it does and does not guarantee (README has the same list).
 */
const EXPORT_DOC =
  'Bulk Data Access IG v2 export (Prefer: respond-async). Parameters: _outputFormat ' +
  '(application/fhir+ndjson, application/ndjson, ndjson), _since, _type, _typeFilter, _elements, patient ' +
  '(Patient and Group level, POST Parameters). Status at $export-status/[id] (202 with X-Progress and ' +
  'Retry-After, 200 with the manifest, DELETE cancels); files at $export-file/[id]/[name] for the same agent. ' +
  'Server extension _deidentify=safe-harbor: a de-identified export following HIPAA Safe Harbor as far as ' +
  'mechanical rules on FHIR JSON allow: resource ids and all identifiers are replaced by HMAC-SHA256 pseudonyms ' +
  'under a random per-export key (stable within the export, so references stay consistent across files; ' +
  'the key is discarded when the job ends); HumanNames, telecoms, photos, narrative (text), notes, comments, ' +
  'descriptions, CodeableConcept.text, Reference.display, valueString/valueMarkdown, device serial and lot ' +
  'numbers, Location.position, attachment data/url/title and instant elements (issued, recorded, timestamp, ' +
  'meta.lastUpdated) are removed; addresses keep only state and country (no ZIP3); every date and dateTime ' +
  'is reduced to its year; birth years of people 90 or older are set to (reference year - 90) and Age values ' +
  'over 89 become >=90; references to other servers and conditional references are removed; Binary and ' +
  'AuditEvent are not exported. Not guaranteed: identifiers inside codes, free text in elements not listed, ' +
  'extensions carrying other identifying data types, rare combinations of quasi-identifiers (no k-anonymity ' +
  'is computed), and the Safe Harbor condition that the releasing party has no actual knowledge that the ' +
  'rest could identify a person: an expert must still review the extract.';

const EXPORT_DEFINITION = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export';

export function systemOperations(): CapabilityStatementRestResourceOperation[] {
  return [{ name: 'export', definition: EXPORT_DEFINITION, documentation: EXPORT_DOC }];
}

export function resourceOperations(type: string): CapabilityStatementRestResourceOperation[] {
  if (type === 'Patient')
    return [
      {
        name: 'export',
        definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export',
        documentation: EXPORT_DOC,
      },
      {
        name: 'everything',
        definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
        documentation:
          'The patient, its compartment and the Practitioners, Organizations, Locations and Medications they ' +
          'reference (one level); start/end (clinical date), _since, _type, _count with next links.',
      },
    ];
  if (type === 'Group')
    return [
      {
        name: 'export',
        definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export',
        documentation: `Members (Group.member.entity Patients) and their compartments. ${EXPORT_DOC}`,
      },
    ];
  return [];
}
