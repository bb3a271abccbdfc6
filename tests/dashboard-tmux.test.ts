import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFixtureWeb } from '../src/demo/fixture-web.js';
import { Store } from '../src/store/store.js';
import { cliMain, runCli } from './support/cli.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;

function capture(session: string): string {
  return execFileSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' });
}

test('cah gpu --local-workers 2 in tmux at 80×24: actors, moving shard counts, filter panel; q drains and exits 0', { skip: hasTmux ? false : 'tmux is not installed (CI installs it)' }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'cah-tmux-'));
  const web = await startFixtureWeb(join(root, 'web'), { seed: 11, shards: 6, pagesPerShard: 10, hangMs: 2000 });
  const session = `cah-test-${process.pid}`;
  const state = join(root, 'state');
  const exitFile = join(root, 'exit-code');
  try {
    assert.equal((await runCli(['--state', state, 'shards', 'add', ...web.shardPaths])).code, 0);
    const command = [
      process.execPath, cliMain, '--state', state, 'gpu', '--local-workers', '2', '--allow-loopback',
      '--listen', '127.0.0.1:0', '--out', join(root, 'out'), '--per-host-rps', '4', '--download-timeout-ms', '1000',
    ].map((a) => `'${a}'`).join(' ');
    execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '80', '-y', '24', `${command}; echo $? > '${exitFile}'; sleep 60`]);
    const seenDone = new Set<string>();
    let screen = '';
    let sawActors = false;
    let sawFilter = false;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await sleep(400);
      screen = capture(session);
      if (/local-1/.test(screen) && /local-2/.test(screen) && /ALIVE/.test(screen)) sawActors = true;
      if (/Filter/.test(screen) && /pass-through/.test(screen)) sawFilter = true;
      const done = /Shards (\d+)\/(\d+)/.exec(screen);
      if (done) seenDone.add(done[1]!);
      if (sawActors && sawFilter && seenDone.size >= 2) break;
    }
    for (const line of screen.split('\n')) assert.ok(line.length <= 80, `line wider than 80 columns: ${line}`);
    assert.ok(sawActors, `actor rows with ALIVE state not seen:\n${screen}`);
    assert.ok(sawFilter, `filter panel not seen:\n${screen}`);
    assert.ok(seenDone.size >= 2, `shard counts did not move (${[...seenDone].join(',')}):\n${screen}`);
    execFileSync('tmux', ['send-keys', '-t', session, 'q']);
    const exitDeadline = Date.now() + 60_000;
    while (!existsSync(exitFile) && Date.now() < exitDeadline) await sleep(200);
    assert.ok(existsSync(exitFile), `cah gpu did not exit after q:\n${capture(session)}`);
    assert.equal(readFileSync(exitFile, 'utf8').trim(), '0');
    const store = Store.openInStateDir(state, { readonly: true });
    assert.equal(store.shards.counts().leased, 0, 'no shard left leased');
    store.close();
  } finally {
    spawnSync('tmux', ['kill-session', '-t', session]);
    await web.close();
    rmSync(root, { recursive: true, force: true });
  }
});
