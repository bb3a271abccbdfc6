import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { readWarcRecords, type WarcRecord } from '../src/warc/reader.js';
import { sharedData } from './support/paths.js';

const EUGENEWARE_WAT = sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc.wat');
const EUGENEWARE_WARC = sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc');

function record(body: string, opts: { version?: string; eol?: string; type?: string; uri?: string } = {}): Buffer {
  const eol = opts.eol ?? '\r\n';
  const content = Buffer.from(body, 'utf8');
  const lines = [
    opts.version ?? 'WARC/1.0',
    `WARC-Type: ${opts.type ?? 'metadata'}`,
    ...(opts.uri ? [`WARC-Target-URI: ${opts.uri}`] : []),
    `Content-Length: ${content.length}`,
  ];
  return Buffer.concat([Buffer.from(lines.join(eol) + eol + eol), content, Buffer.from(eol + eol)]);
}

/** The bytes as a stream of chunks of the given sizes (cycled): records then straddle chunk boundaries. */
function chunked(bytes: Buffer, sizes: number[]): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return Readable.from(chunks);
}

async function readAll(input: Readable): Promise<{ records: WarcRecord[]; errors: string[] }> {
  const records: WarcRecord[] = [];
  const errors: string[] = [];
  for await (const r of readWarcRecords(input, (msg) => errors.push(msg))) records.push(r);
  return { records, errors };
}

test('reads WARC/1.0 and WARC/1.1 records, CRLF and bare LF, content framed by Content-Length', async () => {
  const bytes = Buffer.concat([
    record('first body\r\nwith WARC/1.0 inside it', { uri: '<http://a.example/>' }),
    record('second', { version: 'WARC/1.1', eol: '\n', type: 'response', uri: 'http://b.example/x' }),
    record('', { type: 'warcinfo' }),
    record('ünïcödé ✓', { type: 'resource' }),
  ]);
  const { records, errors } = await readAll(Readable.from([bytes]));
  assert.deepEqual(errors, []);
  assert.deepEqual(
    records.map((r) => [r.type, r.targetUri, r.content.toString('utf8')]),
    [
      ['metadata', 'http://a.example/', 'first body\r\nwith WARC/1.0 inside it'],
      ['response', 'http://b.example/x', 'second'],
      ['warcinfo', null, ''],
      ['resource', null, 'ünïcödé ✓'],
    ],
  );
  assert.equal(records[1]!.headers['warc-type'], 'response');
  assert.equal(records[0]!.offset, 0);
  assert.equal(records[1]!.offset, record('first body\r\nwith WARC/1.0 inside it', { uri: '<http://a.example/>' }).length);
});

test('records that straddle chunk boundaries come out the same whatever the chunking', async () => {
  const whole = readFileSync(EUGENEWARE_WARC);
  const reference = await readAll(Readable.from([whole]));
  assert.equal(reference.records.length, 13);
  assert.deepEqual(reference.errors, []);
  for (const sizes of [[1], [7, 3, 1000], [4096], [65536, 13]]) {
    const { records, errors } = await readAll(chunked(whole, sizes));
    assert.deepEqual(errors, [], `chunk sizes ${sizes}`);
    assert.deepEqual(
      records.map((r) => [r.type, r.targetUri, r.offset, r.content.length]),
      reference.records.map((r) => [r.type, r.targetUri, r.offset, r.content.length]),
    );
    assert.ok(records.every((r, i) => r.content.equals(reference.records[i]!.content)));
  }
});

test('the real eugeneware WAT: warcinfo then 8 metadata records, nothing reported', async () => {
  const { records, errors } = await readAll(Readable.from([readFileSync(EUGENEWARE_WAT)]));
  assert.deepEqual(errors, []);
  assert.deepEqual(records.map((r) => r.type), ['warcinfo', ...Array(8).fill('metadata')]);
  for (const r of records.slice(1)) assert.doesNotThrow(() => JSON.parse(r.content.toString('utf8')));
});

test('a truncated last record is reported through onError, not thrown, and the records before it come out', async () => {
  const whole = readFileSync(EUGENEWARE_WAT);
  const cut = whole.subarray(0, whole.length - 500);
  const { records, errors } = await readAll(chunked(cut, [1000]));
  assert.equal(records.length, 8);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /truncated record at offset \d+ \(http:\/\/0pointer\.de\/photos\/\?gallery=Thailand.*\): the input ends after \d+ of 1498 content bytes/);
});

test('a header cut short at the end of the input is reported', async () => {
  const { records, errors } = await readAll(Readable.from([Buffer.concat([record('a'), Buffer.from('WARC/1.0\r\nWARC-Type: meta')])]));
  assert.equal(records.length, 1);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /truncated record header/);
});

test('garbage between records is skipped to the next WARC/1. line and reported once per stretch', async () => {
  const garbage = Buffer.alloc(3000);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251;
  const bytes = Buffer.concat([
    record('one'),
    Buffer.from('X'),
    garbage,
    Buffer.from('\nnot WARC/1.0 at the start of a line\n'),
    record('two'),
    record('three'),
    Buffer.from('trailing junk'),
  ]);
  for (const sizes of [[bytes.length], [5], [333]]) {
    const { records, errors } = await readAll(chunked(bytes, sizes));
    assert.deepEqual(records.map((r) => r.content.toString()), ['one', 'two', 'three'], `chunk sizes ${sizes}`);
    assert.equal(errors.length, 2, errors.join('\n'));
    assert.match(errors[0]!, new RegExp(`skipped \\d+ bytes of garbage at offset ${record('one').length} `));
    assert.match(errors[1]!, /skipped 13 bytes of garbage/);
  }
});

test('a record without a valid Content-Length is reported and reading goes on', async () => {
  const bad = Buffer.from('WARC/1.0\r\nWARC-Type: metadata\r\nContent-Length: lots\r\n\r\n{"x":1}\r\n\r\n');
  const { records, errors } = await readAll(Readable.from([Buffer.concat([record('before'), bad, record('after')])]));
  assert.deepEqual(records.map((r) => r.content.toString()), ['before', 'after']);
  assert.equal(errors.length, 2);
  assert.match(errors[0]!, /no valid Content-Length \(lots\)/);
  assert.match(errors[1]!, /garbage/);
});

test('an empty input gives no records and no errors', async () => {
  assert.deepEqual(await readAll(Readable.from([])), { records: [], errors: [] });
});
