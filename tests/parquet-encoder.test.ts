import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
