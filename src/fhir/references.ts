/**
 * Reference walking and rewriting (references.html, http.html#trules): every `Reference.reference`
 * anywhere in a resource (nested elements, extensions, contained resources) and the `href`/`src`
 * attributes of narrative XHTML. Used by transactions to replace `urn:uuid:` identities and
 * conditional references with the ids the server assigned.
 */

/**
 * Maps one reference string. Returns the replacement, or undefined to leave it as it is.
 * `where` says where it was found: 'reference' (Reference.reference) or 'narrative'.
 */
export type ReferenceMapper = (ref: string, where: 'reference' | 'narrative') => string | undefined;

const NARRATIVE_LINK = /(\b(?:href|src)\s*=\s*)(["'])([^"']*)\2/g;

/**
 * The value with every reference mapped. Copy-on-write: objects and arrays on the path to a
 * change are copied, everything else is shared with the input, which is never modified. Linear in
 * the size of the value.
 */
export function mapReferences<T>(value: T, map: ReferenceMapper): T {
  return walk(value, map) as T;
}

function walk(value: unknown, map: ReferenceMapper): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const w = walk(v, map);
      if (w !== v) {
        out ??= value.slice();
        out[i] = w;
      }
    }
    return out ?? value;
  }
  const obj = value as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    let w: unknown;
    if (typeof v === 'string') {
      if (key === 'reference') w = map(v, 'reference') ?? v;
      else if (key === 'div') w = mapNarrative(v, map);
      else continue;
    } else {
      w = walk(v, map);
    }
    if (w !== v) {
      out ??= { ...obj };
      out[key] = w;
    }
  }
  return out ?? obj;
}

function mapNarrative(div: string, map: ReferenceMapper): string {
  // Cheap test first: most narratives link to nothing.
  if (!div.includes('href') && !div.includes('src')) return div;
  let changed = false;
  const out = div.replace(NARRATIVE_LINK, (whole, lead: string, quote: string, url: string) => {
    const m = map(unescapeXml(url), 'narrative');
    if (m === undefined) return whole;
    changed = true;
    return `${lead}${quote}${escapeXml(m)}${quote}`;
  });
  return changed ? out : div;
}

function unescapeXml(s: string): string {
  return s.includes('&')
    ? s
        .replace(/&amp;/g, '&')
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
    : s;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
}

/** Every Reference.reference string in a value (for checks and tests). */
export function referencesIn(value: unknown): string[] {
  const out: string[] = [];
  mapReferences(value, (ref, where) => {
    if (where === 'reference') out.push(ref);
    return undefined;
  });
  return out;
}

/** `Patient?identifier=a|b`: a conditional reference (http.html#trules). */
export function isConditionalReference(ref: string): boolean {
  return /^[A-Z][A-Za-z]+\?/.test(ref);
}

/** `urn:uuid:...` or `urn:oid:...`: a Bundle-local identity that a transaction must resolve. */
export function isUrnReference(ref: string): boolean {
  return ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:');
}
