import { CahError } from '../errors.js';
import type { Candidate } from './candidate.js';
import { extractCandidates, noRecordsMessage, newExtractionCounts, type ExtractOptions, type ExtractionCounts } from './extract.js';
import { openSource, type UrlGuard } from './open-source.js';
import { oneLine } from '../text/sanitize.js';

// JSON.stringify escapes C0 controls (ESC included) but not DEL, C1 controls, bidi overrides or line separators.
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

/** JSON text safe for a terminal, the same value once parsed. */
function terminalJson(value: unknown): string {
  return JSON.stringify(value).replace(JSON_UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface ExtractCommandOptions extends ExtractOptions {
  /** One JSON object per line instead of tab-separated text. */
  json: boolean;
  /** The address rules a URL is fetched under. */
  guard?: UrlGuard;
}

function formatCandidate(candidate: Candidate, json: boolean): string {
  if (json) {
    return `${terminalJson({ url: candidate.url, caption: candidate.caption, page_url: candidate.pageUrl, license: candidate.license })}\n`;
  }
  // Every field on one line without tabs or escapes: a hostile page cannot forge a row or drive the terminal.
  return `${oneLine(candidate.url)}\t${oneLine(candidate.caption)}\t${oneLine(candidate.pageUrl)}\t${candidate.license === null ? '-' : oneLine(candidate.license)}\n`;
}

function summariseCounts(counts: ExtractionCounts): string {
  return (
    `${counts.candidates} candidates from ${counts.pages} pages in ${counts.records} records; dropped: ` +
    `${counts.captionTooShort} captions too short, ${counts.nonHttpUrls} non-http URLs, ${counts.duplicates} duplicates; ` +
    `${counts.captionTruncated} captions truncated; ${counts.malformedRecords} malformed records`
  );
}

/** Resolves false when `out` can take no more (e.g. `cah extract … | head` closed the pipe). */
function writeOrWait(out: NodeJS.WritableStream, text: string, closed: () => boolean): Promise<boolean> | boolean {
  if (closed()) return false;
  if (out.write(text)) return true;
  return new Promise<boolean>((resolve) => {
    const settle = (): void => {
      out.off('drain', settle);
      out.off('close', settle);
      out.off('error', settle);
      resolve(!closed());
    };
    out.on('drain', settle);
    out.on('close', settle);
    out.on('error', settle);
  });
}

/** `cah extract` could not open its input (UNREADABLE), stopped part-way (STOPPED), or found no records (EMPTY). */
export class ExtractError extends CahError {
  constructor(message: string, code: 'CAH_EXTRACT_UNREADABLE' | 'CAH_EXTRACT_STOPPED' | 'CAH_EXTRACT_EMPTY') {
    super(code, message);
  }
}

/**
 * `cah extract FILE [--json]`: the candidates of one WAT/WARC file (path or URL) on `out`, one per
 * line (JSON `{"url","caption","page_url","license"}` or `url<TAB>caption<TAB>page_url<TAB>license`),
 * warnings about bad records and a one-line summary on `err`. Stops quietly when `out` is closed.
 */
export async function runExtract(
  file: string,
  opts: ExtractCommandOptions,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<ExtractionCounts> {
  let input;
  let sourceError: string | null = null;
  try {
    input = await openSource(file, { ...(opts.guard ? { guard: opts.guard } : {}), onError: (msg) => (sourceError ??= msg) });
  } catch (error) {
    throw new ExtractError(`cannot read ${file}: ${(error as Error).message}`, 'CAH_EXTRACT_UNREADABLE');
  }
  let outClosed = false;
  const onOutError = (): void => {
    outClosed = true;
  };
  out.on('error', onOutError);
  const counts = newExtractionCounts();
  const options: ExtractOptions = { minCaptionLength: opts.minCaptionLength, maxCaptionLength: opts.maxCaptionLength };
  try {
    for await (const candidate of extractCandidates(input, options, counts, (msg) => err.write(`warning: ${oneLine(msg)}\n`))) {
      if (!(await writeOrWait(out, formatCandidate(candidate, opts.json), () => outClosed))) break;
    }
  } catch (error) {
    err.write(`${summariseCounts(counts)}\n`);
    throw new ExtractError(`${file}: reading stopped: ${(error as Error).message}`, 'CAH_EXTRACT_STOPPED');
  } finally {
    out.off('error', onOutError);
    input.destroy();
  }
  err.write(`${summariseCounts(counts)}\n`);
  if (sourceError !== null && !outClosed) throw new ExtractError(`${file}: reading stopped: ${sourceError}`, 'CAH_EXTRACT_STOPPED');
  if (counts.records === 0 && !outClosed) throw new ExtractError(noRecordsMessage(file, []), 'CAH_EXTRACT_EMPTY');
  return counts;
}
