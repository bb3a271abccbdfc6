import { Option, type Command } from 'commander';
import { DEFAULT_EXTRACT_OPTIONS } from '../warc/extract.js';
import { runExtract } from '../warc/extract-command.js';
import { sourceGuard } from '../worker/ssrf.js';
import { intFlag } from './state.js';

export function registerExtractCommand(program: Command): void {
  program
    .command('extract')
    .description('print the image–caption candidates of one WAT/WARC file without downloading any image')
    .argument('<file>', 'local path or http(s) URL of a .wat, .wat.gz, .warc or .warc.gz')
    .option('--json', 'one JSON object per line: url, caption, page_url, license', false)
    .addOption(new Option('--allow-loopback', 'fetch a URL on 127.0.0.0/8 or ::1').env('CAH_ALLOW_LOOPBACK').default(false))
    .option('--allow-private', 'fetch a URL on a private address (a private mirror)', false)
    .option('--min-caption-length <n>', 'drop captions shorter than this', intFlag(0), DEFAULT_EXTRACT_OPTIONS.minCaptionLength)
    .option('--max-caption-length <n>', 'truncate captions longer than this', intFlag(1), DEFAULT_EXTRACT_OPTIONS.maxCaptionLength)
    .addHelpText(
      'after',
      `
Examples:
  cah extract CC-MAIN-20240522-00000.warc.wat.gz --json | head
  cah extract page.warc.gz --min-caption-length 1`,
    )
    .action(async (file: string, flags: { json: boolean; minCaptionLength: number; maxCaptionLength: number; allowLoopback: boolean; allowPrivate: boolean }) => {
      await runExtract(
        file,
        {
          json: flags.json,
          minCaptionLength: flags.minCaptionLength,
          maxCaptionLength: flags.maxCaptionLength,
          guard: sourceGuard({ allowLoopback: flags.allowLoopback, allowPrivate: flags.allowPrivate }),
        },
        process.stdout,
        process.stderr,
      );
    });
}
