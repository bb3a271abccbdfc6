import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import sharp from 'sharp';
import { registerClipCommands } from '../src/cli/clip.js';
import { CliError } from '../src/cli/errors.js';
import { registerModelCommands } from '../src/cli/model.js';
import { runCli } from './support/cli.js';
import { sharedData } from './support/paths.js';
import { startHubStandin } from './support/hub-standin.js';

interface Ran {
  stdout: string;
  stderr: string;
  error: unknown;
}

/** Runs `cah ARGS` with the commands under test registered on a fresh program, capturing its output. */
async function cah(args: string[]): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const program = new Command('cah').exitOverride().configureOutput({
    writeOut: (s) => (stdout += s),
    writeErr: (s) => (stderr += s),
  });
  const io = { out: (s: string) => void (stdout += s), err: (s: string) => void (stderr += s), errIsTty: false };
  registerModelCommands(program, io);
  registerClipCommands(program, io);
  let error: unknown = null;
  try {
    await program.parseAsync(['node', 'cah', ...args]);
  } catch (e) {
    error = e;
  }
  return { stdout, stderr, error };
}

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cah-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('cli: `cah model demo` builds the demo model and says it is a demo; `cah clip score` scores with it', async () => {
  const model = join(dir, 'demo');
  const built = await cah(['model', 'demo', model]);
  assert.equal(built.error, null);
  assert.equal(built.stdout.trim(), model);
  assert.match(built.stderr, /DEMO CLIP model/);
  assert.match(await readFile(join(model, 'README.md'), 'utf8'), /This is a DEMO model, not CLIP/);

  const image = join(dir, 'red.png');
  await writeFile(
    image,
    await sharp(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"><rect width="300" height="200" fill="rgb(200,200,200)"/><circle cx="150" cy="100" r="70" fill="rgb(220,30,30)"/></svg>'))
      .png()
      .toBuffer(),
  );
  const matched = await cah(['clip', 'score', '--model', model, '--image', image, '--text', 'a photo of a red circle']);
  assert.equal(matched.error, null, String(matched.error));
  assert.match(matched.stdout, /^0\.\d{4}\n$/);
  assert.ok(Number(matched.stdout) > 0.28);
  const mismatched = await cah(['clip', 'score', '--model', model, '--image', image, '--text', 'a photo of a blue circle']);
  assert.ok(Number(mismatched.stdout) < 0.28);

  const missing = await cah(['clip', 'score', '--model', model, '--image', join(dir, 'nope.jpg'), '--text', 'x']);
  assert.ok(missing.error instanceof CliError);
  assert.match((missing.error as Error).message, /cannot read --image .*nope\.jpg: ENOENT/);
  await writeFile(join(dir, 'bad.jpg'), 'not an image');
  const bad = await cah(['clip', 'score', '--model', model, '--image', join(dir, 'bad.jpg'), '--text', 'x']);
  assert.match((bad.error as Error).message, /cannot decode .*bad\.jpg/);
  const noModel = await cah(['clip', 'score', '--model', join(dir, 'absent'), '--image', image, '--text', 'x']);
  assert.ok(noModel.error instanceof CliError);
  assert.match((noModel.error as Error).message, /cah model pull/);
});

test('cli: `cah clip tokenize` prints CLIP ids, as JSON on request', async () => {
  const tokenizer = sharedData('clip', 'tokenizer.json');
  const plain = await cah(['clip', 'tokenize', '--tokenizer', tokenizer, 'a', 'photo', 'of', 'a', 'cat']);
  assert.equal(plain.stdout, '49406 320 1125 539 320 2368 49407\n');
  const json = await cah(['clip', 'tokenize', '--json', '--tokenizer', tokenizer, 'a photo of a cat']);
  assert.deepEqual(JSON.parse(json.stdout), [49406, 320, 1125, 539, 320, 2368, 49407]);
  // A fresh machine: no model pulled, an empty cache, no network; the README's example as written.
  const fresh = await runCli(['clip', 'tokenize', '--json', 'a photo of a cat'], { env: { CAH_CACHE: join(dir, 'empty-cache'), HF_ENDPOINT: 'http://127.0.0.1:9' } });
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.deepEqual(JSON.parse(fresh.stdout), [49406, 320, 1125, 539, 320, 2368, 49407]);
  const missing = await cah(['clip', 'tokenize', '--tokenizer', join(dir, 'none.json'), 'x']);
  assert.ok(missing.error instanceof CliError);
  assert.match((missing.error as Error).message, /does not exist: pass --tokenizer FILE/);
});

test('cli: `cah model pull` downloads from HF_ENDPOINT into CAH_CACHE and prints the directory', async () => {
  const repo = 'someone/tiny-clip';
  const hub = await startHubStandin({
    repo,
    files: {
      'config.json': { content: Buffer.from('{}') },
      'preprocessor_config.json': { content: Buffer.from('{}') },
      'tokenizer.json': { content: Buffer.from('{}') },
      'onnx/vision_model.onnx': { content: randomBytes(50_000), lfs: true },
      'onnx/text_model.onnx': { content: randomBytes(30_000), lfs: true },
    },
  });
  const saved = { HF_ENDPOINT: process.env['HF_ENDPOINT'], CAH_CACHE: process.env['CAH_CACHE'] };
  process.env['HF_ENDPOINT'] = hub.endpoint;
  process.env['CAH_CACHE'] = join(dir, 'cache');
  try {
    const ran = await cah(['model', 'pull', repo]);
    assert.equal(ran.error, null, String(ran.error));
    const target = join(dir, 'cache', 'models', 'someone--tiny-clip');
    assert.equal(ran.stdout.trim(), target);
    assert.ok(existsSync(join(target, 'onnx/vision_model.onnx')));
    assert.match(ran.stderr, /onnx\/vision_model\.onnx: complete and verified/);
    assert.match(ran.stderr, /^\d+ files, [\d.]+ MB in all$/m, 'the whole pull\'s total up front');
    const absent = await cah(['model', 'pull', 'someone/other']);
    assert.ok(absent.error instanceof CliError);
    assert.match((absent.error as Error).message, /has no config\.json \(HTTP 404\)/);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await hub.close();
  }
});

test('cli: `cah model random` writes a CLIP architecture with random weights', async () => {
  const target = join(dir, 'random');
  const ran = await cah(['model', 'random', target, '--arch', 'tiny']);
  assert.equal(ran.error, null, String(ran.error));
  assert.match(ran.stderr, /RANDOM tiny \(fp32\).*benchmarks only/);
  for (const f of ['config.json', 'tokenizer.json', 'preprocessor_config.json', 'onnx/vision_model.onnx', 'onnx/vision_model.onnx_data', 'onnx/text_model.onnx']) {
    assert.ok(existsSync(join(target, f)), f);
  }
  const badArch = await cah(['model', 'random', target, '--arch', 'vit-h-14']);
  assert.match(String(badArch.error), /Allowed choices are vit-b-32, tiny/);
});

test('cli: help texts carry examples', async () => {
  for (const args of [['model', 'pull', '--help'], ['model', 'demo', '--help'], ['model', 'random', '--help'], ['clip', 'score', '--help'], ['clip', 'tokenize', '--help']]) {
    const ran = await cah(args);
    assert.match(ran.stdout, /Examples:\n {2}cah /, args.join(' '));
  }
});

test('cli: model mistakes are one line with exit code 2, no stack trace (the real cah binary)', async () => {
  const state = join(dir, 'state-errors');
  assert.equal((await runCli(['--state', state, 'shards', 'add', sharedData('warc', 'cc-main-2024-22_whirlwind.warc.wat.gz')])).code, 0);
  const cases: [string[], RegExp][] = [
    [['--state', state, 'gpu', '--model', join(dir, 'no-such-model'), '--until-done', '--no-dashboard'], /^cah: cannot load the CLIP model: model directory .* does not exist: run `cah model pull/],
    [['--state', state, 'gpu', '--scorer', 'wm=/no/such.onnx', '--model', join(dir, 'x'), '--until-done', '--no-dashboard'], /^cah: --scorer wm: no such model file \/no\/such\.onnx/],
    [['--state', state, 'gpu', '--languages', 'en', '--until-done', '--no-dashboard'], /^cah: --scorer and --languages need a CLIP model/],
    [['model', 'demo', '/etc/hostname/sub'], /^cah: ENOTDIR: not a directory/],
    [['model', 'pull', 'not a repo'], /^cah: "not a repo" is not a hub id/],
  ];
  for (const [args, message] of cases) {
    const res = await runCli(args, { timeoutMs: 60_000 });
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
    const lines = res.stderr.trim().split('\n').filter((l) => l.startsWith('cah:') || /^\s+at /.test(l));
    assert.equal(lines.length, 1, `${args.join(' ')}: one error line, no stack:\n${res.stderr}`);
    assert.match(lines[0]!, message);
  }
});
