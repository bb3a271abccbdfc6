import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { ClipTokenizer, END_TOKEN, START_TOKEN, bytesToUnicode, type TokenizerJson } from './tokenizer.js';

/** OpenAI CLIP's BPE merges (MIT), shipped in the package so tokenizing needs no download. */
const VOCAB_FILE = 'assets/clip/bpe_simple_vocab_16e6.txt.gz';
/** simple_tokenizer.py keeps the merges on lines 1 … 49152 − 256 − 2. */
const MERGES = 49152 - 256 - 2;

/** The shipped vocabulary: beside src/ (tsx) or dist/src/ (built), both under the package root. */
export function bundledVocabPath(): string {
  for (const up of ['../../', '../../../']) {
    const path = fileURLToPath(new URL(up + VOCAB_FILE, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(`the CLIP vocabulary ${VOCAB_FILE} is missing from this installation`);
}

/** simple_tokenizer.py's vocabulary from the merges file: bytes, bytes + `</w>`, merges, the two specials. */
export function tokenizerJsonFromMerges(gz: Buffer): TokenizerJson {
  const merges = gunzipSync(gz)
    .toString('utf8')
    .split('\n')
    .slice(1, MERGES + 1)
    .map((line) => line.split(' ') as [string, string]);
  // bytes_to_unicode() as Python orders it: printable bytes first, then the rest.
  const table = bytesToUnicode();
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const bytes = [...table.keys()].sort((a, b) => Number(printable(b)) - Number(printable(a)) || a - b);
  const base = bytes.map((b) => table[b]!);
  const words = [...base, ...base.map((c) => c + '</w>'), ...merges.map(([a, b]) => a + b), START_TOKEN, END_TOKEN];
  return { model: { type: 'BPE', vocab: Object.fromEntries(words.map((w, i) => [w, i])), merges, end_of_word_suffix: '</w>' } };
}

/** CLIP's tokenizer from the vocabulary shipped with cah (the same ids as the models' tokenizer.json). */
export function bundledTokenizer(contextLength?: number): ClipTokenizer {
  return new ClipTokenizer(tokenizerJsonFromMerges(readFileSync(bundledVocabPath())), contextLength);
}
