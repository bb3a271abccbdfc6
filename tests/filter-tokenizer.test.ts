import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { buildSyntheticTokenizer } from '../src/model/synthetic-tokenizer.js';
import { ClipTokenizer } from '../src/filter/tokenizer.js';
import { bundledTokenizer, bundledVocabPath } from '../src/filter/bundled-tokenizer.js';
import { sharedData } from './support/paths.js';

/**
 * OpenAI's simple_tokenizer.py, transcribed independently: vocabulary built from the original merges
 * file (not tokenizer.json), Python-style BPE. ftfy and html.unescape are left out (the captions
 * below need neither; ftfy's part that matters here is NFC).
 */
class ReferenceTokenizer {
  private readonly encoder = new Map<string, number>();
  private readonly ranks = new Map<string, number>();
  private readonly byteEncoder: Map<number, string>;
  private readonly cache = new Map<string, string>([
    ['<|startoftext|>', '<|startoftext|>'],
    ['<|endoftext|>', '<|endoftext|>'],
  ]);
  // Python's \s for str patterns (str.isspace), spelled out.
  private static readonly PY_WS = '\\t\\n\\x0b\\x0c\\r\\x1c\\x1d\\x1e\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
  private readonly pat = new RegExp(
    `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${ReferenceTokenizer.PY_WS}\\p{L}\\p{N}]+`,
    'giu',
  );

  constructor(mergesGz: string) {
    // bytes_to_unicode(): dict(zip(bs, cs)) keeps bs order: printable bytes first, then the rest.
    const bs: number[] = [];
    for (let b = 33; b <= 126; b++) bs.push(b);
    for (let b = 161; b <= 172; b++) bs.push(b);
    for (let b = 174; b <= 255; b++) bs.push(b);
    const cs = bs.slice();
    let n = 0;
    for (let b = 0; b < 256; b++) {
      if (!bs.includes(b)) {
        bs.push(b);
        cs.push(256 + n);
        n++;
      }
    }
    this.byteEncoder = new Map(bs.map((b, i) => [b, String.fromCharCode(cs[i]!)]));
    const lines = gunzipSync(readFileSync(mergesGz)).toString('utf8').split('\n');
    const merges = lines.slice(1, 49152 - 256 - 2 + 1).map((l) => l.split(/ +/) as [string, string]);
    const vocab = [...this.byteEncoder.values()];
    vocab.push(...vocab.map((v) => v + '</w>'));
    for (const m of merges) vocab.push(m.join(''));
    vocab.push('<|startoftext|>', '<|endoftext|>');
    vocab.forEach((v, i) => this.encoder.set(v, i));
    merges.forEach((m, i) => this.ranks.set(`${m[0]}\u0000${m[1]}`, i));
  }

  private bpe(token: string): string {
    const cached = this.cache.get(token);
    if (cached !== undefined) return cached;
    const chars = Array.from(token);
    let word: string[] = [...chars.slice(0, -1), chars[chars.length - 1] + '</w>'];
    const pairsOf = (w: string[]): [string, string][] => w.slice(1).map((c, i) => [w[i]!, c]);
    let pairs = pairsOf(word);
    if (pairs.length === 0) return token + '</w>';
    for (;;) {
      let bigram: [string, string] | null = null;
      let best = Infinity;
      for (const p of pairs) {
        const r = this.ranks.get(`${p[0]}\u0000${p[1]}`) ?? Infinity;
        if (r < best) {
          best = r;
          bigram = p;
        }
      }
      if (!bigram) break;
      const [first, second] = bigram;
      const next: string[] = [];
      let i = 0;
      while (i < word.length) {
        const j = word.indexOf(first, i);
        if (j < 0) {
          next.push(...word.slice(i));
          break;
        }
        next.push(...word.slice(i, j));
        i = j;
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i]!);
          i += 1;
        }
      }
      word = next;
      if (word.length === 1) break;
      pairs = pairsOf(word);
    }
    const out = word.join(' ');
    this.cache.set(token, out);
    return out;
  }

  encode(text: string): number[] {
    const cleaned = text
      .normalize('NFC')
      .replace(new RegExp(`[${ReferenceTokenizer.PY_WS}]+`, 'gu'), ' ')
      .trim()
      .toLowerCase();
    const ids: number[] = [];
    for (const token of cleaned.match(this.pat) ?? []) {
      const mapped = Array.from(new TextEncoder().encode(token), (b) => this.byteEncoder.get(b)!).join('');
      for (const piece of this.bpe(mapped).split(' ')) ids.push(this.encoder.get(piece)!);
    }
    return ids;
  }

  /** clip.tokenize(text, truncate=True) without the zero padding. */
  tokenize(text: string, contextLength = 77): number[] {
    let tokens = [this.encoder.get('<|startoftext|>')!, ...this.encode(text), this.encoder.get('<|endoftext|>')!];
    if (tokens.length > contextLength) {
      tokens = tokens.slice(0, contextLength);
      tokens[contextLength - 1] = this.encoder.get('<|endoftext|>')!;
    }
    return tokens;
  }
}

