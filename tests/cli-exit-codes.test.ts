import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/cli.js';

test('one exit code per failure class: usage 2 before anything starts, an unreachable remote 1 in every command', async () => {
  const state = mkdtempSync(join(tmpdir(), 'cah-exit-'));
  try {
    for (const args of [['gpu', '--metrics', 'nope'], ['gpu', '--execution-provider', 'gpu']]) {
      const r = await runCli(['--state', state, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /invalid/);
    }
    assert.ok(!existsSync(join(state, 'cah.sqlite')), 'refused while parsing: no state file opened, nothing started');
    const listing = await runCli(['--state', state, 'shards', 'add', 'http://127.0.0.1:9/crawl-data/x/wat.paths.gz']);
    assert.equal(listing.code, 1, listing.stderr);
    assert.match(listing.stderr, /^cah: cannot read listing/);
    const pull = await runCli(['model', 'pull', 'Xenova/clip-vit-base-patch32', '--dir', join(state, 'm')], { env: { HF_ENDPOINT: 'http://127.0.0.1:9' } });
    assert.equal(pull.code, 1, pull.stderr);
    assert.match(pull.stderr, /^cah: cannot reach the hub/m);
    const missing = await runCli(['--state', state, 'shards', 'add', join(state, 'absent.wat.gz')]);
    assert.equal(missing.code, 2, 'a file the user named that is not there is a usage error');
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});
