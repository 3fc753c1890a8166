import { jsonEqual } from '../fhir/json-patch';
import { jsonContains } from './compare';
import type { Discriminator, ElementNode } from './model';

/** One occurrence of an element in the instance: its JSON value, primitive extension and type. */
export interface Item {
  value: unknown;
  ext?: unknown;
  /** The FHIR type of this occurrence (choice: from the JSON key; resources: resourceType). */
  type: string;
}

type Segment =
  | { kind: 'name'; name: string }
  | { kind: 'ext'; url: string }
  | { kind: 'this' }
  | { kind: 'resolve' }
  | { kind: 'ofType'; type: string };

const segmentCache = new Map<string, Segment[]>();

/** The restricted FHIRPath of discriminator paths (profiling.html#discriminator). */
function segments(path: string): Segment[] {
  let out = segmentCache.get(path);
  if (out) return out;
  out = [];
  const re =
    /\$this|resolve\(\)|extension\('([^']*)'\)|extension\("([^"]*)"\)|ofType\(([^)]*)\)|[A-Za-z0-9_]+(?:\[x\])?/g;
  for (const m of path.matchAll(re)) {
    const t = m[0];
    if (t === '$this') out.push({ kind: 'this' });
    else if (t === 'resolve()') out.push({ kind: 'resolve' });
    else if (m[1] !== undefined || m[2] !== undefined) out.push({ kind: 'ext', url: m[1] ?? m[2] ?? '' });
    else if (m[3] !== undefined) out.push({ kind: 'ofType', type: m[3] });
    else out.push({ kind: 'name', name: t.replace('[x]', '') });
  }
  segmentCache.set(path, out);
  return out;
}

