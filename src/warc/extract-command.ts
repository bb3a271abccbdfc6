import { CliError } from '../cli/errors.js';
import { extractCandidates, newExtractionCounts, type ExtractOptions, type ExtractionCounts } from './extract.js';
import { openSource } from './source.js';

/** `cah extract FILE`: candidates on `out` (JSON lines or tab-separated), errors and a summary on `err`. */
export async function runExtract(
  file: string,
  opts: ExtractOptions & { json: boolean },
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<ExtractionCounts> {
  let input;
  try {
    input = await openSource(file);
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const counts = newExtractionCounts();
  for await (const c of extractCandidates(input, opts, counts, (msg) => err.write(`warning: ${msg}\n`))) {
    out.write(
      opts.json
        ? JSON.stringify({ url: c.url, caption: c.caption, page_url: c.pageUrl, license: c.license }) + '\n'
        : `${c.url}\t${c.caption}\t${c.pageUrl}\t${c.license ?? ''}\n`,
    );
  }
  err.write(
    `${counts.candidates} candidates from ${counts.pages} pages in ${counts.records} records` +
      ` (dropped: ${counts.captionTooShort} captions too short, ${counts.nonHttpUrls} non-http URLs, ${counts.duplicates} duplicates;` +
      ` ${counts.captionTruncated} captions truncated, ${counts.malformedRecords} malformed records)\n`,
  );
  return counts;
}
