import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFixtureWeb } from '../src/demo/fixture-web.js';
import { buildDemoModel } from '../src/model/demo-model.js';
import { Store } from '../src/store/state-file.js';
import { cliMain, runCli } from './support/cli.js';
import { needsTmux } from './support/requirements.js';


/** The pane with its scrollback: the closing line may push the top of the last frame up. */
function capture(session: string): string {
  return execFileSync('tmux', ['capture-pane', '-p', '-J', '-S', '-60', '-t', session], { encoding: 'utf8' });
}

/** 999, 1.2k, 3.4M as the dashboard prints counts. */
function count(text: string): number {
  const m = /^([\d.]+)([kM]?)$/.exec(text);
  if (!m) return Number.NaN;
  return Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1);
}

test(
  'cah gpu --local-workers 2 in tmux at 80×24: per-sample progress within a shard, the CLIP outcome, q → last frame and a closing line',
  { skip: needsTmux },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'cah-tmux-'));
    // Few large shards, downloads held back by politeness: a shard takes several seconds.
    const web = await startFixtureWeb(join(root, 'web'), { seed: 11, shards: 2, pagesPerShard: 40, hangMs: 2000 });
    const model = join(root, 'model');
    await buildDemoModel(model);
    const session = `cah-test-${process.pid}`;
    const state = join(root, 'state');
    const exitFile = join(root, 'exit-code');
    try {
      assert.equal((await runCli(['--state', state, 'shards', 'add', ...web.shardPaths])).code, 0);
      const command = [
        process.execPath, cliMain, '--state', state, 'gpu', '--local-workers', '2', '--allow-loopback', '--model', model,
        '--listen', '127.0.0.1:0', '--out', join(root, 'out'), '--per-host-rps', '2', '--download-timeout-ms', '1000',
      ].map((a) => `'${a}'`).join(' ');
      execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '80', '-y', '24', `${command}; echo $? > '${exitFile}'; sleep 60`]);
      const seenDone = new Set<string>();
      /** Downloaded counts and progress figures seen while no shard had finished yet. */
      const dlBeforeFirstShard = new Set<number>();
      const progressBeforeFirstShard = new Set<string>();
      let filteredOut = 0;
      let screen = '';
      let sawActors = false;
      let sawFilter = false;
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        await sleep(300);
        screen = capture(session);
        if (/local-1/.test(screen) && /local-2/.test(screen) && /ALIVE/.test(screen)) sawActors = true;
        if (/Filter CLIP model/.test(screen)) sawFilter = true;
        const done = /Shards (\d+)\/(\d+)/.exec(screen);
        if (done) seenDone.add(done[1]!);
        const dl = /· ([\d.]+[kM]?) dl ·/.exec(screen);
        const pct = /(\d+\.\d)% ETA/.exec(screen);
        if (done?.[1] === '0' && dl && count(dl[1]!) > 0) dlBeforeFirstShard.add(count(dl[1]!));
        if (done?.[1] === '0' && pct && pct[1] !== '0.0') progressBeforeFirstShard.add(pct[1]!);
        const out = /filtered out ([\d.]+[kM]?)/.exec(screen);
        if (out) filteredOut = Math.max(filteredOut, count(out[1]!));
        if (sawActors && sawFilter && seenDone.has('2') && filteredOut > 0) break;
      }
      for (const line of screen.split('\n')) assert.ok(line.length <= 80, `line wider than 80 columns: ${line}`);
      assert.ok(sawActors, `actor rows with ALIVE state not seen:\n${screen}`);
      assert.ok(sawFilter, `filter panel not seen:\n${screen}`);
      assert.ok(seenDone.size >= 2, `shard counts did not move (${[...seenDone].join(',')}):\n${screen}`);
      assert.ok(dlBeforeFirstShard.size >= 2, `downloads did not move within the first shards (${[...dlBeforeFirstShard].join(',')})`);
      assert.ok(progressBeforeFirstShard.size >= 2, `progress did not move before a shard finished (${[...progressBeforeFirstShard].join(',')})`);
      assert.ok(filteredOut > 0, `no filtered-out count shown:\n${screen}`);

      execFileSync('tmux', ['send-keys', '-t', session, 'q']);
      const exitDeadline = Date.now() + 60_000;
      while (!existsSync(exitFile) && Date.now() < exitDeadline) await sleep(200);
      assert.ok(existsSync(exitFile), `cah gpu did not exit after q:\n${capture(session)}`);
      assert.equal(readFileSync(exitFile, 'utf8').trim(), '0');
      const last = capture(session);
      assert.match(last, /EXITED/, `the last frame shows the actors as exited:\n${last}`);
      assert.match(last, /▶ done/, `the last frame's verdict says the run is done:\n${last}`);
      assert.match(last, /run ended/, `the last frame's footer:\n${last}`);
      assert.match(
        last,
        /cah gpu: run \S+ drained at \S+Z after \S+: 2\/2 shards done, 0 failed · \d+ candidates \(\d+ duplicates\), \d+ downloaded, \d+ failed, [1-9]\d* filtered out, \d+ kept · \d+ pairs written to /,
        `closing line:\n${last}`,
      );
      const store = Store.openInStateDir(state, { readonly: true });
      assert.equal(store.shards.counts().leased, 0, 'no shard left leased');
      store.close();
      const status = await runCli(['--state', state, 'status']);
      assert.match(status.stdout, /^run \S+ drained at \S+Z after/m, '`cah status` after the run says it ended, and when');
      assert.ok(readdirSync(join(state, 'logs')).includes('local-1.log'), 'local workers\' stderr is kept in the log directory');
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
      await web.close();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
