import { parentPort } from 'node:worker_threads';
import { ParquetWriter, schemaFromColumnData, type ColumnSource } from 'hyparquet-writer';
import { ParquetFile } from './parquet-file.js';
import type { EncoderReply, EncoderRequest, ThreadError } from './parquet-encoder.js';

/**
 * The parquet encoder thread (src/output/parquet-encoder.ts starts it): it holds one ParquetWriter
 * per open file, cuts the rows it is sent into row groups and writes them. Encoding a row group
 * of 8,192 rows took 58 ms (230 ms before the JIT warmed up) on the coordinator's event loop,
 * during which no lease, heartbeat or sample was served.
 */

const ROW_GROUP = 8192;
/** A row group is also cut once its text reaches this size: long strings cannot fill memory. */
const ROW_GROUP_TEXT_BYTES = 16 * 1024 * 1024;

interface OpenFile {
  file: ParquetFile;
  writer: ParquetWriter;
  columns: ColumnSource[];
  rows: number;
  textBytes: number;
  errorSent: boolean;
}

const files = new Map<number, OpenFile>();
const port = parentPort!;

function threadError(err: unknown): ThreadError {
  const e: NodeJS.ErrnoException = err instanceof Error ? err : new Error(String(err));
  return { message: e.message, ...(e.code ? { code: e.code } : {}) };
}

function reply(message: EncoderReply): void {
  port.postMessage(message);
}

/** Tells the main thread of a write error as soon as it is seen (the shard fails without waiting for its end). */
function reportError(id: number, open: OpenFile): void {
  if (open.errorSent || !open.file.error) return;
  open.errorSent = true;
  reply({ type: 'error', id, error: threadError(open.file.error) });
}

function writeRowGroup(open: OpenFile): void {
  if (open.rows === 0) return;
  open.writer.write({ columnData: open.columns, rowGroupSize: open.rows });
  open.columns = open.columns.map((c) => ({ ...c, data: [] }));
  open.rows = 0;
  open.textBytes = 0;
}

function append(open: OpenFile, columns: ColumnSource[]): void {
  const rows = columns[0]?.data.length ?? 0;
  columns.forEach((column, i) => {
    const into = open.columns[i]!.data as unknown[];
    for (const value of column.data as unknown[]) {
      into.push(value);
      if (typeof value === 'string') open.textBytes += value.length;
    }
  });
  open.rows += rows;
  if (open.rows >= ROW_GROUP || open.textBytes >= ROW_GROUP_TEXT_BYTES) writeRowGroup(open);
}

async function handle(request: EncoderRequest): Promise<void> {
  const { id } = request;
  if (request.type === 'open') {
    const file = new ParquetFile(request.path);
    const writer = new ParquetWriter({ writer: file.writer, schema: schemaFromColumnData({ columnData: request.columns }) });
    const open: OpenFile = { file, writer, columns: request.columns.map((c) => ({ ...c, data: [] })), rows: 0, textBytes: 0, errorSent: false };
    files.set(id, open);
    append(open, request.columns);
    return;
  }
  const open = files.get(id)!;
  if (request.type === 'append') {
    try {
      append(open, request.columns);
      // The main thread sends the next batch on this ack: waiting for the disk here bounds both threads' memory.
      await open.file.drained();
      reply({ type: 'ack', id });
    } catch (err) {
      reply({ type: 'ack', id, error: threadError(err) });
    }
    reportError(id, open);
    return;
  }
  files.delete(id);
  if (request.type === 'close') {
    try {
      writeRowGroup(open);
      open.writer.finish();
      await open.file.close();
      reply({ type: 'done', id });
    } catch (err) {
      reply({ type: 'done', id, error: threadError(err) });
    }
    return;
  }
  await open.file.abandon();
  reply({ type: 'done', id });
}

// Each file's requests are handled in order (its close after its appends); files do not wait for each other.
const chains = new Map<number, Promise<void>>();
port.on('message', (request: EncoderRequest) => {
  const chain = (chains.get(request.id) ?? Promise.resolve()).then(() => handle(request));
  chains.set(request.id, chain);
  void chain.then(() => {
    if (chains.get(request.id) === chain) chains.delete(request.id);
  });
});
