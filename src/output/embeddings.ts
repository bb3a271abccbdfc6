import { dump } from 'npyjs';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { float32ToFloat16 } from '../filter/float16.js';

/** The clip-retrieval layout's three folders, each with one file per output shard. */
export const EMBEDDING_DIRS = { image: 'img_emb', text: 'text_emb', metadata: 'metadata' } as const;

export function embeddingFileNames(shardName: string): { image: string; text: string; metadata: string } {
  return {
    image: `${EMBEDDING_DIRS.image}/img_emb_${shardName}.npy`,
    text: `${EMBEDDING_DIRS.text}/text_emb_${shardName}.npy`,
    metadata: `${EMBEDDING_DIRS.metadata}/metadata_${shardName}.parquet`,
  };
}

/** One kept pair's embeddings and the metadata row that names it. */
export interface EmbeddingRow {
  key: string;
  url: string;
  caption: string;
  similarity: number | null;
  image: Float32Array;
  text: Float32Array;
}

/** A float16 `[rows, dim]` .npy (numpy's format, as clip-retrieval's img_emb/text_emb files are). */
export function float16Npy(vectors: Float32Array[], dim: number): Buffer {
  const data = new Float32Array(vectors.length * dim);
  vectors.forEach((v, i) => {
    if (v.length !== dim) throw new Error(`embedding ${i} has ${v.length} values, expected ${dim}`);
    data.set(v, i * dim);
  });
  return Buffer.from(dump(float32ToFloat16(data), [vectors.length, dim], { dtype: 'f2' }));
}

/** metadata_NNNNN.parquet: row i describes row i of both .npy files. */
export function embeddingMetadataParquet(rows: EmbeddingRow[]): ArrayBuffer {
  return parquetWriteBuffer({
    columnData: [
      { name: 'key', data: rows.map((r) => r.key), type: 'STRING' },
      { name: 'url', data: rows.map((r) => r.url), type: 'STRING' },
      { name: 'caption', data: rows.map((r) => r.caption), type: 'STRING' },
      { name: 'similarity', data: rows.map((r) => r.similarity), type: 'DOUBLE' },
    ],
  });
}
