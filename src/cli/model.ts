import { Option, type Command } from 'commander';
import { resolve } from 'node:path';
import { buildRandomClip, CLIP_ARCHS } from '../model/clip-arch.js';
import { buildDemoModel } from '../model/demo-model.js';
import { assertHubId, clipModelFiles, DEFAULT_HF_ENDPOINT, defaultModelCache, HubError, modelCacheDir, pullModel, type PullProgress } from '../model/hub.js';
import type { Precision } from '../filter/model-dir.js';
import { CliError } from './errors.js';
import { intFlag } from './state.js';
import { formatDuration } from '../dashboard/format.js';

const MB = 1024 * 1024;
const mb = (n: number): string => `${(n / MB).toFixed(1)} MB`;

/** Where a command writes: stdout for results, stderr for progress and notes (tests capture both). */
export interface CommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether err is a terminal (live progress lines instead of milestones). */
  errIsTty: boolean;
}

export const PROCESS_IO: CommandIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  get errIsTty() {
    return process.stderr.isTTY === true;
  },
};

/** Progress of `cah model pull` on stderr: a live line on a terminal, milestones otherwise. */
function progressPrinter(io: CommandIo): (p: PullProgress) => void {
  const stream = { write: io.err, isTTY: io.errIsTty };
  let startedAt = Date.now();
  let startBytes = 0;
  let lastQuarter = -1;
  // The whole pull: its total, the bytes of files finished, and what this run fetched (for the ETA).
  const pull = { total: null as number | null, finished: 0, startedAt: Date.now(), fetched: 0, fileFetched: 0 };
  const overall = (received: number): string => {
    if (pull.total === null || pull.total === 0) return '';
    const secs = (Date.now() - pull.startedAt) / 1000;
    const rate = secs > 0 ? (pull.fetched + pull.fileFetched) / secs : 0;
    const left = pull.total - pull.finished - received;
    const eta = rate > 0 ? formatDuration((left / rate) * 1000) : '—';
    return ` · all ${mb(pull.finished + received)} of ${mb(pull.total)}, ETA ${eta}`;
  };
  return (p) => {
    const total = p.total !== null ? ` of ${mb(p.total)}` : '';
    switch (p.phase) {
      case 'plan':
        pull.total = p.total;
        pull.startedAt = Date.now();
        stream.write(`${p.file}${p.total !== null ? `, ${mb(p.total)} in all` : ''}\n`);
        return;
      case 'start':
      case 'resume':
        startedAt = Date.now();
        startBytes = p.received;
        lastQuarter = -1;
        stream.write(p.phase === 'resume' ? `${p.file}: resuming at ${mb(p.received)}${total}\n` : `${p.file}: downloading${total}\n`);
        return;
      case 'progress': {
        pull.fileFetched = p.received - startBytes;
        const secs = (Date.now() - startedAt) / 1000;
        const rate = secs > 0 ? ` ${mb((p.received - startBytes) / secs)}/s` : '';
        const pct = p.total ? (p.received / p.total) * 100 : null;
        if (stream.isTTY) {
          stream.write(`\r  ${mb(p.received)}${total}${pct !== null ? ` (${pct.toFixed(0)}%)` : ''}${rate}${overall(p.received)}   `);
        } else if (pct !== null && Math.floor(pct / 25) > lastQuarter) {
          lastQuarter = Math.floor(pct / 25);
          stream.write(`  ${mb(p.received)}${total} (${pct.toFixed(0)}%)${rate}${overall(p.received)}\n`);
        }
        return;
      }
      case 'retry':
        stream.write(`${stream.isTTY ? '\n' : ''}${p.file}: connection lost at ${mb(p.received)} (${p.message}); resuming\n`);
        return;
      case 'verify':
        if (stream.isTTY) stream.write('\n');
        return;
      case 'done':
        pull.finished += p.total ?? p.received;
        pull.fetched += pull.fileFetched;
        pull.fileFetched = 0;
        stream.write(`${p.file}: complete and verified\n`);
        return;
      case 'skip':
        pull.finished += p.total ?? p.received;
        stream.write(`${p.file}: already present and verified\n`);
        return;
    }
  };
}

