import { hash } from 'node:crypto';

/** An image–caption pair found in a crawl page, before anything is downloaded. */
export interface Candidate {
  /** Stable identity of the pair: see candidateKey. Also the sample key in the output. */
  key: string;
  /** Absolute http(s) image URL. */
  url: string;
  /** Whitespace-normalised alt text, within the configured length bounds. */
  caption: string;
  /** The page the image was found on. */
  pageUrl: string;
  /** A Creative Commons license URL linked from the page, or null. */
  license: string | null;
}

/** The exact form of every sample key: what candidateKey returns (and a safe tar member name). */
export const SAMPLE_KEY_FORMAT = /^[0-9a-f]{16}$/;

/** 16 hex chars of sha256(url \n caption): the run-wide dedup key and the webdataset sample key. */
export function candidateKey(url: string, caption: string): string {
  // One-shot hash: a third of the cost of createHash().update()… on the extraction hot path.
  return hash('sha256', `${url}\n${caption}`, 'hex').slice(0, 16);
}
