import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { parse as parseNpy } from 'npyjs';
import { float16NpyHeader } from '../src/output/embeddings.js';
import type { SampleRecord } from '../src/output/sample.js';
import { ShardWriter } from '../src/output/shard-writer.js';

const hasNumpy = spawnSync('python3', ['-c', 'import numpy']).status === 0;

function sample(key: string, status: SampleRecord['status'], similarity: number | null): SampleRecord {
  return {
    key, url: `http://example.com/${key}.jpg`, caption: `caption ${key}`, pageUrl: 'http://example.com/', license: null, status,
    errorMessage: status === 'success' ? null : 'nope', width: 8, height: 8, originalWidth: 8, originalHeight: 8, exif: null, sha256: null,
    similarity, jpeg: status === 'success' ? Buffer.from([0xff, 0xd8, 0xff, 0xd9]) : null, downloadMs: 1, resizeMs: 1, downloadAttempts: 1,
  };
}

function unit(dim: number, seed: number): Float32Array {
  const v = Float32Array.from({ length: dim }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

test('.npy header: version 1.0, float16, C order, data aligned to 64 bytes', () => {
  for (const [rows, dim] of [[0, 512], [3, 4], [123456, 768]] as const) {
    const header = float16NpyHeader(rows, dim);
    assert.equal(header.length % 64, 0);
    assert.equal(header.subarray(0, 8).toString('latin1'), '\x93NUMPY\x01\x00');
    assert.equal(header.readUInt16LE(8), header.length - 10);
    assert.match(header.subarray(10).toString('latin1'), new RegExp(`^\\{'descr': '<f2', 'fortran_order': False, 'shape': \\(${rows}, ${dim}\\), \\} *\\n$`));
  }
});

test('embeddings of kept pairs stream to img_emb/text_emb float16 .npy in the kept rows\' order, with metadata naming each row', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cah-emb-'));
  try {
    const dim = 16;
    const writer = await ShardWriter.open({ outDir: out, shardNumber: 7, attemptTag: 'a1', embeddingDim: dim });
    const kept: { key: string; image: Float32Array; text: Float32Array }[] = [];
    for (let i = 0; i < 40; i++) {
      const status = i % 3 === 0 ? 'failed_to_download' : i % 5 === 0 ? 'filtered_out' : 'success';
      const image = unit(dim, i);
      const text = unit(dim, i + 100);
      await writer.add(sample(`k${i}`, status, status === 'failed_to_download' ? null : 0.3), status === 'success' ? { imageEmbedding: image, textEmbedding: text } : {});
      if (status === 'success') kept.push({ key: `k${i}`, image, text });
    }
    const committed = await writer.commit({ startedAtMs: Date.now() });
    assert.deepEqual(committed.embeddingPaths.map((p) => p.slice(out.length + 1)).sort(), ['img_emb/img_emb_00007.npy', 'metadata/metadata_00007.parquet', 'text_emb/text_emb_00007.npy']);
    for (const [file, which] of [['img_emb/img_emb_00007.npy', 'image'], ['text_emb/text_emb_00007.npy', 'text']] as const) {
      const bytes = readFileSync(join(out, file));
      const npy = parseNpy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      assert.equal(npy.dtype, 'f2');
      assert.deepEqual(npy.shape, [kept.length, dim]);
      const data = npy.data as Float32Array;
      kept.forEach((k, r) => {
        for (let d = 0; d < dim; d++) assert.ok(Math.abs(data[r * dim + d]! - k[which][d]!) < 1e-3, `${file} row ${r} dim ${d}`);
      });
    }
    const meta = readFileSync(join(out, 'metadata', 'metadata_00007.parquet'));
    const rows = await parquetReadObjects({ file: meta.buffer.slice(meta.byteOffset, meta.byteOffset + meta.byteLength) as ArrayBuffer });
    assert.deepEqual(rows.map((r) => r['key']), kept.map((k) => k.key));
    const shardBytes = readFileSync(committed.parquetPath);
    const shardRows = await parquetReadObjects({ file: shardBytes.buffer.slice(shardBytes.byteOffset, shardBytes.byteOffset + shardBytes.byteLength) as ArrayBuffer });
    assert.deepEqual(shardRows.filter((r) => r['status'] === 'success').map((r) => r['key']), kept.map((k) => k.key), 'same order as the kept rows of the shard parquet');
    assert.deepEqual(readdirSync(join(out, '.partial')), [], 'no raw or staged file left');
    if (hasNumpy) {
      const check = spawnSync('python3', ['-c', `import numpy as np; a = np.load('${join(out, 'img_emb', 'img_emb_00007.npy')}'); print(a.dtype, a.shape, round(float(np.linalg.norm(a[0])), 2))`], { encoding: 'utf8' });
      assert.equal(check.stdout.trim(), `float16 (${kept.length}, ${dim}) 1.0`, check.stderr);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('aborting while tar and embedding writes are in flight raises no stray stream error', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cah-abort-inflight-'));
  const stray: unknown[] = [];
  const onUncaught = (err: unknown): void => void stray.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    for (let round = 0; round < 12; round++) {
      const writer = await ShardWriter.open({ outDir: out, shardNumber: round, attemptTag: 'inflight', embeddingDim: 512 });
      const adds: Promise<unknown>[] = [];
      // Many entries queued without waiting, so that fs writes (and writev batches) are pending.
      for (let i = 0; i < 300; i++) {
        const jpeg = Buffer.alloc(64 * 1024, i);
        // An add cut short by the abort rejects, as the coordinator's accept() expects.
        adds.push(writer.add({ ...sample(`r${round}x${i}`, 'success', 0.5), jpeg }, { imageEmbedding: unit(512, i), textEmbedding: unit(512, i + 1) }).catch(() => false));
      }
      // Abort at different moments of the writing: each round a millisecond later.
      await new Promise((r) => setTimeout(r, round));
      await writer.abort();
      await Promise.all(adds);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(stray.map(String), []);
    assert.deepEqual(readdirSync(join(out, '.partial')), []);
  } finally {
    process.off('uncaughtException', onUncaught);
    rmSync(out, { recursive: true, force: true });
  }
});

test('an aborted shard leaves no embedding file behind', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cah-emb-abort-'));
  try {
    const writer = await ShardWriter.open({ outDir: out, shardNumber: 1, attemptTag: 'x', embeddingDim: 4 });
    await writer.add(sample('a', 'success', 0.5), { imageEmbedding: unit(4, 1), textEmbedding: unit(4, 2) });
    await writer.abort();
    assert.deepEqual(readdirSync(join(out, '.partial')), []);
    assert.equal(existsSync(join(out, 'img_emb')), false);
    // Aborted before the files' asynchronous opens finish: the opens must not recreate them after removal.
    for (let i = 0; i < 30; i++) {
      const early = await ShardWriter.open({ outDir: out, shardNumber: 2, attemptTag: `early${i}`, embeddingDim: 4 });
      await early.abort();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(readdirSync(join(out, '.partial')), []);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a large shard reaches the parquet a row group at a time; every row comes back in order, extra columns typed', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cah-rowgroups-'));
  try {
    const writer = await ShardWriter.open({ outDir: out, shardNumber: 3, attemptTag: 'r', extraColumns: [{ name: 'language', type: 'STRING' }, { name: 'watermark', type: 'DOUBLE' }] });
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const status = i % 1000 === 0 ? 'success' : 'failed_to_download';
      await writer.add(sample(`r${i}`, status, null), { extra: { language: i % 2 ? 'en' : null, watermark: i % 3 ? i / n : null } });
    }
    const committed = await writer.commit({ startedAtMs: Date.now() });
    assert.equal(committed.total, n);
    const bytes = readFileSync(committed.parquetPath);
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const { parquetMetadata } = await import('hyparquet');
    assert.ok(parquetMetadata(file).row_groups.length >= 3, 'several row groups');
    const rows = await parquetReadObjects({ file });
    assert.equal(rows.length, n);
    rows.forEach((r, i) => {
      assert.equal(r['key'], `r${i}`);
      assert.equal(r['language'], i % 2 ? 'en' : null);
      assert.equal(r['watermark'], i % 3 ? i / n : null);
    });
    const stats = JSON.parse(readFileSync(committed.statsPath, 'utf8')) as { count: number; successes: number; error_counts: Record<string, Record<string, number>> };
    assert.equal(stats.count, n);
    assert.equal(stats.successes, n / 1000);
    assert.deepEqual(stats.error_counts, { failed_to_download: { nope: n - n / 1000 } });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a parquet of several MB goes to disk in chunks and reads back intact: every row, every byte of its text', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cah-parquet-chunks-'));
  try {
    const writer = await ShardWriter.open({ outDir: out, shardNumber: 4, attemptTag: 'c' });
    // Captions of random hex do not compress: the file outgrows the 1 MB chunks it is written in.
    const captions = Array.from({ length: 3000 }, () => randomBytes(1024).toString('hex'));
    for (const [i, caption] of captions.entries()) await writer.add({ ...sample(`c${i}`, 'failed_to_download', null), caption });
    const committed = await writer.commit({ startedAtMs: Date.now() });
    const bytes = readFileSync(committed.parquetPath);
    assert.ok(bytes.length > 4 * 1024 * 1024, `the parquet is ${bytes.length} bytes: several chunks`);
    const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
    assert.equal(rows.length, captions.length);
    rows.forEach((r, i) => {
      assert.equal(r['key'], `c${i}`);
      assert.equal(r['caption'], captions[i]);
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the shard tar is a POSIX archive that GNU tar and tar-stream both read back byte for byte', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'cah-tar-'));
  try {
    const writer = await ShardWriter.open({ outDir: out, shardNumber: 3, attemptTag: 'a1' });
    const bodies = new Map<string, Buffer>();
    // Sizes around the 512-byte block: empty-ish, exact multiples, one past.
    for (const [i, size] of [1, 511, 512, 513, 1024, 20_000].entries()) {
      const s = sample(`0000000000000a0${i}`, 'success', 0.3);
      s.jpeg = Buffer.alloc(size, i + 1);
      s.caption = `caption ${i} — ünïcode`;
      await writer.add(s);
      bodies.set(`${s.key}.jpg`, s.jpeg);
      bodies.set(`${s.key}.txt`, Buffer.from(s.caption, 'utf8'));
    }
    await writer.add(sample('0000000000000b00', 'failed_to_download', null));
    const { tarPath } = await writer.commit({ startedAtMs: Date.now() });

    const { readAllTarEntries } = await import('./support/dataset.js');
    const entries = await readAllTarEntries(out);
    assert.equal(entries.length, 18, 'three members per kept sample, none for the failed one');
    for (const [name, body] of bodies) assert.deepEqual(entries.find((e) => e.name === name)?.data, body, name);
    const json = JSON.parse(entries.find((e) => e.name === '0000000000000a05.json')!.data.toString('utf8')) as { key: string; status: string };
    assert.equal(json.key, '0000000000000a05');
    assert.equal(json.status, 'success');

    const listed = spawnSync('tar', ['-tvf', tarPath], { encoding: 'utf8' });
    if (listed.error) {
      t.diagnostic('GNU tar is not installed: checked with tar-stream only');
      return;
    }
    assert.equal(listed.status, 0, listed.stderr);
    assert.equal(listed.stderr, '', 'GNU tar has no complaint (checksums, end of archive)');
    const lines = listed.stdout.trim().split('\n');
    assert.equal(lines.length, 18);
    assert.match(lines[0]!, /^-rw-r--r-- 0\/0 +1 .* 0000000000000a00\.jpg$/);
    const extracted = spawnSync('tar', ['-xOf', tarPath, '0000000000000a05.jpg']);
    assert.deepEqual(extracted.stdout, bodies.get('0000000000000a05.jpg'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a tar member name must be printable ASCII of at most 100 characters', async () => {
  const { tarHeader } = await import('../src/output/tar.js');
  assert.equal(tarHeader('x'.repeat(100), 0, 0).length, 512);
  assert.throws(() => tarHeader('x'.repeat(101), 0, 0), /1–100 printable ASCII/);
  assert.throws(() => tarHeader('a\nb', 0, 0), /printable ASCII/);
  assert.throws(() => tarHeader('a', -1, 0), /invalid size/);
});
