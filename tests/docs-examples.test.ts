import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { startFixtureWeb } from '../src/demo/fixture-web.js';
import { buildDemoModel } from '../src/model/demo-model.js';
import { cliMain } from './support/cli.js';
import { startHubStandin } from './support/hub-standin.js';
import { repoRoot } from './support/paths.js';

/** Every command whose --help shows examples. */
const HELP_COMMANDS = [
  [], ['demo'], ['gpu'], ['shards', 'add'], ['shards', 'ls'], ['extract'], ['status'], ['model', 'pull'], ['model', 'demo'],
  ['model', 'random'], ['clip', 'tokenize'], ['clip', 'score'], ['swarm', 'up'], ['swarm', 'down'], ['swarm', 'ls'],
  ['swarm', 'logs'], ['worker'],
];

/**
 * Examples not run here, each with why. Everything else in the README's sh blocks and in every
 * --help runs as written (against loopback stand-ins for Common Crawl and the Hugging Face hub).
 */
const NOT_RUN: [RegExp, string][] = [
  [/^npm (install|test)|^ONNXRUNTIME_NODE_INSTALL=/, 'installs packages (the CUDA provider from nuget) / runs this suite itself'],
  [/https:\/\/data\.commoncrawl\.org/, 'a literal data.commoncrawl.org URL needs the internet; the crawl-id example runs against the Common Crawl stand-in through the same listing code'],
  [/^npm start|^cah demo/, 'the demo: tests/demo.test.ts runs it (fewer shards, same code)'],
  [/cah swarm |HCLOUD_TOKEN=/, 'Hetzner Cloud (token) and SSH: tests/swarm-*.test.ts run these against the Hetzner stand-in and sshd'],
  [/cah worker /, 'a long-running worker: tests/pipeline-e2e.test.ts and the tmux test run workers'],
  [/cah model random \/tmp\/vit-b-32/, 'builds a 600 MB model; tests/filter-cli.test.ts runs `model random --arch tiny`'],
  [/cah gpu (?!--local-workers 2 --until-done|--no-dashboard 2>)/, 'runs until stopped (q or Ctrl+C); the tmux test and the two gpu examples run here cover it'],
  [/cah status --db \/srv\//, 'a path on the user\'s server; `cah status --db` runs above on this test\'s state file'],
];

/** `  cah …  # comment` lines under "Examples:" of a --help text. */
function helpExamples(text: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === 'Examples:');
  if (start < 0) return [];
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!/^ {2}\S/.test(line)) break;
    out.push(line.trim());
  }
  return out;
}

