import fs from 'node:fs';
import { JournalCorruptError, JournalWriter, verifyLine } from './journal';

/** What the log keeps in memory of one record. */
export interface RecordMeta {
  /** A number that never decreases from one record to the next (e.g. a time in ms). */
  order: number;
  /** Posting keys: the record is found by an equality lookup on each of them. */
  keys: readonly string[];
}

/** How recovery learns the meta of a record it reads back, and anything else the owner keeps. */
export type Describe = (json: string, n: number) => RecordMeta;

const READ_CHUNK = 4 * 1024 * 1024;

/**
 * An append-only file of immutable records, for data that is written once and never changed (the
 * audit log). Unlike the engine's journal it is never compacted or snapshotted: the file is the
 * data. Memory holds only where each record ends, one order key per record (never decreasing, so a
 * range of orders is a range of records) and posting lists (key -> record numbers, ascending);
 * records are read back from the file when asked for, so memory grows by some bytes per posting,
 * not by the record.
 *
 * Records are numbered 1, 2, 3, ... in append order. Lines are the journal's (`<crc32> <json>\n`)
 * and appends are group-committed the same way (JournalWriter): `append` resolves once the record
 * is on disk, and only then is it visible (`size`). Recovery streams the file in chunks, drops a
 * torn tail and refuses damage followed by valid records.
 */
export class RecordLog {
  /** ends[n - 1]: the byte offset just past record n. */
  private ends = new Float64Array(1024);
  private orders = new Float64Array(1024);
  /** Records appended (durable or on their way). */
  private appended = 0;
  /** Records on disk: the visible ones. */
  private durable = 0;
  private readonly postings = new Map<string, number[]>();
  private fd: number | undefined;
  private writer!: JournalWriter;

  private constructor(readonly file: string) {}

  /** Opens (creating) the log; `describe` is called for every record found, in order. */
  static async open(file: string, describe: Describe): Promise<{ log: RecordLog; tornTail: boolean }> {
    if (!fs.existsSync(file)) fs.writeFileSync(file, '');
    const log = new RecordLog(file);
    const tornTail = log.recover(describe);
    log.writer = await JournalWriter.open(file);
    log.fd = fs.openSync(file, 'r');
    return { log, tornTail };
  }

  /** Visible (durable) records. */
  get size(): number {
    return this.durable;
  }

  /** Bytes on disk. */
  get bytes(): number {
    return this.writer.bytes;
  }

  private recover(describe: Describe): boolean {
    const fd = fs.openSync(this.file, 'r+');
    try {
      let good = 0;
      let firstBad = -1;
      for (const { line, start, end } of linesOf(fd)) {
        if (line && verifyLine(line)) {
          if (firstBad !== -1) throw new JournalCorruptError(this.file, firstBad);
          const n = this.appended + 1;
          this.push(n, end, describe(line.subarray(9).toString('utf8'), n));
          good = end;
        } else if (firstBad === -1) {
          firstBad = start;
        }
      }
      this.durable = this.appended;
      if (good < fs.fstatSync(fd).size) {
        // A torn last batch (a crash during its write): never acknowledged, so dropped.
        fs.ftruncateSync(fd, good);
        fs.fdatasyncSync(fd);
        return true;
      }
      return false;
    } finally {
      fs.closeSync(fd);
    }
  }

  private push(n: number, end: number, meta: RecordMeta): void {
    if (n > this.ends.length) {
      const grow = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.ends = grow(this.ends);
      this.orders = grow(this.orders);
    }
    const previous = n > 1 ? (this.orders[n - 2] as number) : -Infinity;
    this.ends[n - 1] = end;
    this.orders[n - 1] = Math.max(meta.order, previous);
    for (const k of meta.keys) {
      const list = this.postings.get(k);
      if (!list) this.postings.set(k, [n]);
      else if (list[list.length - 1] !== n) list.push(n);
    }
    this.appended = n;
  }

  /**
   * Appends one record; resolves once it is durable (then it is visible). Records become durable in
   * append order. On a failed write the record (and every one appended after it) is taken back.
   */
  append(json: string, meta: RecordMeta): Promise<void> {
    const n = this.appended + 1;
    const start = n > 1 ? (this.ends[n - 2] as number) : 0;
    // The line is `<8 hex> <json>\n` (encodeRecord).
    const length = Buffer.byteLength(json);
    this.push(n, start + length + 10, meta);
    return this.writer
      .append(json, () => this.undo(n, meta), length)
      .then(() => {
        if (n > this.durable) this.durable = n;
      });
  }

  /** Takes back record n, the newest one (the writer undoes newest first). */
  private undo(n: number, meta: RecordMeta): void {
    if (n !== this.appended) throw new Error(`record log: undo of ${n} while ${this.appended} is the newest`);
    for (const k of meta.keys) {
      const list = this.postings.get(k);
      if (list && list[list.length - 1] === n) list.pop();
      if (list && list.length === 0) this.postings.delete(k);
    }
    this.appended = n - 1;
    if (this.durable > this.appended) this.durable = this.appended;
  }