function asArray(v: unknown): unknown[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Values at a discriminator path in an instance (undefined for `resolve()`, which needs the server). */
export function valuesAt(value: unknown, path: string): unknown[] | undefined {
  let cur: unknown[] = [value];
  for (const seg of segments(path)) {
    if (seg.kind === 'this' || seg.kind === 'ofType') continue;
    if (seg.kind === 'resolve') return undefined;
    const next: unknown[] = [];
    for (const v of cur) {
      if (typeof v !== 'object' || v === null) continue;
      const o = v as Record<string, unknown>;
      if (seg.kind === 'ext') {
        for (const e of asArray(o.extension)) {
          if (typeof e === 'object' && e !== null && (e as Record<string, unknown>).url === seg.url)
            next.push(e);
        }
      } else if (seg.name in o) {
        next.push(...asArray(o[seg.name]));
      } else {
        // A choice element named without its type (value -> valueQuantity).
        for (const [k, x] of Object.entries(o)) {
          if (k.startsWith(seg.name) && /^[A-Z]/.test(k.slice(seg.name.length))) next.push(...asArray(x));
        }
      }
    }
    cur = next;
  }
  return cur;
}

/** The element a discriminator path names inside a slice definition. */
export function nodeAt(slice: ElementNode, path: string): ElementNode | undefined {
  let node: ElementNode | undefined = slice;
  for (const seg of segments(path)) {
    if (!node) return undefined;
    if (seg.kind === 'this' || seg.kind === 'ofType') continue;
    if (seg.kind === 'resolve') return node;
    if (seg.kind === 'ext') {
      const ext: ElementNode | undefined = node.children.get('extension');
      node = ext?.slices.find((s) => extensionUrl(s) === seg.url);
      continue;
    }
    node = node.children.get(seg.name);
  }
  return node;
}

/** The URL an extension slice stands for: its fixed url, else the profile of its type. */
export function extensionUrl(slice: ElementNode): string | undefined {
  const url = slice.children.get('url')?.fixed;
  if (typeof url === 'string') return url;
  return slice.types[0]?.profiles[0];
}

/**
 * The fixed or pattern value a slice requires at a path, walking into a fixed/pattern on the way
 * and into the slices of elements along the path (code.coding.code with coding sliced).
 */
function expectedAt(slice: ElementNode, path: string): { value: unknown; exact: boolean } | undefined {
  return expectedAlong(
    slice,
    segments(path).filter((s) => s.kind !== 'this' && s.kind !== 'ofType'),
  );
}

function expectedAlong(node: ElementNode, segs: Segment[]): { value: unknown; exact: boolean } | undefined {
  const fixedOrPattern = node.fixed ?? node.pattern;
  if (fixedOrPattern !== undefined) {
    const exact = node.fixed !== undefined;
    if (segs.length === 0) return { value: fixedOrPattern, exact };
    const rest = segs
      .map((s) => (s.kind === 'name' ? s.name : s.kind === 'ext' ? `extension('${s.url}')` : ''))
      .join('.');
    const vals = valuesAt(fixedOrPattern, rest);
    if (!vals || vals.length !== 1) return undefined;
    return { value: vals[0], exact };
  }
  const seg = segs[0];
  if (!seg) return undefined;
  const rest = segs.slice(1);
  let next: ElementNode | undefined;
  if (seg.kind === 'ext') {
    next = node.children.get('extension')?.slices.find((s) => extensionUrl(s) === seg.url);
  } else if (seg.kind === 'name') {
    if (seg.name === 'url' && !node.children.get('url')?.fixed && node.types[0]?.code === 'Extension') {
      const url = extensionUrl(node);
      return url === undefined ? undefined : { value: url, exact: true };
    }
    next = node.children.get(seg.name);
  }
  if (!next) return undefined;
  const found = expectedAlong(next, rest);
  if (found) return found;
  for (const s of next.slices) {
    const inSlice = expectedAlong(s, rest);
    if (inSlice) return inSlice;
  }
  return undefined;
}

/** The types of a node at a path, for `type` discriminators. */
function typesAt(slice: ElementNode, path: string): string[] {
  const segs = segments(path);
  const node = nodeAt(slice, path);
  const ofType = segs.find((s) => s.kind === 'ofType');
  if (ofType && ofType.kind === 'ofType') return [ofType.type];
  return node ? node.types.map((t) => t.code) : [];
}

/**
 * Whether an occurrence belongs to a slice. `conformsTo` checks a value against a profile
 * (for `profile` discriminators); it returns undefined when the profile is not held.
 */
export function matchesSlice(
  item: Item,
  slice: ElementNode,
  discriminators: readonly Discriminator[],
  conformsTo: (value: unknown, profile: string) => boolean | undefined,
  memberOf: (value: unknown, valueSet: string) => boolean,
): boolean {
  if (discriminators.length === 0) return false;
  // At least one discriminator must actually say something about this slice.
  let decided = false;
  for (const d of discriminators) {
    if (d.type === 'value' || d.type === 'pattern') {
      const expected = expectedAt(slice, d.path);
      const actual = valuesAt(item.value, d.path);
      if (!actual) return false;
      if (!expected) {
        // Slicing by a required binding (the slice names a ValueSet instead of a value).
        const binding = nodeAt(slice, d.path)?.binding;
        // A slice that says nothing about this discriminator is not constrained by it.
        if (binding?.strength !== 'required' || !binding.valueSet) continue;
        const vs = binding.valueSet;
        if (!actual.some((a) => memberOf(a, vs))) return false;
        decided = true;
        continue;
      }
      const ok = actual.some((a) =>
        expected.exact && d.type === 'value' ? jsonEqual(a, expected.value) : jsonContains(a, expected.value),
      );
      if (!ok) return false;
      decided = true;
    } else if (d.type === 'exists') {
      const node = nodeAt(slice, d.path);
      const actual = valuesAt(item.value, d.path);
      if (!node || !actual) return false;
      if (node.min >= 1 && actual.length === 0) return false;
      if (node.max === 0 && actual.length > 0) return false;
      decided = true;
    } else if (d.type === 'type') {
      const expected = typesAt(slice, d.path);
      let actualType: string | undefined;
      const segs = segments(d.path).filter((s) => s.kind !== 'ofType');
      if (segs.length === 0 || (segs.length === 1 && segs[0]?.kind === 'this')) {
        actualType = item.type;
      } else {
        const v = valuesAt(item.value, d.path)?.[0];
        if (typeof v === 'object' && v !== null) {
          const rt = (v as Record<string, unknown>).resourceType;
          if (typeof rt === 'string') actualType = rt;
        }
      }
      if (!actualType || !expected.includes(actualType)) return false;
      decided = true;
    } else if (d.type === 'profile') {
      const node = nodeAt(slice, d.path);
      const actual = valuesAt(item.value, d.path);
      const profiles = node?.types.flatMap((t) => (t.profiles.length ? t.profiles : t.targetProfiles)) ?? [];
      if (!actual || actual.length === 0 || profiles.length === 0) return false;
      const ok = actual.some((v) => profiles.some((p) => conformsTo(v, p) === true));
      if (!ok) return false;
      decided = true;
    } else {
      return false;
    }
  }
  return decided;
}
