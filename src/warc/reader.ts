import type { Readable } from 'node:stream';

/** One WARC record: lower-cased header names, the content block as a view of the read buffer. */
export interface WarcRecord {
  type: string;
  targetUri: string | null;
  headers: Record<string, string>;
  content: Buffer;
  /** Byte offset of the record in the (decompressed) stream, for error messages. */
  offset: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const HEADER_END_LF = Buffer.from('\n\n');
const MAGIC = Buffer.from('WARC/1.');
/** A header block larger than this is garbage, not a header. */
const MAX_HEADER_BYTES = 64 * 1024;

/**
 * Streams WARC records (WARC/1.0 and 1.1, CRLF or bare LF) with Content-Length framing. Memory is
 * bounded by the largest record, not the file. Garbage between records is skipped up to the next
 * `WARC/1.` line and reported; a truncated last record is reported, not thrown.
 */
export async function* readWarcRecords(input: Readable, onError: (msg: string) => void): AsyncGenerator<WarcRecord> {
  let buf: Buffer = Buffer.alloc(0);
  let base = 0;
  let ended = false;
  const iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      return false;
    }
    buf = buf.length === 0 ? next.value : Buffer.concat([buf, next.value]);
    return true;
  };
  const consume = (n: number): void => {
    buf = buf.subarray(n);
    base += n;
  };

  for (;;) {
    // Find the start of a record.
    let start = buf.indexOf(MAGIC);
    while (start < 0) {
      if (buf.length > MAGIC.length) consume(buf.length - MAGIC.length);
      if (!(await more())) {
        if (buf.toString('latin1').trim().length > 0) onError(`trailing garbage at offset ${base}`);
        return;
      }
      start = buf.indexOf(MAGIC);
    }
    if (start > 0) {
      if (buf.subarray(0, start).toString('latin1').trim().length > 0) onError(`skipped ${start} bytes of garbage at offset ${base}`);
      consume(start);
    }
    // Header block.
    let headerEnd = -1;
    let sepLen = 4;
    for (;;) {
      headerEnd = buf.indexOf(HEADER_END);
      sepLen = 4;
      const lf = buf.indexOf(HEADER_END_LF);
      if (lf >= 0 && (headerEnd < 0 || lf < headerEnd)) {
        headerEnd = lf;
        sepLen = 2;
      }
      if (headerEnd >= 0 || buf.length > MAX_HEADER_BYTES) break;
      if (!(await more())) break;
    }
    if (headerEnd < 0) {
      if (buf.length > MAX_HEADER_BYTES) {
        onError(`record header at offset ${base} is too long: skipped`);
        consume(MAGIC.length);
        continue;
      }
      onError(`truncated record header at offset ${base}`);
      return;
    }
    const headers: Record<string, string> = {};
    const lines = buf.subarray(0, headerEnd).toString('utf8').split(/\r?\n/);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length']);
    const offset = base;
    if (!Number.isInteger(length) || length < 0) {
      onError(`record at offset ${offset} has no valid Content-Length: skipped`);
      consume(headerEnd + sepLen);
      continue;
    }
    const bodyStart = headerEnd + sepLen;
    while (buf.length < bodyStart + length) {
      if (!(await more())) {
        onError(
          `truncated record at offset ${offset} (${headers['warc-target-uri'] ?? headers['warc-type'] ?? 'unknown'}): ${buf.length - bodyStart} of ${length} bytes`,
        );
        return;
      }
    }
    const content = buf.subarray(bodyStart, bodyStart + length);
    consume(bodyStart + length);
    yield {
      type: headers['warc-type'] ?? '',
      targetUri: headers['warc-target-uri']?.replace(/^<|>$/g, '') ?? null,
      headers,
      content,
      offset,
    };
  }
}