export function registerModelCommands(program: Command, io: CommandIo = PROCESS_IO): void {
  const model = program.command('model').description('get a CLIP model: pull a real one from the Hugging Face hub, or construct the demo / a random one');

  model
    .command('pull')
    .description('download a CLIP model in Hugging Face ONNX layout into the cache (resumes, verifies size and sha256)')
    .argument('<hub-id>', 'repository on the hub, e.g. Xenova/clip-vit-base-patch32')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .addOption(new Option('--variant <v>', 'which encoder files: fp32 (CPU), fp16 (GPU) or all').choices(['fp32', 'fp16', 'all']).default('fp32'))
    .option('--dir <dir>', 'download into this directory instead of the cache')
    .addHelpText(
      'after',
      `
The model directory is printed on stdout; progress goes to stderr.
Environment: HF_ENDPOINT (default ${DEFAULT_HF_ENDPOINT}), HF_TOKEN for gated models,
CAH_CACHE (cache root; models go to $CAH_CACHE/models, default ~/.cache/cah/models).

Examples:
  cah model pull Xenova/clip-vit-base-patch32
  cah model pull Xenova/clip-vit-base-patch32 --variant all     # fp16 too, for GPUs
  cah gpu --model "$(cah model pull Xenova/clip-vit-base-patch32)" --local-workers 2`,
    )
    .action(async (repo: string, flags: { revision: string; variant: Precision | 'all'; dir?: string }) => {
      try {
        assertHubId(repo);
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      const dir = flags.dir ? resolve(flags.dir) : modelCacheDir(defaultModelCache(), repo, flags.revision);
      const precisions: Precision[] = flags.variant === 'all' ? ['fp32', 'fp16'] : [flags.variant];
      const files = clipModelFiles(precisions);
      io.err(`pulling ${repo}@${flags.revision} into ${dir}\n`);
      try {
        await pullModel({
          repo,
          revision: flags.revision,
          dir,
          files: files.required,
          optionalFiles: files.optional,
          ...(process.env['HF_ENDPOINT'] ? { endpoint: process.env['HF_ENDPOINT'] } : {}),
          ...(process.env['HF_TOKEN'] ? { token: process.env['HF_TOKEN'] } : {}),
          onProgress: progressPrinter(io),
        });
      } catch (err) {
        if (err instanceof HubError) throw new CliError(err.message, 'CAH_REMOTE');
        const cause = err instanceof Error ? err.message : String(err);
        throw new CliError(`cannot reach the hub (${cause}): check the network or set HF_ENDPOINT to a mirror`, 'CAH_REMOTE');
      }
      io.out(`${dir}\n`);
    });

  model
    .command('demo')
    .description('construct the DEMO CLIP model for `cah demo`\'s synthetic web (colour words vs image colours; not a real CLIP)')
    .argument('<dir>', 'where to write it')
    .addHelpText(
      'after',
      `
This is a demo model: it scores "a red square" high against red images of the demo web and means
nothing on real photographs. For real data use \`cah model pull Xenova/clip-vit-base-patch32\`.

Examples:
  cah model demo ./demo-model
  cah clip score --model ./demo-model --image red.jpg --text "a photo of a red circle"`,
    )
    .action(async (dir: string) => {
      const target = resolve(dir);
      await buildDemoModel(target);
      io.err(`built the DEMO CLIP model (constructed, not trained; meaningful only on cah demo's synthetic web)\n`);
      io.out(`${target}\n`);
    });

  model
    .command('random')
    .description('construct a CLIP architecture with random weights, for throughput benchmarks')
    .argument('<dir>', 'where to write it')
    .addOption(new Option('--arch <arch>', 'architecture').choices(Object.keys(CLIP_ARCHS)).default('vit-b-32'))
    .addOption(new Option('--precision <p>', 'weights and compute type').choices(['fp32', 'fp16']).default('fp32'))
    .option('--seed <n>', 'weights seed', intFlag(0), 1)
    .addHelpText(
      'after',
      `
Same FLOPs as the real model, meaningless similarities. ViT-B/32 weighs ~600 MB in fp32
(~300 MB in fp16), stored as ONNX external data beside each encoder.

Examples:
  cah model random /tmp/vit-b-32 --arch vit-b-32
  cah model random /tmp/vit-b-32 --arch vit-b-32 --precision fp16   # for a GPU`,
    )
    .action(async (dir: string, flags: { arch: string; precision: Precision; seed: number }) => {
      const target = resolve(dir);
      const started = Date.now();
      await buildRandomClip(target, CLIP_ARCHS[flags.arch]!, { precision: flags.precision, seed: flags.seed });
      io.err(`built a RANDOM ${flags.arch} (${flags.precision}) in ${((Date.now() - started) / 1000).toFixed(1)} s: for benchmarks only\n`);
      io.out(`${target}\n`);
    });
}