/** Command lines of the README's ```sh blocks. */
function readmeExamples(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  return [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n').map((l) => l.trim()).filter(Boolean));
}

/** The command without its trailing `# comment` (a # inside quotes stays). */
function withoutComment(line: string): { command: string; comment: string | null } {
  const m = /^(.*?)\s{2,}#\s(.*)$/.exec(line);
  return m ? { command: m[1]!.trim(), comment: m[2]!.trim() } : { command: line, comment: null };
}

/** Runs one example in bash with `cah` the built CLI (asynchronously: the stand-ins serve from this process). */
async function run(command: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `cah() { node ${JSON.stringify(cliMain)} "$@"; }\nexport -f cah\nset -o pipefail\n${command}`;
  const child = spawn('bash', ['-c', script], { env, cwd });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

test('every --help example and the README\'s examples run as written (or say why not)', { skip: spawnSync('jq', ['--version']).status === 0 ? false : 'jq is not installed (apt-get install jq; CI installs it)' }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'cah-examples-'));
  const cwd = join(root, 'work');
  const home = join(root, 'home');
  mkdirSync(cwd, { recursive: true });
  mkdirSync(home, { recursive: true });
  const web = await startFixtureWeb(join(root, 'web'), { seed: 3, shards: 1, pagesPerShard: 6 });
  // Common Crawl stand-in: the crawl's wat.paths.gz.
  const listing = gzipSync(Array.from({ length: 120 }, (_, i) => `crawl-data/CC-MAIN-2024-22/segments/x/wat/w-${i}.warc.wat.gz`).join('\n'));
  const cc = createServer((req, res) => {
    if (req.url === '/crawl-data/CC-MAIN-2024-22/wat.paths.gz') res.writeHead(200).end(listing);
    else if (req.url?.endsWith('.warc.wat.gz')) res.writeHead(200).end(readFileSync(web.shardPaths[0]!));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => cc.listen(0, '127.0.0.1', resolve));
  const ccBase = `http://127.0.0.1:${(cc.address() as AddressInfo).port}`;
  // Hugging Face stand-in serving the demo model as Xenova/clip-vit-base-patch32 (fp16 names too).
  const model = join(root, 'model');
  await buildDemoModel(model);
  const files: Record<string, { content: Buffer; lfs?: boolean }> = {};
  for (const f of ['config.json', 'preprocessor_config.json', 'tokenizer.json']) files[f] = { content: readFileSync(join(model, f)) };
  for (const f of readdirSync(join(model, 'onnx'))) {
    const content = readFileSync(join(model, 'onnx', f));
    files[`onnx/${f}`] = { content, lfs: true };
    files[`onnx/${f.replace('.onnx', '_fp16.onnx')}`] = { content, lfs: true };
  }
  const hub = await startHubStandin({ repo: 'Xenova/clip-vit-base-patch32', files });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    CAH_STATE: join(home, '.local', 'share', 'cah'),
    CAH_CACHE: join(home, '.cache', 'cah'),
    HF_ENDPOINT: hub.endpoint,
    CAH_COMMONCRAWL_BASE: ccBase,
    // The stand-ins (Common Crawl, the fixture web) listen on loopback, which cah refuses by default.
    CAH_ALLOW_LOOPBACK: '1',
  };
  // Files the examples name.
  for (const name of ['CC-MAIN-20240522-00000.warc.wat.gz', 'some.warc.wat.gz', 'page.warc.gz']) copyFileSync(web.shardPaths[0]!, join(cwd, name));
  await sharp({ create: { width: 64, height: 64, channels: 3, background: '#dd2222' } }).jpeg().toFile(join(cwd, 'red.jpg'));
  await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888888' } }).jpeg().toFile(join(cwd, 'cat.jpg'));

  const examples: string[] = [];
  for (const args of HELP_COMMANDS) {
    const help = spawnSync(process.execPath, [cliMain, ...args, '--help'], { encoding: 'utf8', env });
    const found = helpExamples(help.stdout);
    assert.ok(args.length === 0 || found.length > 0, `cah ${args.join(' ')} --help shows no examples`);
    examples.push(...found);
  }
  examples.push(...readmeExamples());
  // Order matters: the state is built up by the examples themselves (shards added, then listed…).
  const order = (e: string): number =>
    /shards add|model demo/.test(e) ? 0 : /model pull/.test(e) ? 1 : /cah gpu --local-workers 2 --until-done/.test(e) ? 2 : 3;
  const seen = new Set<string>();
  const unique = examples
    .filter((e) => {
      const { command } = withoutComment(e);
      if (seen.has(command)) return false;
      seen.add(command);
      return true;
    })
    .sort((a, b) => order(a) - order(b));
  const ran: string[] = [];
  const skipped: string[] = [];
  try {
    for (const line of unique) {
      const { command, comment } = withoutComment(line);
      const why = NOT_RUN.find(([re]) => re.test(command));
      if (why) {
        skipped.push(`${command}  (${why[1]})`);
        continue;
      }
      if (/^cah gpu --no-dashboard 2> coordinator\.log/.test(command)) {
        // Runs until stopped: start it, wait for its log lines, stop it as Ctrl+C does.
        const child = spawn('bash', ['-c', `cah() { exec node ${JSON.stringify(cliMain)} "$@"; }\n${command}`], { env, cwd });
        const log = join(cwd, 'coordinator.log');
        for (let i = 0; i < 150 && !(existsSync(log) && readFileSync(log, 'utf8').includes('coordinator listening')); i++) await sleep(200);
        child.kill('SIGINT');
        const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
        assert.equal(code, 0, command);
        const lines = readFileSync(log, 'utf8').trim().split('\n');
        assert.ok(lines.length >= 2 && lines.every((l) => JSON.parse(l) !== null), `${command}: JSON log lines in coordinator.log`);
        ran.push(command);
        continue;
      }
      const r = await run(command, env, cwd);
      assert.equal(r.code, 0, `${command}\nexit ${r.code}\n${r.stderr.slice(-2000)}`);
      // An example's comment that shows its output must be what it prints.
      if (comment && /^[[\d]/.test(comment)) assert.equal(r.stdout.trim(), comment.split(/\s{2,}/)[0], command);
      if (/jq \.shards/.test(command)) assert.notEqual(r.stdout.trim(), 'null', `${command} prints the shard counts`);
      ran.push(command);
    }
  } finally {
    process.stderr.write(`examples run (${ran.length}):\n  ${ran.join('\n  ')}\nnot run (${skipped.length}):\n  ${skipped.join('\n  ')}\n`);
    await hub.close();
    cc.close();
    await web.close();
    rmSync(root, { recursive: true, force: true });
  }
  assert.ok(ran.length >= 20, `${ran.length} examples ran`);
});
