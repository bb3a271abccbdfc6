import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetMetadata } from 'hyparquet';
import {
  METADATA_COLUMNS,
  SAMPLE_FIELDS,
  newSample,
  sampleFromWire,
  sampleToWire,
  type MetadataRow,
  type SampleRecord,
  type WireSampleShape,
} from '../src/output/sample.js';
import { ShardWriter } from '../src/output/shard-writer.js';
import type { WireSample } from '../src/wire/contract.js';
import { readAllTarEntries } from './support/dataset.js';

/** True exactly when A and B are the same type (a compile error below otherwise: pretest runs tsc). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

test('types: the row, the record and the proto Sample are the ones the field table describes', () => {
  const rowKeysAreColumns: Equal<keyof MetadataRow, (typeof METADATA_COLUMNS)[number]['name']> = true;
  const recordKeysAreFields: Equal<keyof SampleRecord, (typeof SAMPLE_FIELDS)[number]['field']> = true;
  // The generated WireSample follows proto/cah.proto (tests/wire-types.test.ts): a Sample field
  // added, removed or retyped there without the table breaks this line.
  const wireIsProto: Equal<WireSampleShape, WireSample> = true;
  assert.ok(rowKeysAreColumns && recordKeysAreFields && wireIsProto);
});

test("the metadata columns are img2dataset's, in its order, with the types readers expect", () => {
  assert.deepEqual(
    METADATA_COLUMNS.map(({ name, type }) => `${name}:${type}`),
    [
      'key:STRING', 'url:STRING', 'caption:STRING', 'page_url:STRING', 'license:STRING', 'status:STRING', 'error_message:STRING',
      'width:INT32', 'height:INT32', 'original_width:INT32', 'original_height:INT32', 'exif:STRING', 'sha256:STRING', 'similarity:DOUBLE',
      'download_attempts:INT32',
    ],
  );
});

const PHYSICAL = { STRING: 'BYTE_ARRAY', INT32: 'INT32', DOUBLE: 'DOUBLE' } as const;

test("a written shard's parquet schema and tar .json keys are the table's columns, then the filter's extra columns", async () => {
  const out = mkdtempSync(join(tmpdir(), 'cah-fields-'));
  try {
    const extraColumns = [{ name: 'language', type: 'STRING' }, { name: 'aesthetic', type: 'DOUBLE' }] as const;
    const writer = await ShardWriter.open({ outDir: out, shardNumber: 3, attemptTag: 'a1', extraColumns: [...extraColumns] });
    const sample = newSample({ key: '00000000000000a1', url: 'http://e.test/a.jpg', caption: 'a', pageUrl: 'http://e.test/', status: 'success', jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xd9]) });
    await writer.add(sample, { extra: { language: 'en', aesthetic: 5 } });
    const committed = await writer.commit({ startedAtMs: Date.now() });
    const bytes = readFileSync(committed.parquetPath);
    const schema = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer).schema.slice(1);
    const expected = [...METADATA_COLUMNS, ...extraColumns];
    assert.deepEqual(schema.map((s) => [s.name, s.type]), expected.map(({ name, type }) => [name, PHYSICAL[type]]));
    const json = (await readAllTarEntries(out)).find((e) => e.name === `${sample.key}.json`);
    assert.ok(json, 'the kept sample has its .json');
    assert.deepEqual(Object.keys(JSON.parse(json.data.toString('utf8')) as object), expected.map(({ name }) => name));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('wire: nulls travel as proto3 defaults and read back as nulls; the coordinator-only similarity does not travel', () => {
  const full: SampleRecord = {
    key: '00000000000000b2', url: 'http://e.test/b.jpg', caption: 'b', pageUrl: 'http://e.test/', license: 'cc-by', status: 'success',
    errorMessage: 'x', width: 8, height: 9, originalWidth: 80, originalHeight: 90, exif: '{"Image Make":"x"}', sha256: 'ab', similarity: 0.3,
    downloadAttempts: 2, jpeg: Buffer.from([1, 2]), downloadMs: 12, resizeMs: 3,
  };
  assert.deepEqual(sampleFromWire(sampleToWire(full)), { ...full, similarity: null });
  const empty = newSample({ key: full.key, url: full.url, caption: '', pageUrl: '', status: 'failed_to_download' });
  const wire = sampleToWire(empty);
  assert.deepEqual(wire, {
    key: full.key, url: full.url, caption: '', pageUrl: '', license: '', status: 'failed_to_download', errorMessage: '', width: 0, height: 0,
    originalWidth: 0, originalHeight: 0, exif: '', sha256: '', downloadAttempts: 0, jpeg: Buffer.alloc(0), downloadMs: 0, resizeMs: 0,
  });
  assert.deepEqual(sampleFromWire(wire), empty);
  assert.equal(sampleToWire({ ...empty, downloadMs: 12.6 }).downloadMs, 13, 'uint32 fields are whole numbers');
});
