import { createHmac } from 'node:crypto';
import type { Resource } from 'fhir/r4';
import { isRecord } from '../search/types/common';

/**
 * `_deidentify=safe-harbor`: a de-identified copy of a resource following the HIPAA Safe Harbor
 * method (45 CFR 164.514(b)(2)) as far as it can be done mechanically on FHIR JSON. The README
 * section "De-identified export" lists exactly what is removed, generalised and kept, and what is
 * NOT guaranteed; keep the two in step.
 *
 * Pseudonyms are HMAC-SHA256 under a random key per export: stable within one export (so every
 * reference still points at the pseudonymised id of its target, across files) and unlinkable
 * between exports (the key is discarded when the job ends).
 */

export const PSEUDONYM_SYSTEM = 'urn:x-fhir-r4-server:pseudonym';
const SECURITY = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'PSEUDED' };

/** Types left out of a de-identified export entirely: their payload is opaque or about network actors. */
export const EXCLUDED_TYPES: ReadonlySet<string> = new Set(['Binary', 'AuditEvent']);

/** Elements dropped wherever they occur: free text, contact details, device serials, photos. */
const DROPPED = new Set([
  'text', // Narrative (text.div) and CodeableConcept.text
  'note', // Annotation
  'comment',
  'comments',
  'description',
  'summary',
  'conclusion',
  'patientInstruction',
  'telecom',
  'photo',
  'position', // Location latitude/longitude
  'udiCarrier',
  'serialNumber',
  'lotNumber',
  'distinctIdentifier',
  // instant-typed elements: a year is not a valid instant, so they go
  'issued',
  'recorded',
  'timestamp',
  // free-text values of choice elements and extensions
  'valueString',
  'valueMarkdown',
  'valueHumanName',
  'valueContactPoint',
]);

const DATE = /^(\d{4})-(0[1-9]|1[0-2])(?:-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)?$/;
const RELATIVE_REF = /^([A-Z][A-Za-z]{1,63})\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

export class Pseudonymizer {
  constructor(private readonly key: Buffer) {}

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('hex');
  }

  /** A resource id: 32 hex digits, a valid FHIR id. */
  id(type: string, id: string): string {
    return this.mac(`id|${type}/${id}`).slice(0, 32);
  }

  identifier(system: string | undefined, value: string): string {
    return this.mac(`identifier|${system ?? ''}|${value}`).slice(0, 32);
  }

  uuid(text: string): string {
    const h = this.mac(`urn|${text}`);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
}

export interface DeidentifyOptions {
  /** The server's base URL: absolute references to it are rewritten like relative ones. */
  baseUrl: string;
  /** The year ages are counted to (the export's transaction time). */
  referenceYear: number;
}

type Json = unknown;

export class Deidentifier {
  constructor(
    private readonly p: Pseudonymizer,
    private readonly options: DeidentifyOptions,
  ) {}

  /** The de-identified copy, or null for a type left out entirely. */
  resource(resource: Resource): Resource | null {
    if (EXCLUDED_TYPES.has(resource.resourceType)) return null;
    const out = this.object(resource as unknown as Record<string, unknown>, true) as Record<string, unknown>;
    if (typeof resource.id === 'string') out.id = this.p.id(resource.resourceType, resource.id);
    const profile = resource.meta?.profile;
    out.meta = profile ? { profile, security: [SECURITY] } : { security: [SECURITY] };
    if (resource.resourceType === 'Patient') this.agesOver89(resource, out);
    return out as unknown as Resource;
  }

  /** Safe Harbor: ages over 89 are aggregated into one "90 or older" category. */
  private agesOver89(original: Resource, out: Record<string, unknown>): void {
    const birth = yearOf((original as { birthDate?: unknown }).birthDate);
    if (birth === undefined) return;
    const deceased = yearOf((original as { deceasedDateTime?: unknown }).deceasedDateTime);
    const upTo = deceased ?? this.options.referenceYear;
    // Counted in whole years (the month is gone), so people who turn 90 this year count as 90.
    if (upTo - birth > 89) out.birthDate = String(upTo - 90);
  }