  /** The record numbers (ascending, visible ones only) holding a posting key. */
  lookup(key: string): readonly number[] {
    const list = this.postings.get(key);
    if (!list) return [];
    if (list.length === 0 || (list[list.length - 1] as number) <= this.durable) return list;
    let hi = list.length;
    while (hi > 0 && (list[hi - 1] as number) > this.durable) hi--;
    return list.slice(0, hi);
  }

  /** The order key of record n. */
  orderOf(n: number): number {
    return this.orders[n - 1] as number;
  }

  /**
   * The visible records whose order lies within [lo, hi] (bounds inclusive unless told otherwise),
   * as [first, last] record numbers (first > last when none).
   */
  orderRange(lo: number, hi: number, loOpen = false, hiOpen = false): [number, number] {
    // First record with order >= lo (> lo when open), last with order <= hi (< hi when open).
    const first = this.search((o) => (loOpen ? o > lo : o >= lo));
    const last = this.search((o) => (hiOpen ? o >= hi : o > hi)) - 1;
    return [first, last];
  }

  /** The first record number (1-based) whose order passes `past`, or size + 1. */
  private search(past: (order: number) => boolean): number {
    let lo = 1;
    let hi = this.durable + 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (past(this.orders[mid - 1] as number)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Record n's JSON, read back from the file. */
  read(n: number): string {
    let out: string | undefined;
    this.readRange(n, n, (json) => (out = json));
    if (out === undefined) throw new Error(`record log: no record ${n}`);
    return out;
  }

  /** Calls `fn` with records first..last (inclusive, visible ones), reading the file in large pieces. */
  readRange(first: number, last: number, fn: (json: string, n: number) => void): void {
    const fd = this.fd;
    if (fd === undefined) throw new Error('record log is closed');
    const to = Math.min(last, this.durable);
    let n = Math.max(first, 1);
    while (n <= to) {
      const start = n > 1 ? (this.ends[n - 2] as number) : 0;
      // As many whole records as fit a chunk (at least one).
      let m = n;
      while (m < to && (this.ends[m] as number) - start <= READ_CHUNK) m++;
      const end = this.ends[m - 1] as number;
      const buf = Buffer.allocUnsafe(end - start);
      let off = 0;
      while (off < buf.length) {
        const got = fs.readSync(fd, buf, off, buf.length - off, start + off);
        if (got === 0)
          throw new Error(`record log ${this.file} is shorter than its index (at byte ${start + off})`);
        off += got;
      }
      let at = 0;
      for (let k = n; k <= m; k++) {
        const stop = (this.ends[k - 1] as number) - start - 1;
        const line = buf.subarray(at, stop);
        if (!verifyLine(line)) throw new Error(`record log ${this.file}: record ${k} fails its checksum`);
        fn(line.subarray(9).toString('utf8'), k);
        at = stop + 1;
      }
      n = m + 1;
    }
  }

  /**
   * Reads the file as it is on disk now, whatever the index says (for verification): `fn` gets
   * each line's payload, or undefined for a line whose checksum fails, and returns false to stop.
   * Yields to other work between chunks.
   */
  async walkFile(fn: (payload: string | undefined, line: number) => boolean): Promise<void> {
    const fd = fs.openSync(this.file, 'r');
    try {
      let n = 0;
      for (const { line } of linesOf(fd)) {
        n++;
        if (!fn(line && verifyLine(line) ? line.subarray(9).toString('utf8') : undefined, n)) return;
        if (n % 10_000 === 0) await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Waits until every appended record is durable (or failed). */
  async drain(): Promise<void> {
    await this.writer.drain();
  }

  async close(): Promise<void> {
    await this.writer.close();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * The lines of a file, read in chunks: each line without its newline, where it starts, and where
 * the next one starts. A last line without a newline (a torn write) comes as `line: undefined`.
 */
function* linesOf(fd: number): Generator<{ line: Buffer | undefined; start: number; end: number }> {
  let pos = 0;
  let carry = Buffer.alloc(0);
  for (;;) {
    const chunk = Buffer.allocUnsafe(READ_CHUNK);
    const got = fs.readSync(fd, chunk, 0, chunk.length, pos);
    if (got === 0) break;
    const buf = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, got)]) : chunk.subarray(0, got);
    const base = pos - carry.length;
    pos += got;
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      yield { line: buf.subarray(start, nl), start: base + start, end: base + nl + 1 };
      start = nl + 1;
    }
    carry = Buffer.from(buf.subarray(start));
  }
  if (carry.length > 0) yield { line: undefined, start: pos - carry.length, end: pos };
}
