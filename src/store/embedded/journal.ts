import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

/**
 * The embedded engine's durable log. One record per line: `<crc32 hex> <json>\n`.
 *
 * Appends are group-committed: records queued while a write+fdatasync is in flight go out together
 * in the next one, so throughput is bounded by the disk's fsync rate times the batch size, not by
 * one fsync per write. A record's promise resolves only after the fdatasync that covers it.
 *
 * A crash can leave a torn last batch (a partial line, or a line whose checksum fails). Recovery
 * drops it. Damage followed by valid records is not a torn tail but corruption, and recovery refuses
 * to guess: it stops with an error naming the file and offset.
 */

export function encodeRecord(json: string): string {
  const crc = zlib.crc32(json).toString(16).padStart(8, '0');
  return `${crc} ${json}\n`;
}

/**
 * encodeRecord for several records, as one Buffer of lines in one allocation (small Buffers each
 * come from Node's shared pool, and refilling the pool costs more than the copy saved). Each JSON is
 * encoded once and its checksum taken over those bytes (the value zlib gives for the string).
 * `lengths` are the JSON strings' UTF-8 byte lengths.
 */
export function encodeRecords(jsons: readonly string[], lengths: readonly number[]): Buffer {
  let total = 0;
  for (const l of lengths) total += l + 10;
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < jsons.length; i++) {
    const length = lengths[i] as number;
    buf.write(jsons[i] as string, off + 9, length, 'utf8');
    const crc = zlib
      .crc32(buf.subarray(off + 9, off + 9 + length))
      .toString(16)
      .padStart(8, '0');
    buf.write(crc, off, 8, 'latin1');
    buf[off + 8] = 0x20;
    buf[off + length + 9] = 0x0a;
    off += length + 10;
  }
  return buf;
}

export interface DecodedLines {
  records: string[];
  /** Byte offset just past the last good record. */
  goodLength: number;
  /** True when bytes after goodLength were dropped. */
  tornTail: boolean;
}

export class JournalCorruptError extends Error {
  constructor(file: string, offset: number) {
    super(
      `journal ${file} is corrupt at byte ${offset} (valid records follow damaged ones); refusing to start`,
    );
    this.name = 'JournalCorruptError';
  }
}

/** Splits a journal buffer into verified record payloads. */
export function decodeRecords(buf: Buffer, file: string): DecodedLines {
  const records: string[] = [];
  let pos = 0;
  let goodLength = 0;
  let firstBad = -1;
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    const end = nl === -1 ? buf.length : nl;
    const line = buf.subarray(pos, end);
    const ok = nl !== -1 && verifyLine(line);
    if (ok) {
      if (firstBad !== -1) throw new JournalCorruptError(file, firstBad);
      records.push(line.subarray(9).toString('utf8'));
      goodLength = end + 1;
    } else if (firstBad === -1) {
      firstBad = pos;
    }
    pos = end + 1;
  }
  return { records, goodLength, tornTail: goodLength < buf.length };
}

/** Whether a line (without its newline) is `<crc32 hex> <payload>` with a matching checksum. */
export function verifyLine(line: Buffer): boolean {
  if (line.length < 10 || line[8] !== 0x20) return false;
  const crc = Number.parseInt(line.subarray(0, 8).toString('latin1'), 16);
  if (!Number.isFinite(crc)) return false;
  return zlib.crc32(line.subarray(9)) === crc;
}

interface Pending {
  json: string;
  /** UTF-8 bytes of `json`. */
  length: number;
  resolve: () => void;
  reject: (e: Error) => void;
  /** Called (newest first) when the batch holding this record could not be made durable. */
  undo: () => void;
}

export class JournalWriter {
  private fh: fsp.FileHandle | undefined;
  private size: number;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** Set when a failed write left bytes that could not be truncated away. */
  private damaged = false;
  private closed = false;

  private constructor(
    readonly file: string,
    fh: fsp.FileHandle,
    size: number,
  ) {
    this.fh = fh;
    this.size = size;
  }

  static async open(file: string): Promise<JournalWriter> {
    const fh = await fsp.open(file, 'a+');
    const { size } = await fh.stat();
    return new JournalWriter(file, fh, size);
  }

  get bytes(): number {
    return this.size;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.flushing === undefined;
  }

  /**
   * Queues one record; resolves once it is on disk. `undo` reverts its in-memory effect on failure.
   * `length` is the UTF-8 byte length of `json`, when the caller has it already.
   */
  append(json: string, undo: () => void, length = Buffer.byteLength(json)): Promise<void> {
    if (this.closed) return Promise.reject(new Error('journal is closed'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ json, length, resolve, reject, undo });
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    // Let the current tick's writes join the batch.
    await new Promise<void>((r) => setImmediate(r));
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.writeBatch(batch);
          for (const p of batch) p.resolve();
        } catch (e) {
          // Everything applied in memory since this batch began is undone, newest first: the
          // queued records were applied on top of the failed ones.
          const later = this.queue;
          this.queue = [];
          const all = [...batch, ...later];
          for (let i = all.length - 1; i >= 0; i--) all[i]?.undo();
          const err = e instanceof Error ? e : new Error(String(e));
          for (const p of all) p.reject(err);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error('journal is closed');
    if (this.damaged) {
      await fh.truncate(this.size);
      await fh.datasync();
      this.damaged = false;
    }
    const buf = encodeRecords(
      batch.map((p) => p.json),
      batch.map((p) => p.length),
    );
    try {
      await writeFully(fh, buf, this.size);
      await fh.datasync();
      this.size += buf.length;
    } catch (e) {
      this.damaged = true;
      try {
        await fh.truncate(this.size);
        this.damaged = false;
      } catch {
        // retried before the next batch
      }
      throw e;
    }
  }

  /** Waits until every queued record is durable (or failed). */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  async close(): Promise<void> {
    await this.drain();
    this.closed = true;
    await this.fh?.close();
    this.fh = undefined;
  }
}

/** Writes all of `buf` (a write may take fewer bytes than asked), at `position` or the file's offset. */
export async function writeFully(fh: fsp.FileHandle, buf: Buffer, position?: number): Promise<void> {
  for (let off = 0; off < buf.length;) {
    const at = position === undefined ? null : position + off;
    off += (await fh.write(buf, off, buf.length - off, at)).bytesWritten;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Reads and verifies one journal; drops (and truncates) a torn tail. */
export function readJournal(file: string, truncateTorn: boolean): { records: string[]; torn: boolean } {
  const buf = fs.readFileSync(file);
  const d = decodeRecords(buf, path.basename(file));
  if (d.tornTail && truncateTorn) {
    const fd = fs.openSync(file, 'r+');
    try {
      fs.ftruncateSync(fd, d.goodLength);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  return { records: d.records, torn: d.tornTail };
}
