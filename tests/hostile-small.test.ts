import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { storedUrl } from '../src/coordinator/sample-check.js';
import { readWarcRecords } from '../src/warc/reader.js';
import { refusalReason } from '../src/worker/ssrf.js';
import { downloadFailure, runShard, startTestCoordinator, TEST_TOKEN } from './support/coordinator.js';
import { CoordinatorClient } from '../src/worker/rpc.js';
import { ODD_CONTENT_LENGTHS, warcRecord } from './fixtures/hostile/warc.js';

test('corpus/ssrf: IPv4-compatible IPv6 literals (::7f00:1, ::a9fe:a9fe, ::a00:1) are refused', () => {
  for (const address of ['::7f00:1', '::a9fe:a9fe', '::a00:1', '::127.0.0.1', '::8.8.8.8']) {
    assert.match(refusalReason(address, { allowLoopback: true }) ?? 'allowed', /IPv4-compatible/, address);
  }
  assert.equal(refusalReason('2606:4700::1111', { allowLoopback: false }), null, 'ordinary IPv6 stays allowed');
});

test('corpus/warc: a Content-Length that is not a decimal count (0x10, 1e1, …) is refused, not read as a number', async () => {
  for (const declared of ODD_CONTENT_LENGTHS) {
    const body = '{"x":"0123456789abcdef"}';
    const errors: string[] = [];
    const records = [];
    for await (const r of readWarcRecords(Readable.from([Buffer.concat([warcRecord(body, declared), warcRecord(body)])]), (m) => errors.push(m))) {
      records.push(r);
    }
    assert.equal(records.length, 1, `${JSON.stringify(declared)}: only the well-framed record is read`);
    assert.equal(records[0]!.content.toString(), body);
    assert.ok(errors.some((e) => /no valid Content-Length/.test(e)), `${JSON.stringify(declared)}: ${errors.join('; ')}`);
  }
});

test('corpus/stream: credentials in image and page URLs never reach the parquet or the tar', async () => {
  assert.equal(storedUrl('http://user:secret@example.test/a.jpg?q=1'), 'http://example.test/a.jpg?q=1');
  assert.equal(storedUrl('http://example.test/@me.jpg'), 'http://example.test/@me.jpg', 'an @ in the path is kept as written');
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/creds.wat.gz']);
    await runShard(client, [downloadFailure(1, { url: 'https://admin:hunter2@cdn.example.test/1.jpg', pageUrl: 'http://u:p4ss@example.test/page' })]);
    const out = join(c.dir, 'out');
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(join(out, readdirSync(out).find((n) => n.endsWith('.parquet'))!)) });
    assert.equal(rows[0]!['url'], 'https://cdn.example.test/1.jpg');
    assert.equal(rows[0]!['page_url'], 'http://example.test/page');
  } finally {
    client.close();
    await c.close();
  }
});
