import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Store } from '../src/store/state-file.js';
import { watMetadataRecord } from '../src/warc/wat-writer.js';
import { runCli } from './support/cli.js';
import { sharedData } from './support/paths.js';

test('a shard that is not a WARC/WAT fails with its reason after its retries; the good shard is done; exit code 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-shard-fail-'));
  const state = join(dir, 'state');
  try {
    const bad = join(dir, 'broken-download.warc.wat.gz');
    writeFileSync(bad, gzipSync('<html>404 Not Found</html>\n'));
    const good = sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc.wat');
    assert.equal((await runCli(['--state', state, 'shards', 'add', good, bad])).code, 0);
    const res = await runCli(
      ['--state', state, 'gpu', '--local-workers', '1', '--until-done', '--no-dashboard', '--listen', '127.0.0.1:0', '--max-retries', '2', '--out', join(dir, 'out'), '--download-timeout-ms', '500'],
      { timeoutMs: 120_000 },
    );
    assert.equal(res.code, 1, `exit 1: the run finished with a failed shard\n${res.stderr.slice(-2000)}`);
    const store = Store.openInStateDir(state, { readonly: true });
    const shards = store.shards.list();
    store.close();
    const failed = shards.find((s) => s.source === bad)!;
    assert.equal(failed.state, 'failed');
    assert.equal(failed.attempts, 2);
    assert.match(failed.error ?? '', /no WARC records in .*broken-download\.warc\.wat\.gz: is it a WARC\/WAT file\?/);
    assert.equal(shards.find((s) => s.source === good)!.state, 'done');
    const ls = await runCli(['--state', state, 'shards', 'ls', '--json']);
    assert.match(ls.stdout, /no WARC records/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a shard of complete gzip members then garbage is done with every member’s candidates, and its stats name the garbage’s byte offset', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-shard-garbage-'));
  const state = join(dir, 'state');
  try {
    const members = [0, 1, 2].map((i) => gzipSync(watMetadataRecord({ url: `http://site${i}.invalid/`, images: [{ src: `/img${i}.jpg`, alt: `picture number ${i}` }] })));
    const good = Buffer.concat(members);
    const shard = join(dir, 'garbage-tail.warc.wat.gz');
    writeFileSync(shard, Buffer.concat([good, Buffer.from('an upload cut and padded with junk\n')]));
    assert.equal((await runCli(['--state', state, 'shards', 'add', shard])).code, 0);
    const out = join(dir, 'out');
    const res = await runCli(
      ['--state', state, 'gpu', '--local-workers', '1', '--until-done', '--no-dashboard', '--listen', '127.0.0.1:0', '--max-retries', '1', '--out', out, '--download-timeout-ms', '500'],
      { timeoutMs: 120_000 },
    );
    assert.equal(res.code, 0, res.stderr.slice(-2000));
    const stats = JSON.parse(readFileSync(join(out, readdirSync(out).find((n) => n.endsWith('_stats.json'))!), 'utf8')) as { count: number; source_errors: string[] };
    // Every member's candidate became a sample (the downloads fail: .invalid hosts), none was lost to zlib.
    assert.equal(stats.count, 3);
    assert.equal(stats.source_errors.length, 1, JSON.stringify(stats.source_errors));
    assert.match(stats.source_errors[0]!, new RegExp(`garbage .* at byte offset ${good.length} `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
