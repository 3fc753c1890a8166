import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { decodeShared, SharedFieldWriter } from './dedupe';
import { decodeRecords, encodeRecords, writeFully } from './journal';

type Doc = { _id: string } & Record<string, unknown>;

/**
 * A snapshot is a point-in-time copy of every collection, written to `<file>.tmp`, fsync'd, then
 * renamed into place. Lines are journal-style records `[collection, doc]`, and the last line is a
 * trailer `{"end": <count>}`: a snapshot without a valid trailer is incomplete and ignored.
 */
export async function writeSnapshot(file: string, state: Array<[string, Doc[]]>): Promise<number> {
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, 'w');
  let bytes = 0;
  let count = 0;
  try {
    // Lines are encoded about 1 MiB at a time, into one Buffer each.
    let chunk: string[] = [];
    let lengths: number[] = [];
    let chunkLen = 0;
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const buf = encodeRecords(chunk, lengths);
      await writeFully(fh, buf);
      bytes += buf.length;
      chunk = [];
      lengths = [];
      chunkLen = 0;
    };
    const add = (json: string): void => {
      const length = Buffer.byteLength(json);
      chunk.push(json);
      lengths.push(length);
      chunkLen += length + 10;
    };
    const shared = new SharedFieldWriter();
    for (const [c, docs] of state) {
      for (const d of docs) {
        add(JSON.stringify([c, shared.encode(count, d)]));
        count++;
        if (chunkLen > 1 << 20) await flush();
      }
    }
    add(JSON.stringify({ end: count }));
    await flush();
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  return bytes;
}

/** The snapshot's documents, or undefined when it is incomplete or damaged. */
export function readSnapshot(file: string): Array<[string, Doc]> | undefined {
  let records: string[];
  try {
    const d = decodeRecords(fs.readFileSync(file), file);
    if (d.tornTail) return undefined;
    records = d.records;
  } catch {
    return undefined;
  }
  const last = records.pop();
  if (last === undefined) return undefined;
  const trailer = JSON.parse(last) as { end?: unknown };
  if (trailer.end !== records.length) return undefined;
  const docs: Doc[] = [];
  return records.map((r) => {
    const [c, raw] = JSON.parse(r) as [string, Doc];
    const doc = decodeShared(raw, docs);
    docs.push(doc);
    return [c, doc];
  });
}
