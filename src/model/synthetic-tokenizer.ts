import { bytesToUnicode, END_TOKEN, START_TOKEN, type TokenizerJson } from '../filter/tokenizer.js';

export interface SyntheticTokenizer {
  json: TokenizerJson;
  /** Id of each listed word when it stands alone as a word (one token each). */
  wordIds: Map<string, number>;
  startId: number;
  endId: number;
  vocabSize: number;
}

/**
 * A CLIP-format byte-level BPE `tokenizer.json` for constructed models: every byte (plain and with
 * `</w>`), merges that make each listed word a single token, then start/end tokens. Any text
 * tokenizes (bytes cover everything); only the listed words get their own ids.
 *
 * Merges join every two adjacent substrings of a listed word, shortest results first, so whatever
 * order BPE applies them in, a listed word always ends as one token.
 */
export function buildSyntheticTokenizer(words: readonly string[], opts: { vocabSize?: number } = {}): SyntheticTokenizer {
  const byteChars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  const add = (token: string): number => (vocab[token] ??= Object.keys(vocab).length);
  for (const c of byteChars) add(c);
  for (const c of byteChars) add(c + '</w>');

  const merges = new Map<string, { pair: [string, string]; length: number }>();
  for (const word of words) {
    const chars = Array.from(Buffer.from(word, 'utf8'), (b) => byteChars[b]!);
    const piece = (i: number, j: number): string => chars.slice(i, j).join('') + (j === chars.length ? '</w>' : '');
    for (let i = 0; i < chars.length; i++) {
      for (let j = i + 2; j <= chars.length; j++) {
        for (let k = i + 1; k < j; k++) {
          const pair: [string, string] = [piece(i, k), piece(k, j)];
          merges.set(pair.join(' '), { pair, length: j - i });
        }
      }
    }
  }
  const ordered = [...merges.values()].sort((a, b) => a.length - b.length);
  for (const m of ordered) add(m.pair.join(''));

  const wordIds = new Map<string, number>();
  for (const word of words) {
    const chars = Array.from(Buffer.from(word, 'utf8'), (b) => byteChars[b]!);
    wordIds.set(word, vocab[chars.join('') + '</w>']!);
  }
  const used = Object.keys(vocab).length;
  const vocabSize = Math.max(opts.vocabSize ?? 0, used + 2);
  const startId = vocabSize - 2;
  const endId = vocabSize - 1;
  vocab[START_TOKEN] = startId;
  vocab[END_TOKEN] = endId;
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: startId, content: START_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
      { id: endId, content: END_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [END_TOKEN, endId],
      cls: [START_TOKEN, startId],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE' as const,
      dropout: null,
      unk_token: END_TOKEN,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: ordered.map((m) => m.pair.join(' ')),
    },
  };
  return { json, wordIds, startId, endId, vocabSize };
}
