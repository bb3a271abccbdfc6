import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import type { ColumnSource } from 'hyparquet-writer';
import { openEncodedParquet } from '../src/output/parquet-encoder.js';

function columns(from: number, to: number): ColumnSource[] {
  const n = Array.from({ length: to - from }, (_, i) => from + i);
  return [
    { name: 'key', type: 'STRING', data: n.map((i) => `k${i}`) },
    { name: 'width', type: 'INT32', data: n.map((i) => (i % 7 === 0 ? null : i)) },
    { name: 'similarity', type: 'DOUBLE', data: n.map((i) => i / 3) },
  ];
}

async function inTempDir(use: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cah-parquet-encoder-'));
  try {
    await use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function read(path: string): { rowGroups: number[]; rows: Promise<Record<string, unknown>[]> } {
  const bytes = readFileSync(path);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return { rowGroups: parquetMetadata(file).row_groups.map((g) => Number(g.num_rows)), rows: parquetReadObjects({ file }) };
}

test('the encoder thread writes every row sent in batches, in order, cut into row groups of 8,192', async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, 'a.parquet');
    const file = openEncodedParquet(path, columns(0, 0));
    for (let from = 0; from < 20_000; from += 512) await file.append(columns(from, Math.min(20_000, from + 512)));
    await file.close();
    assert.equal(file.error, null);
    const { rowGroups, rows } = read(path);
    assert.deepEqual(rowGroups, [8192, 8192, 3616]);
    const got = await rows;
    assert.equal(got.length, 20_000);
    for (const i of [0, 7, 8191, 8192, 19_999]) assert.deepEqual(got[i], { key: `k${i}`, width: i % 7 === 0 ? null : i, similarity: i / 3 });
  });
});

test('rows the encoder cannot write fail the file at close with the encoder\'s message, and the file can then be removed', async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, 'bad.parquet');
    const file = openEncodedParquet(path, columns(0, 0));
    await file.append(columns(0, 10));
    await file.append([{ name: 'key', type: 'STRING', data: ['x'] }, { name: 'width', type: 'INT32', data: ['not a number'] }, { name: 'similarity', type: 'DOUBLE', data: [1] }]);
    await assert.rejects(file.close(), /expected integer/);
    assert.match(file.error?.message ?? '', /expected integer/);
    await file.abandon();
    rmSync(path, { force: true });
    assert.equal(existsSync(path), false);
  });
});

test('an encoder thread that dies fails every file open on it with its error; the next file gets a new thread', async () => {
  await inTempDir(async (dir) => {
    const healthy = openEncodedParquet(join(dir, 'healthy.parquet'), columns(0, 0));
    await healthy.append(columns(0, 100));
    // A request the thread cannot read (no columns) throws there, outside any file's error handling.
    const broken = openEncodedParquet(join(dir, 'broken.parquet'), undefined as unknown as ColumnSource[]);
    await assert.rejects(broken.close());
    await assert.rejects(healthy.close(), 'a file open on the dead thread fails too');
    assert.ok(healthy.error, 'and says why');
    const next = openEncodedParquet(join(dir, 'next.parquet'), columns(0, 0));
    await next.append(columns(0, 3));
    await next.close();
    assert.equal((await read(join(dir, 'next.parquet')).rows).length, 3);
  });
});

test('rows that cannot cross to the thread fail that call and the file, and nothing waits for an answer that cannot come', async () => {
  await inTempDir(async (dir) => {
    assert.throws(() => openEncodedParquet(join(dir, 'a.parquet'), [{ name: 'key', type: 'STRING', data: [Symbol('x')] }] as unknown as ColumnSource[]), { name: 'DataCloneError' });
    const file = openEncodedParquet(join(dir, 'b.parquet'), columns(0, 0));
    await file.append(columns(0, 5));
    await assert.rejects(file.append([{ name: 'key', type: 'STRING', data: [Symbol('x')] }] as unknown as ColumnSource[]), { name: 'DataCloneError' });
    await assert.rejects(file.close(), { name: 'DataCloneError' }, 'the file is short of those rows');
    await file.abandon();
  });
});

test('a disk that stops taking bytes stops the batches: the thread answers once the file has room, and every row arrives when the disk resumes', { skip: process.platform === 'win32' && 'needs a FIFO' }, async () => {
  await inTempDir(async (dir) => {
    // The "disk" is a FIFO read only when the test says so.
    const path = join(dir, 'slow.parquet');
    execFileSync('mkfifo', [path]);
    const reader = createReadStream(path);
    const chunks: Buffer[] = [];
    const readerClosed = new Promise<void>((resolve) => reader.once('close', () => resolve()));
    reader.pause();
    const file = openEncodedParquet(path, [{ name: 'caption', type: 'STRING', data: [] }]);
    // 512 rows of ~2 KB of incompressible text a batch: 1 MB each.
    const batch = (b: number): ColumnSource[] => [{ name: 'caption', type: 'STRING', data: Array.from({ length: 512 }, (_, i) => `${b}.${i} ${randomBytes(1000).toString('hex')}`) }];
    let sent = 0;
    let stalled = false;
    while (sent < 400 && !stalled) {
      const appended = file.append(batch(sent));
      stalled = (await Promise.race([appended.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 2000))])) as boolean;
      if (stalled) {
        // Under 400 MB went out unread: the batches wait for the disk instead of filling memory.
        assert.ok(sent < 100, `${sent} batches taken while nothing was read`);
        reader.on('data', (chunk) => chunks.push(chunk as Buffer));
        reader.resume();
        await appended;
      }
      sent++;
    }
    assert.ok(stalled, 'the batches stopped while the disk took nothing');
    await file.close();
    await readerClosed;
    const bytes = Buffer.concat(chunks);
    const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
    assert.equal(rows.length, sent * 512);
    assert.match(String(rows.at(-1)!['caption']), new RegExp(`^${sent - 1}\\.511 `));
  });
});
