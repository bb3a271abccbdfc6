import type { Readable } from 'node:stream';

/** One WARC record: lower-cased header names; `content` is a view of the read buffer, not a copy. */
export interface WarcRecord {
  type: string;
  targetUri: string | null;
  headers: Record<string, string>;
  content: Buffer;
  /** Byte offset of the record in the (decompressed) stream, for error messages. */
  offset: number;
}

const MAGIC = Buffer.from('WARC/1.', 'latin1');
const LF = 0x0a;
const CR = 0x0d;
/** A header block larger than this is garbage, not a header. */
const MAX_HEADER_BYTES = 256 * 1024;

type HeaderParse =
  | { kind: 'ok'; headers: Record<string, string>; bodyStart: number }
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string };

/** Parses the header block at the start of `buf` (which starts with `WARC/1.`); CRLF or bare LF lines. */
function parseHeader(buf: Buffer): HeaderParse {
  // Find the blank line first, then decode the block once: one string instead of one per line.
  let lineStart = buf.indexOf(LF) + 1;
  for (;;) {
    if (lineStart === 0 || lineStart > MAX_HEADER_BYTES) {
      return buf.length > MAX_HEADER_BYTES ? { kind: 'invalid', reason: 'no end of header block' } : { kind: 'incomplete' };
    }
    if (buf[lineStart] === LF) return { kind: 'ok', headers: headerFields(buf.toString('utf8', 0, lineStart)), bodyStart: lineStart + 1 };
    if (buf[lineStart] === CR && buf[lineStart + 1] === LF) {
      return { kind: 'ok', headers: headerFields(buf.toString('utf8', 0, lineStart)), bodyStart: lineStart + 2 };
    }
    if (lineStart >= buf.length - 1) return { kind: 'incomplete' };
    lineStart = buf.indexOf(LF, lineStart) + 1;
  }
}

/** `Name: value` lines after the version line, names lower-cased. */
function headerFields(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let at = block.indexOf('\n') + 1; at < block.length; ) {
    const end = block.indexOf('\n', at);
    const colon = block.indexOf(':', at);
    if (colon > at && colon < end) headers[block.slice(at, colon).trim().toLowerCase()] = block.slice(colon + 1, end).trim();
    at = end + 1;
  }
  return headers;
}

/** Index of the first `WARC/1.` at the start of a line in `buf` (from `from`), or -1. */
function findRecordStart(buf: Buffer, from: number): number {
  let at = buf.indexOf(MAGIC, from);
  while (at > 0 && buf[at - 1] !== LF) at = buf.indexOf(MAGIC, at + 1);
  return at;
}

function isBlank(byte: number | undefined): boolean {
  return byte === LF || byte === CR || byte === 0x20 || byte === 0x09;
}

/**
 * Streams WARC records (WARC/1.0 and 1.1, CRLF or bare LF) in batches: the records that the bytes
 * read so far complete, so consumers pay for one await per input chunk, not per record. Content
 * is framed by Content-Length and handed out as views; only a record that spans input chunks is
 * copied. Memory is bounded by the largest record, not the file. Garbage between records is
 * skipped up to the next `WARC/1.` line and reported; a truncated last record is reported, not thrown.
 */
