/**
 * A version of a resource is held twice, in its type's collection (current) and in `history`, as
 * one shared, frozen object in memory. Written naively, the journal and snapshots would hold it
 * twice. These helpers write a top-level field that is the very same object as one written earlier
 * in the same record (or snapshot) as a back-reference `{"$same": [n, field]}`, and restore the
 * sharing when reading. Documents never contain `$`-prefixed keys (request bodies with them are
 * refused), so the marker cannot collide with data.
 */

type Doc = { _id: string } & Record<string, unknown>;

export class SharedFieldWriter {
  private readonly seen = new Map<object, [number, string]>();

  /** The document to serialise as item `n`: fields seen before become back-references. */
  encode(n: number, doc: Doc): Doc {
    let out: Doc | undefined;
    for (const [k, v] of Object.entries(doc)) {
      if (v === null || typeof v !== 'object') continue;
      const ref = this.seen.get(v);
      if (ref) {
        out ??= { ...doc };
        out[k] = { $same: ref };
      } else {
        this.seen.set(v, [n, k]);
      }
    }
    return out ?? doc;
  }
}

/** Restores back-references in `doc` (item `n`) from the items already read. */
export function decodeShared(doc: Doc, items: ReadonlyArray<Doc | null | undefined>): Doc {
  for (const [k, v] of Object.entries(doc)) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
    const ref = (v as { $same?: unknown }).$same;
    if (!Array.isArray(ref) || Object.keys(v).length !== 1) continue;
    const [n, field] = ref as [number, string];
    const source = items[n];
    if (!source || !(field in source))
      throw new Error(`journal back-reference to a missing item ${n}.${field}`);
    doc[k] = source[field];
  }
  return doc;
}
