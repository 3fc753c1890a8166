import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JournalCorruptError, JournalWriter } from '../../src/store/embedded/journal';
import { RecordLog, type RecordMeta } from '../../src/store/embedded/record-log';

interface Rec {
  n: number;
  at: number;
  tag: string;
}

const meta = (r: Rec): RecordMeta => ({ order: r.at, keys: [`tag\u0000${r.tag}`] });
const describeRec = (json: string): RecordMeta => meta(JSON.parse(json) as Rec);

describe('RecordLog', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'record-log-'));
    file = path.join(dir, 'log');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function filled(count: number): Promise<RecordLog> {
    const { log } = await RecordLog.open(file, describeRec);
    await Promise.all(
      Array.from({ length: count }, (_, i) => {
        const r: Rec = { n: i + 1, at: 1000 + Math.floor(i / 2), tag: i % 3 === 0 ? 'a' : 'b' };
        return log.append(JSON.stringify(r), meta(r));
      }),
    );
    return log;
  }

  test('records are read back by number, and a reopened log has the same records, orders and postings', async () => {
    const log = await filled(10);
    expect(log.size).toBe(10);
    expect(JSON.parse(log.read(4)) as Rec).toMatchObject({ n: 4 });
    expect(log.lookup('tag\u0000a')).toEqual([1, 4, 7, 10]);
    await log.close();
    const { log: again, tornTail } = await RecordLog.open(file, describeRec);
    expect(tornTail).toBe(false);
    expect(again.size).toBe(10);
    const all: number[] = [];
    again.readRange(1, 10, (json, n) => {
      expect((JSON.parse(json) as Rec).n).toBe(n);
      all.push(n);
    });
    expect(all).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(again.lookup('tag\u0000a')).toEqual([1, 4, 7, 10]);
    // Orders 1000, 1000, 1001, 1001, ...: [1001, 1002] is records 3..6.
    expect(again.orderRange(1001, 1002)).toEqual([3, 6]);
    expect(again.orderRange(1001, 1002, true, true)).toEqual([5, 4]);
    await again.close();
  });

  test('a torn last line is dropped (and cut from the file) on open', async () => {
    const log = await filled(3);
    await log.close();
    const good = fs.statSync(file).size;
    fs.appendFileSync(file, '0badc0de {"n":4,"at":');
    const { log: again, tornTail } = await RecordLog.open(file, describeRec);
    expect(tornTail).toBe(true);
    expect(again.size).toBe(3);
    expect(fs.statSync(file).size).toBe(good);
    await again.append(JSON.stringify({ n: 4, at: 2000, tag: 'a' }), { order: 2000, keys: [] });
    expect(JSON.parse(again.read(4)) as Rec).toMatchObject({ n: 4 });
    await again.close();
  });

  test('damage followed by good records is corruption: the log refuses to open', async () => {
    const log = await filled(3);
    await log.close();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[1] = (lines[1] as string).replace('"n":2', '"n":9');
    fs.writeFileSync(file, lines.join('\n'));
    await expect(RecordLog.open(file, describeRec)).rejects.toBeInstanceOf(JournalCorruptError);
  });

  const haveDevFull = fs.existsSync('/dev/full');
  (haveDevFull ? test : test.skip)(
    'a failed write takes the record back: not visible, not posted, and the log goes on',
    async () => {
      const log = await filled(2);
      const seam = log as unknown as { writer: JournalWriter };
      const real = seam.writer;
      seam.writer = await JournalWriter.open('/dev/full');
      await expect(
        log.append(JSON.stringify({ n: 3, at: 5, tag: 'a' }), { order: 5, keys: ['tag\u0000a'] }),
      ).rejects.toThrow();
      await seam.writer.close().catch(() => undefined);
      seam.writer = real;
      expect(log.size).toBe(2);
      expect(log.lookup('tag\u0000a')).toEqual([1]);
      await log.append(JSON.stringify({ n: 3, at: 6, tag: 'a' }), { order: 6, keys: ['tag\u0000a'] });
      expect(log.lookup('tag\u0000a')).toEqual([1, 3]);
      expect(JSON.parse(log.read(3)) as Rec).toMatchObject({ at: 6 });
      await log.close();
    },
  );

  test('walkFile reads the file as it is on disk, damaged lines included', async () => {
    const log = await filled(3);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[2] = (lines[2] as string).replace('"n":3', '"n":8');
    fs.writeFileSync(file, lines.join('\n'));
    const seen: Array<string | undefined> = [];
    await log.walkFile((payload) => {
      seen.push(payload === undefined ? undefined : String((JSON.parse(payload) as Rec).n));
      return true;
    });
    expect(seen).toEqual(['1', '2', undefined]);
    await log.close();
  });
});
