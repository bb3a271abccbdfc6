/** img2dataset's per-sample statuses, plus filtered_out for pairs the CLIP filter rejected. */
export type SampleStatus = 'success' | 'failed_to_download' | 'failed_to_resize' | 'filtered_out';

/** One candidate after the worker tried it: metadata for every candidate, image bytes for successes. */
export interface SampleRecord {
  key: string;
  url: string;
  caption: string;
  pageUrl: string;
  license: string | null;
  status: SampleStatus;
  errorMessage: string | null;
  width: number | null;
  height: number | null;
  originalWidth: number | null;
  originalHeight: number | null;
  /** sha256 hex of the resized JPEG bytes written to the dataset. */
  sha256: string | null;
  /** CLIP cosine similarity, null when no CLIP filter ran or the sample has no image. */
  similarity: number | null;
  /** Resized JPEG bytes; present only while status is success (or filtered_out before writing). */
  jpeg: Buffer | null;
  /** Download + resize time in milliseconds (for stats). */
  downloadMs: number | null;
  resizeMs: number | null;
  /** Downloads tried (1 + retries of transient failures); null when unknown. */
  downloadAttempts?: number | null;
}
