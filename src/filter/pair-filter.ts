/** A pair as the filter sees it: the resized JPEG and its caption. */
export interface FilterInput {
  key: string;
  jpeg: Buffer;
  caption: string;
}

/** An extra per-pair output column a filter fills (verdict.extra[name]). */
export interface ExtraColumn {
  name: string;
  type: 'STRING' | 'DOUBLE';
}

/** The filter's verdict on one pair. */
export interface FilterVerdict {
  keep: boolean;
  /** Cosine similarity of the L2-normalised embeddings, null for the pass-through filter. */
  similarity: number | null;
  /** Extra per-pair columns (e.g. language, watermark score) to be written to the parquet/json. */
  extra?: Record<string, string | number | null>;
  /** L2-normalised embeddings of kept pairs, for img_emb/text_emb output. */
  imageEmbedding?: Float32Array;
  textEmbedding?: Float32Array;
  /** Why the pair was rejected, written as the sample's error_message. */
  reason?: string;
}

/**
 * The filter stage behind the coordinator. It receives batches and answers one verdict per input,
 * in order. Implementations batch internally on top of this if they want larger batches.
 */
export interface PairFilter {
  /** Human-readable name of the execution provider ("CPU", "CUDA", "none"). */
  readonly provider: string;
  readonly name: string;
  score(batch: FilterInput[]): Promise<FilterVerdict[]>;
  close(): Promise<void>;
}

/** Keeps everything: the filter used when no CLIP model is configured. */
export class PassThroughFilter implements PairFilter {
  readonly provider = 'none';
  readonly name = 'pass-through';
  async score(batch: FilterInput[]): Promise<FilterVerdict[]> {
    return batch.map(() => ({ keep: true, similarity: null }));
  }
  async close(): Promise<void> {}
}