export async function* readWarcRecordBatches(input: Readable, onError: (msg: string) => void): AsyncGenerator<WarcRecord[]> {
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buf: Buffer = Buffer.alloc(0);
  /** Stream offset of buf[0]. */
  let base = 0;
  let ended = false;
  let garbage = 0;
  let garbageAt = 0;

  const nextChunk = async (): Promise<Buffer | null> => {
    if (ended) return null;
    const next = await chunks.next();
    if (next.done) {
      ended = true;
      return null;
    }
    return next.value;
  };
  const append = async (): Promise<boolean> => {
    const chunk = await nextChunk();
    if (!chunk) return false;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    return true;
  };
  const skip = (n: number, isGarbage: boolean): void => {
    if (isGarbage && n > 0) {
      if (garbage === 0) garbageAt = base;
      garbage += n;
    }
    buf = buf.subarray(n);
    base += n;
  };
  const reportGarbage = (): void => {
    if (garbage === 0) return;
    onError(`skipped ${garbage} bytes of garbage at offset ${garbageAt} to resynchronise on the next WARC record`);
    garbage = 0;
  };

  try {
    let batch: WarcRecord[] = [];
    for (;;) {
      // Between records: blank lines are normal, anything else is garbage up to the next `WARC/1.` line.
      let blank = 0;
      while (blank < buf.length && isBlank(buf[blank])) blank++;
      skip(blank, false);
      const atRecord = buf.length >= MAGIC.length && buf.compare(MAGIC, 0, MAGIC.length, 0, MAGIC.length) === 0;
      if (!atRecord) {
        const maybePartialMagic = buf.length < MAGIC.length && MAGIC.compare(buf, 0, buf.length, 0, buf.length) === 0;
        if (!maybePartialMagic) {
          const start = findRecordStart(buf, 1);
          if (start > 0) {
            skip(start, true);
            continue;
          }
          // Keep what could be the beginning of a `WARC/1.` cut by the chunk boundary.
          skip(Math.max(0, buf.length - (MAGIC.length - 1)), true);
        }
        if (batch.length > 0) {
          yield batch;
          batch = [];
        }
        if (!(await append())) {
          skip(buf.length, true);
          reportGarbage();
          return;
        }
        continue;
      }
      reportGarbage();

      const header = parseHeader(buf);
      if (header.kind === 'incomplete') {
        if (batch.length > 0) {
          yield batch;
          batch = [];
        }
        if (!(await append())) {
          onError(`truncated record header at offset ${base}: the input ends inside it`);
          return;
        }
        continue;
      }
      if (header.kind === 'invalid') {
        onError(`unreadable record header at offset ${base} (${header.reason}): skipped`);
        skip(MAGIC.length, false);
        continue;
      }
      const { headers, bodyStart } = header;
      const offset = base;
      const declared = headers['content-length'];
      // Decimal digits only: Number() would also read 0x10, 0b10 or 1e3 as lengths.
      const length = /^\d{1,15}$/.test(declared ?? '') ? Number(declared) : -1;
      if (declared === undefined || length < 0) {
        onError(`record at offset ${offset} has no valid Content-Length (${declared ?? 'missing'}): skipped`);
        skip(bodyStart, false);
        continue;
      }
      const needed = bodyStart + length;
      let record = buf;
      let rest: Buffer | null = null;
      if (buf.length < needed) {
        // The record spans chunks: copy exactly its bytes, keep the rest of the last chunk as a view.
        if (batch.length > 0) {
          yield batch;
          batch = [];
        }
        const parts = [buf];
        let have = buf.length;
        while (have < needed) {
          const chunk = await nextChunk();
          if (!chunk) {
            const name = headers['warc-target-uri'] ?? headers['warc-type'] ?? 'unknown';
            onError(`truncated record at offset ${offset} (${name}): the input ends after ${have - bodyStart} of ${length} content bytes`);
            return;
          }
          parts.push(chunk);
          have += chunk.length;
        }
        const last = parts[parts.length - 1]!;
        record = Buffer.concat(parts, needed);
        rest = last.subarray(last.length - (have - needed));
      }
      const target = headers['warc-target-uri'];
      batch.push({
        type: headers['warc-type'] ?? '',
        targetUri: target === undefined ? null : target.replace(/^<(.*)>$/, '$1'),
        headers,
        content: record.subarray(bodyStart, needed),
        offset,
      });
      if (rest) {
        buf = rest;
        base += needed;
      } else {
        skip(needed, false);
      }
    }
  } finally {
    await chunks.return?.();
  }
}

/** One record at a time; see readWarcRecordBatches. */
export async function* readWarcRecords(input: Readable, onError: (msg: string) => void): AsyncGenerator<WarcRecord> {
  for await (const batch of readWarcRecordBatches(input, onError)) yield* batch;
}
