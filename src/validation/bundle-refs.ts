import { isRecord } from '../search/types/common';
import type { ProseIssue } from './rules';

/** An entry of a Bundle that holds a resource. */
interface Held {
  fullUrl?: string;
  resource: Record<string, unknown>;
}

const RESTFUL = /^(.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const HISTORY = /^(.*)\/_history\/([A-Za-z0-9\-.]{1,64})$/;

/**
 * References between the entries of a Bundle (bundle.html#references): a relative reference in an
 * entry resolves against the base of that entry's RESTful fullUrl, an absolute one (or a urn:uuid)
 * against the fullUrls; `/_history/v` selects the entry whose meta.versionId is v. When the entry's
 * fullUrl is not RESTful, a relative reference matches by type and id.
 */
export class BundleIndex {
  private readonly byFullUrl = new Map<string, Held[]>();
  private readonly byTypeId = new Map<string, Held[]>();
  private readonly fullUrlOf = new Map<object, string | undefined>();
  readonly entries: Held[] = [];

  constructor(readonly bundle: Record<string, unknown>) {
    for (const e of Array.isArray(bundle.entry) ? bundle.entry : []) {
      if (!isRecord(e) || !isRecord(e.resource)) continue;
      const held: Held = { resource: e.resource };
      if (typeof e.fullUrl === 'string') held.fullUrl = e.fullUrl;
      this.entries.push(held);
      this.fullUrlOf.set(e.resource, held.fullUrl);
      if (held.fullUrl) push(this.byFullUrl, held.fullUrl, held);
      const { resourceType, id } = e.resource;
      if (typeof resourceType === 'string' && typeof id === 'string')
        push(this.byTypeId, `${resourceType}/${id}`, held);
    }
  }

  /** The fullUrl of the entry holding a resource (by identity), if it is an entry of this Bundle. */
  entryOf(resource: unknown): { fullUrl?: string } | undefined {
    if (!isRecord(resource) || !this.fullUrlOf.has(resource)) return undefined;
    const fullUrl = this.fullUrlOf.get(resource);
    return fullUrl === undefined ? {} : { fullUrl };
  }

  /**
   * The entries a reference from the entry at `from` names: `exact` by the fullUrl rules, `loose`
   * by type and id (with the version) when the exact rules find nothing.
   */
  resolve(ref: string, from: string | undefined): { exact: Held[]; loose: Held[] } {
    const h = HISTORY.exec(ref);
    const target = h ? (h[1] ?? ref) : ref;
    const version = h?.[2];
    const sameVersion = (x: Held): boolean => {
      if (version === undefined) return true;
      const meta = x.resource.meta;
      return isRecord(meta) && meta.versionId === version;
    };
    let absolute: string | undefined;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) absolute = target;
    else {
      const base = from ? RESTFUL.exec(from) : null;
      if (base && base[1] !== undefined) absolute = base[1] + target;
    }
    const exact = absolute ? (this.byFullUrl.get(absolute) ?? []).filter(sameVersion) : [];
    if (exact.length > 0) return { exact, loose: [] };
    const m = RESTFUL.exec(target);
    const loose = m ? (this.byTypeId.get(`${m[2] ?? ''}/${m[3] ?? ''}`) ?? []).filter(sameVersion) : [];
    return { exact, loose };
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, v: V): void {
  const list = map.get(key);
  if (list) list.push(v);
  else map.set(key, [v]);
}

/** Every Reference.reference in a resource (not inside contained resources), with its FHIRPath location. */
function referencesIn(value: unknown, loc: string, out: Array<{ ref: string; loc: string }>): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => referencesIn(v, `${loc}[${i}]`, out));
    return;
  }
  if (!isRecord(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (k === 'contained' || k.startsWith('_')) continue;
    if (k === 'reference' && typeof v === 'string') out.push({ ref: v, loc: `${loc}.reference` });
    else if (typeof v === 'object' && v !== null) referencesIn(v, `${loc}.${k}`, out);
  }
}

/** The references of a document's Composition whose targets the document must carry (documents.html). */
function compositionReferences(c: Record<string, unknown>, loc: string): Array<{ ref: string; loc: string }> {
  const out: Array<{ ref: string; loc: string }> = [];
  for (const k of ['subject', 'encounter', 'author', 'custodian']) referencesIn(c[k], `${loc}.${k}`, out);
  const attesters = Array.isArray(c.attester) ? c.attester : [];
  attesters.forEach((a, i) => isRecord(a) && referencesIn(a.party, `${loc}.attester[${i}].party`, out));
  const sections = (list: unknown, at: string): void => {
    if (!Array.isArray(list)) return;
    list.forEach((s, i) => {
      if (!isRecord(s)) return;
      const sl = `${at}.section[${i}]`;
      for (const k of ['author', 'focus', 'entry']) referencesIn(s[k], `${sl}.${k}`, out);
      sections(s.section, sl);
    });
  };
  sections(c.section, loc);
  return out;
}

/**
 * Reference rules across a Bundle's entries: a reference must not match more than one entry
 * (bundle.html#references; history Bundles hold several versions of one resource on purpose), and a
 * document carries what its Composition references (documents.html): subject, encounter, authors,
 * attesters, custodian, and the sections' authors, focus and entries.
 */
export function bundleReferenceIssues(
  bundle: Record<string, unknown>,
  loc: string,
  index: BundleIndex,
): ProseIssue[] {
  const out: ProseIssue[] = [];
  if (bundle.type === 'history') return out;
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  entries.forEach((e, i) => {
    if (!isRecord(e) || !isRecord(e.resource)) return;
    const from = typeof e.fullUrl === 'string' ? e.fullUrl : undefined;
    const refs: Array<{ ref: string; loc: string }> = [];
    referencesIn(e.resource, `${loc}.entry[${i}].resource`, refs);
    for (const r of refs) {
      if (r.ref.startsWith('#')) continue;
      const { exact } = index.resolve(r.ref, from);
      if (exact.length > 1) {
        out.push({
          code: 'invalid',
          message: `Found ${exact.length} matches for '${r.ref}' in the bundle`,
          expression: r.loc,
        });
      }
    }
  });
  const first = entries[0];
  if (
    bundle.type === 'document' &&
    isRecord(first) &&
    isRecord(first.resource) &&
    first.resource.resourceType === 'Composition'
  ) {
    const from = typeof first.fullUrl === 'string' ? first.fullUrl : undefined;
    for (const r of compositionReferences(first.resource, `${loc}.entry[0].resource`)) {
      if (r.ref.startsWith('#') || r.ref.includes('?')) continue;
      const { exact, loose } = index.resolve(r.ref, from);
      if (exact.length === 0 && loose.length === 0) {
        out.push({
          code: 'not-found',
          message: `'${r.ref}' is not in the document (a document carries what its Composition references)`,
          expression: r.loc,
        });
      }
    }
  }
  return out;
}