/** A few hundred varied captions, deterministic. */
function captions(): string[] {
  const fixed = [
    'a photo of a cat',
    'A Photo Of A CAT',
    '   leading and trailing   spaces   ',
    'tabs\tand\nnewlines\r\nand\u3000ideographic\u00a0spaces\u0085NEL',
    "don't stop: it's what we'll do, they've said; I'm sure you'd agree",
    "rock'n'roll isn't 'quoted' \u2019curly\u2019",
    'Ünïcödé Straße café naïve résumé Ærøskøbing',
    'cafe\u0301 decomposed accents (NFC makes them one)',
    '東京タワーの夜景 写真',
    '서울의 밤 풍경',
    'صورة قطة على الأريكة',
    'кошка сидит на диване',
    'emoji 🙂😀 family 👨‍👩‍👧‍👦 flags 🇫🇷🇩🇪 skin 👍🏽 heart ❤️',
    '!!!??? ... --- ***  ### @@@ $$$ %%% ^^^ &&& ((( ))) ___ +++ === {{{ }}} [[[ ]]] ||| \\\\ ::: ;;; """ <<< >>>',
    'numbers 1234567890 3.14159 1,000,000 2024-05-01 ½ ² ٣ ४',
    'https://example.com/path?query=1&x=y#frag',
    'email me at someone@example.org #hashtag @mention',
    '<b>bold</b> <i>italic</i> &amp; &lt;entities&gt; stay as text',
    '<|startoftext|> inside text <|endoftext|>',
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    'supercalifragilisticexpialidocious antidisestablishmentarianism',
    'x',
    '',
    '    ',
    'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. '.repeat(4),
    '🙂'.repeat(100),
    'word '.repeat(120),
    'ﬁ ligature ﬀ Ⅻ ℌ ＦＵＬＬＷＩＤＴＨ',
    'İstanbul ΣΊΣΥΦΟΣ ǅemal',
    'zero\u200bwidth\u200djoiner\ufeffbom',
  ];
  const words = [
    'red', 'Blue', 'GREEN', 'the', 'of', 'a', 'in', 'photo', 'picture', 'painting', 'dog', 'cat', 'Sunset', 'beach',
    'mountain', 'city', 'night', 'vintage', 'poster', 'logo', 'HD', '4K', '1080p', 'wallpaper', 'über', 'naïve', '北京', 'москва',
    '🙂', '🔥', '—', '–', '…', '"', "'", '(', ')', '!', '?', ',', '.', ':', ';', '&', '/', '-', '_', '#', '2', '19', '2023',
    "it's", "can't", 'x-ray', 'e-mail', 'T-shirt', 'co-op', "O'Brien", 'U.S.A.', 'Mr.', 'Ph.D', 'iPhone', 'McDonald',
  ];
  let state = 12345;
  const rand = (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
  const generated: string[] = [];
  for (let i = 0; i < 300; i++) {
    const len = 1 + rand(i % 10 === 0 ? 90 : 14);
    const parts: string[] = [];
    for (let j = 0; j < len; j++) parts.push(words[rand(words.length)]!);
    generated.push(parts.join(rand(5) === 0 ? '' : rand(7) === 0 ? '  ' : ' '));
  }
  return [...fixed, ...generated];
}

const tokenizerPath = sharedData('clip', 'tokenizer.json');
const mergesPath = sharedData('clip', 'bpe_simple_vocab_16e6.txt.gz');

test('tokenizer: known ids of "a photo of a cat"', () => {
  const t = ClipTokenizer.fromFile(tokenizerPath);
  assert.deepEqual(t.encode('a photo of a cat'), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.equal(t.startId, 49406);
  assert.equal(t.endId, 49407);
  assert.equal(t.vocabSize, 49408);
});

test('tokenizer: tokenizer.json agrees with OpenAI simple_tokenizer on the original merges for 330 captions', () => {
  const ours = ClipTokenizer.fromFile(tokenizerPath);
  const reference = new ReferenceTokenizer(mergesPath);
  const all = captions();
  assert.ok(all.length >= 300);
  let truncated = 0;
  for (const caption of all) {
    const expected = reference.tokenize(caption);
    assert.deepEqual(ours.encode(caption), expected, `caption ${JSON.stringify(caption)}`);
    if (expected.length === 77) truncated++;
  }
  assert.ok(truncated >= 5, `the corpus should exercise truncation (${truncated} long captions)`);
});

test('tokenizer: the vocabulary shipped with cah (no model, no download) agrees with simple_tokenizer and tokenizer.json', () => {
  const shipped = bundledTokenizer();
  const fromJson = ClipTokenizer.fromFile(tokenizerPath);
  const reference = new ReferenceTokenizer(mergesPath);
  assert.equal(shipped.vocabSize, 49408);
  for (const caption of captions()) {
    const expected = reference.tokenize(caption);
    assert.deepEqual(shipped.encode(caption), expected, `caption ${JSON.stringify(caption)}`);
    assert.deepEqual(fromJson.encode(caption), expected);
  }
  assert.ok(statSync(bundledVocabPath()).size < 1_500_000, 'the shipped vocabulary stays small (the gzipped merges, not tokenizer.json)');
});

test('tokenizer: truncation keeps 77 tokens ending with the end token; batches pad with the end token', () => {
  const t = ClipTokenizer.fromFile(tokenizerPath);
  const long = t.encode('word '.repeat(200));
  assert.equal(long.length, 77);
  assert.equal(long[0], 49406);
  assert.equal(long[76], 49407);
  assert.ok(long.slice(1, 76).every((id) => id !== 49407));

  const batch = t.encodeBatch(['a photo of a cat', 'word '.repeat(200)]);
  assert.equal(batch.contextLength, 77);
  assert.equal(batch.inputIds.length, 2 * 77);
  assert.deepEqual(Array.from(batch.inputIds.slice(0, 9), Number), [49406, 320, 1125, 539, 320, 2368, 49407, 49407, 49407]);
  assert.deepEqual(Array.from(batch.attentionMask.slice(0, 9), Number), [1, 1, 1, 1, 1, 1, 1, 0, 0]);
  assert.equal(Array.from(batch.attentionMask.slice(77), Number).reduce((a, b) => a + b, 0), 77);
});

test('tokenizer: rejects a tokenizer.json that is not BPE, naming the problem', () => {
  assert.throws(() => new ClipTokenizer({ model: { type: 'WordPiece', vocab: {}, merges: [] } }), /expected a BPE model/);
  assert.throws(() => new ClipTokenizer({ model: { vocab: { a: 0 }, merges: [] } }), /no <\|startoftext\|> token/);
});

test('synthetic tokenizer: listed words are single tokens whatever the merge order; any text still tokenizes', () => {
  const words = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'reed', 'greenery'];
  const synth = buildSyntheticTokenizer(words);
  const t = new ClipTokenizer(synth.json);
  for (const w of words) {
    assert.deepEqual(t.encode(w), [synth.startId, synth.wordIds.get(w)!, synth.endId], w);
    assert.deepEqual(t.encode(`A ${w.toUpperCase()} square.`).filter((id) => id === synth.wordIds.get(w)), [synth.wordIds.get(w)], w);
  }
  assert.equal(new Set(synth.wordIds.values()).size, words.length);
  const other = t.encode('reddish 🙂 «autre» text');
  assert.ok(other.length > 5);
  assert.ok(!other.includes(synth.wordIds.get('red')!), 'a longer word is not the colour word');
  assert.equal(synth.endId, synth.vocabSize - 1);
  const fixed = buildSyntheticTokenizer([], { vocabSize: 49408 });
  assert.equal(fixed.startId, 49406);
  assert.equal(fixed.endId, 49407);
});
