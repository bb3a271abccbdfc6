import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import tar from 'tar-stream';
import type { MetadataRow } from '../../src/output/sample.js';

/** A row as the writer's table describes it, plus the filter's extra columns. */
export type ParquetRow = MetadataRow & { [column: string]: unknown };

/** Every row of every NNNNN.parquet in the dataset, read with hyparquet (not our writer). */
export async function readAllParquet(outDir: string): Promise<ParquetRow[]> {
  const rows: ParquetRow[] = [];
  for (const name of readdirSync(outDir).filter((n) => /^\d{5,}\.parquet$/.test(n)).sort()) {
    const bytes = readFileSync(join(outDir, name));
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    rows.push(...((await parquetReadObjects({ file })) as ParquetRow[]));
  }
  return rows;
}

/** Every entry name of every NNNNN.tar, read with tar-stream's extractor. */
export async function readAllTarEntries(outDir: string): Promise<{ name: string; data: Buffer }[]> {
  const entries: { name: string; data: Buffer }[] = [];
  for (const name of readdirSync(outDir).filter((n) => /^\d{5,}\.tar$/.test(n)).sort()) {
    const extract = tar.extract();
    const done = new Promise<void>((resolve, reject) => {
      extract.on('entry', (header, stream, next) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => chunks.push(c as Buffer));
        stream.on('end', () => {
          entries.push({ name: header.name, data: Buffer.concat(chunks) });
          next();
        });
        stream.resume();
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
    });
    extract.end(readFileSync(join(outDir, name)));
    await done;
  }
  return entries;
}