  private value(key: string, v: Json): Json {
    if (typeof v === 'string') {
      const m = DATE.exec(v);
      return m ? m[1] : v;
    }
    if (Array.isArray(v)) {
      const items = v.map((x) => this.value(key, x)).filter((x) => x !== undefined);
      return items.length > 0 ? items : undefined;
    }
    if (!isRecord(v)) return v;
    if (key === 'name' || key === 'address' || key.endsWith('Address')) {
      // HumanName (string names of organisations and locations are kept, see value()).
      if (key === 'name') return undefined;
      return this.address(v);
    }
    if (key === 'identifier' || key.endsWith('Identifier')) return this.identifier(v);
    if (key === 'extension' && typeof v.url === 'string' && /geolocation$/i.test(v.url)) return undefined;
    return this.object(v, false);
  }

  private object(o: Record<string, unknown>, root: boolean): Record<string, unknown> | undefined {
    const out: Record<string, unknown> = {};
    const attachment = typeof o.contentType === 'string' || typeof o.data === 'string';
    const coding = typeof o.code === 'string' || typeof o.system === 'string';
    for (const [k, v] of Object.entries(o)) {
      if (DROPPED.has(k) || k.startsWith('_')) continue;
      if (root && (k === 'id' || k === 'meta')) continue;
      if (attachment && (k === 'data' || k === 'url' || k === 'title' || k === 'hash')) continue;
      // Reference.display names people; Coding.display is terminology and stays.
      if (k === 'display' && !coding) continue;
      if (k === 'reference' && typeof v === 'string') {
        const r = this.reference(v);
        if (r !== undefined) out[k] = r;
        continue;
      }
      if (/Age$/.test(k) && isRecord(v)) {
        out[k] = ageOver89(v);
        continue;
      }
      if (k === 'name' && typeof v === 'string') {
        out[k] = v;
        continue;
      }
      const c = this.value(k, v);
      if (c !== undefined) out[k] = c;
    }
    // An extension without any value left says nothing; drop it.
    const hadValue = Object.keys(o).some((k) => k.startsWith('value'));
    const hasValue = Object.keys(out).some((k) => k.startsWith('value'));
    if (typeof o.url === 'string' && !('extension' in o) && hadValue && !hasValue) return undefined;
    return Object.keys(out).length > 0 ? out : undefined;
  }

  /** Safe Harbor allows the state; everything below it (and the geolocation) goes. */
  private address(a: Record<string, unknown>): Record<string, unknown> | undefined {
    const out: Record<string, unknown> = {};
    for (const k of ['use', 'type', 'state', 'country'] as const) if (typeof a[k] === 'string') out[k] = a[k];
    return Object.keys(out).length > 0 ? out : undefined;
  }

  private identifier(i: Record<string, unknown>): Record<string, unknown> | undefined {
    if (typeof i.value !== 'string') return undefined;
    const out: Record<string, unknown> = {
      system: PSEUDONYM_SYSTEM,
      value: this.p.identifier(typeof i.system === 'string' ? i.system : undefined, i.value),
    };
    if (typeof i.use === 'string') out.use = i.use;
    if (isRecord(i.type) && Array.isArray(i.type.coding)) {
      const type = this.object({ coding: i.type.coding }, false);
      if (type) out.type = type;
    }
    return out;
  }

  /** Type/id (relative, or absolute on this server) and urn:uuid: references get the pseudonymised id. */
  reference(ref: string): string | undefined {
    if (ref.startsWith('#')) return ref;
    if (ref.startsWith('urn:uuid:')) return `urn:uuid:${this.p.uuid(ref)}`;
    const base = `${this.options.baseUrl}/`;
    const local = ref.startsWith(base) ? ref.slice(base.length) : ref;
    const m = RELATIVE_REF.exec(local);
    if (!m) return undefined; // external or conditional: could identify, and cannot be kept consistent
    return `${m[1]}/${this.p.id(m[1] as string, m[2] as string)}`;
  }
}

function yearOf(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{4})/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/** An Age (Quantity in years) over 89 becomes ">= 90". */
function ageOver89(q: Record<string, unknown>): Record<string, unknown> {
  const years = q.code === 'a' || q.unit === 'a' || q.unit === 'years' || q.unit === 'yr';
  if (years && typeof q.value === 'number' && q.value > 89) return { ...q, value: 90, comparator: '>=' };
  return q;
}
