import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipFilter } from '../filter/clip-filter.js';
import { defaultModelCache, modelCacheDir } from '../model/hub.js';
import { MODEL_FILES } from '../filter/model-dir.js';
import type { ExecutionProviderChoice } from '../filter/sessions.js';
import { ClipTokenizer } from '../filter/tokenizer.js';
import { bundledTokenizer } from '../filter/bundled-tokenizer.js';
import { CliError } from './errors.js';
import { PROCESS_IO, type CommandIo } from './model.js';

const DEFAULT_REPO = 'Xenova/clip-vit-base-patch32';

/** --model, else the default model if it has been pulled into the cache. */
function modelDirOrDefault(model: string | undefined): string {
  if (model) return model;
  const cached = modelCacheDir(defaultModelCache(), DEFAULT_REPO);
  if (existsSync(cached)) return cached;
  throw new CliError(`no --model given and ${cached} does not exist: run \`cah model pull ${DEFAULT_REPO}\` or pass --model DIR`);
}

export function registerClipCommands(program: Command, io: CommandIo = PROCESS_IO): void {
  const clip = program.command('clip').description('the CLIP filter by hand: tokenize a caption, score one image–text pair');

  clip
    .command('tokenize')
    .description("print CLIP token ids of a text (start and end tokens included, at most the model's 77)")
    .argument('<text...>', 'the text (several words are joined with spaces)')
    .option('--model <dir>', "model directory whose tokenizer.json to use (default: CLIP's vocabulary shipped with cah)")
    .option('--tokenizer <file>', 'a tokenizer.json to use instead of a model directory')
    .option('--json', 'print a JSON array', false)
    .addHelpText(
      'after',
      `
Examples:
  cah clip tokenize "a photo of a cat"                 # 49406 320 1125 539 320 2368 49407
  cah clip tokenize --json "a photo of a cat"          # [49406,320,1125,539,320,2368,49407]`,
    )
    .action((words: string[], flags: { model?: string; tokenizer?: string; json: boolean }) => {
      const path = flags.tokenizer ?? (flags.model ? join(flags.model, MODEL_FILES.tokenizer) : null);
      let tokenizer: ClipTokenizer;
      if (path === null) {
        tokenizer = bundledTokenizer();
      } else {
        if (!existsSync(path)) throw new CliError(`${path} does not exist: pass --tokenizer FILE or a --model directory that has one`);
        try {
          tokenizer = ClipTokenizer.fromFile(path);
        } catch (err) {
          throw new CliError(`${err instanceof Error ? err.message : String(err)}: is it a CLIP tokenizer.json?`);
        }
      }
      const ids = tokenizer.encode(words.join(' '));
      io.out((flags.json ? JSON.stringify(ids) : ids.join(' ')) + '\n');
    });

  clip
    .command('score')
    .description('print the cosine similarity of one image and one text under a CLIP model')
    .requiredOption('--image <file>', 'an image file (JPEG, PNG, WebP, …)')
    .requiredOption('--text <text>', 'the caption')
    .option('--model <dir>', `CLIP model directory (default: the pulled ${DEFAULT_REPO})`)
    .addOption(new Option('--execution-provider <ep>', 'where the model runs').choices(['auto', 'cpu', 'cuda']).default('cpu'))
    .addHelpText(
      'after',
      `
LAION kept pairs scoring at least 0.28 with ViT-B/32 (cah gpu --threshold, default 0.28).

Examples:
  cah clip score --image cat.jpg --text "a photo of a cat"
  cah clip score --model ./demo-model --image red.jpg --text "a red circle"`,
    )
    .action(async (flags: { image: string; text: string; model?: string; executionProvider: ExecutionProviderChoice }) => {
      const modelDir = modelDirOrDefault(flags.model);
      let image: Buffer;
      try {
        image = await readFile(flags.image);
      } catch (err) {
        throw new CliError(`cannot read --image ${flags.image}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      let filter: ClipFilter;
      try {
        filter = await ClipFilter.create({
          modelDir,
          threshold: 0,
          executionProvider: flags.executionProvider,
          preprocessThreads: 1,
          log: (msg) => io.err(`${msg}\n`),
        });
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err));
      }
      try {
        const result = await filter.embedPairs([image], [flags.text]);
        const problem = result.imageErrors[0];
        if (problem) throw new CliError(`cannot decode ${flags.image}: ${problem}`);
        io.out(`${result.similarities[0]!.toFixed(4)}\n`);
      } finally {
        await filter.close();
      }
    });
}
