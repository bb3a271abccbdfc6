import { readFileSync } from 'node:fs';

/** Python's `str.isspace()` set, which OpenAI's CLIP tokenizer used for `\s` (JS `\s` differs slightly). */
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${WS}]+`, 'gu');
/** CLIP's pre-tokenizer split (simple_tokenizer.py and tokenizer.json agree on it). */
const SPLIT = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${WS}\\p{L}\\p{N}]+`,
  'gu',
);

export const START_TOKEN = '<|startoftext|>';
export const END_TOKEN = '<|endoftext|>';
export const DEFAULT_CONTEXT_LENGTH = 77;

/** GPT-2's reversible byte → printable character map that byte-level BPE vocabularies are written in. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = '!'.charCodeAt(0); b <= '~'.charCodeAt(0); b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array(256);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + next++);
  }
  return table;
}

/** The parts of a Hugging Face `tokenizer.json` (BPE model) the CLIP tokenizer needs. */
export interface TokenizerJson {
  added_tokens?: { id: number; content: string }[];
  model: {
    type?: string;
    vocab: Record<string, number>;
    merges: (string | [string, string])[];
    end_of_word_suffix?: string | null;
  };
}

/** Token ids of a batch, padded to the context length, ready for an ONNX text encoder. */
export interface EncodedBatch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  contextLength: number;
}

/**
 * CLIP's byte-level BPE tokenizer, exact to OpenAI's simple_tokenizer (minus ftfy/html unescaping):
 * NFC, whitespace collapse, lowercase, CLIP regex split, BPE with `</w>` word ends, start/end tokens.
 */
export class ClipTokenizer {
  private readonly byteChars = bytesToUnicode();
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly suffix: string;
  readonly startId: number;
  readonly endId: number;

  constructor(
    private readonly json: TokenizerJson,
    readonly contextLength = DEFAULT_CONTEXT_LENGTH,
  ) {
    if (json.model?.type !== undefined && json.model.type !== 'BPE') {
      throw new Error(`tokenizer.json: expected a BPE model, got "${json.model.type}"`);
    }
    if (!json.model?.vocab || !Array.isArray(json.model.merges)) throw new Error('tokenizer.json: model.vocab or model.merges missing');
    this.suffix = json.model.end_of_word_suffix ?? '</w>';
    json.model.merges.forEach((merge, rank) => {
      const [a, b] = typeof merge === 'string' ? splitMerge(merge) : merge;
      this.ranks.set(`${a} ${b}`, rank);
    });
    this.startId = this.specialId(START_TOKEN);
    this.endId = this.specialId(END_TOKEN);
    this.cache.set(START_TOKEN, [this.startId]);
    this.cache.set(END_TOKEN, [this.endId]);
  }

  static fromFile(path: string, contextLength = DEFAULT_CONTEXT_LENGTH): ClipTokenizer {
    let json: TokenizerJson;
    try {
      json = JSON.parse(readFileSync(path, 'utf8')) as TokenizerJson;
    } catch (err) {
      throw new Error(`cannot read tokenizer ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return new ClipTokenizer(json, contextLength);
  }

  get vocabSize(): number {
    let max = Math.max(this.startId, this.endId);
    for (const id of Object.values(this.json.model.vocab)) if (id > max) max = id;
    return max + 1;
  }

  /** The ids of one text: start, BPE tokens, end; truncated to the context length keeping the end token. */
  encode(text: string): number[] {
    const ids = [this.startId];
    for (const word of normalize(text).match(SPLIT) ?? []) ids.push(...this.bpeIds(word));
    const body = ids.slice(0, this.contextLength - 1);
    body.push(this.endId);
    return body;
  }

  /** Several texts as `[n, contextLength]` int64 ids (padded with the end token) and attention mask. */
  encodeBatch(texts: readonly string[]): EncodedBatch {
    const L = this.contextLength;
    const inputIds = new BigInt64Array(texts.length * L).fill(BigInt(this.endId));
    const attentionMask = new BigInt64Array(texts.length * L);
    texts.forEach((text, row) => {
      const ids = this.encode(text);
      for (let i = 0; i < ids.length; i++) {
        inputIds[row * L + i] = BigInt(ids[i]!);
        attentionMask[row * L + i] = 1n;
      }
    });
    return { inputIds, attentionMask, contextLength: L };
  }

  private specialId(content: string): number {
    const id = this.json.added_tokens?.find((t) => t.content === content)?.id ?? this.json.model.vocab[content];
    if (id === undefined) throw new Error(`tokenizer.json has no ${content} token`);
    return id;
  }

  private bpeIds(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const mapped = Array.from(Buffer.from(word, 'utf8'), (b) => this.byteChars[b]!);
    const ids = this.bpe(mapped).map((piece) => {
      const id = this.json.model.vocab[piece];
      if (id === undefined) throw new Error(`tokenizer.json: BPE piece "${piece}" is not in the vocabulary`);
      return id;
    });
    if (this.cache.size < 100_000) this.cache.set(word, ids);
    return ids;
  }

  /** Repeatedly merges the lowest-ranked adjacent pair (every occurrence, left to right). */
  private bpe(chars: string[]): string[] {
    let parts = chars.slice();
    parts[parts.length - 1] += this.suffix;
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const rank = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const first = parts[best]!;
      const second = parts[best + 1]!;
      const merged: string[] = [];
      for (let i = 0; i < parts.length; ) {
        if (i < parts.length - 1 && parts[i] === first && parts[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(parts[i]!);
          i += 1;
        }
      }
      parts = merged;
    }
    return parts;
  }
}

/** NFC, whitespace runs to one space, trimmed, lowercased (tokenizer.json's normalizer; simple_tokenizer's clean-up). */
export function normalize(text: string): string {
  return text.normalize('NFC').replace(WHITESPACE_RUN, ' ').trim().toLowerCase();
}

function splitMerge(merge: string): [string, string] {
  const space = merge.indexOf(' ', 1);
  if (space < 0) throw new Error(`tokenizer.json: malformed merge "${merge}"`);
  return [merge.slice(0, space), merge.slice(space + 1)];
}
