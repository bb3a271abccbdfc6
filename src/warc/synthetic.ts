import type { WatImage, WatLink, WatPage } from './wat-writer.js';

/** Deterministic 32-bit PRNG (mulberry32): the same seed gives the same pages. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ber', 'don', 'fel', 'gar', 'hin', 'jus', 'kor', 'lan', 'mor', 'nix', 'pel', 'quo', 'ras', 'sel', 'tor', 'ul', 'ven', 'wil', 'xan', 'yor', 'zel', 'a', 'e', 'i', 'o', 'u'];
const TLDS = ['com', 'org', 'net', 'de', 'fr', 'co.uk', 'es', 'it', 'nl', 'info'];
const IMAGE_EXTENSIONS = ['jpg', 'jpg', 'jpeg', 'png', 'png', 'gif', 'webp'];
const LICENSES = ['https://creativecommons.org/licenses/by/4.0/', 'http://creativecommons.org/licenses/by-sa/3.0/', 'https://creativecommons.org/publicdomain/zero/1.0/'];

export interface SyntheticOptions {
  seed?: number;
  /** Share of pages that have `<img>` links (default 0.4). */
  imagePageShare?: number;
}

/**
 * Realistic WAT pages for benchmarks and load tests: 2–10 KB of JSON per record, many anchors per
 * page, images (mostly with alt text, some relative, a few data: URLs) on a share of the pages,
 * head links, now and then a Creative Commons license link.
 */
export function* syntheticPages(count: number, opts: SyntheticOptions = {}): Generator<WatPage> {
  const random = seededRandom(opts.seed ?? 1);
  const imageShare = opts.imagePageShare ?? 0.4;
  const int = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const lexicon = Array.from({ length: 4000 }, () => Array.from({ length: int(1, 4) }, () => pick(SYLLABLES)).join(''));
  const word = (): string => lexicon[Math.floor(random() ** 2 * lexicon.length)]!;
  const words = (min: number, max: number): string => Array.from({ length: int(min, max) }, word).join(' ');
  const slug = (): string => Array.from({ length: int(1, 4) }, word).join('-');
  const hosts = Array.from({ length: 5000 }, () => `${random() < 0.6 ? 'www.' : ''}${word()}${word()}.${pick(TLDS)}`);

  for (let index = 0; index < count; index++) {
    const host = pick(hosts);
    const origin = `${random() < 0.7 ? 'https' : 'http'}://${host}`;
    const url = `${origin}/${slug()}/${slug()}${random() < 0.3 ? `?id=${int(1, 99999)}` : '.html'}`;
    const links: WatLink[] = [
      { url: `/static/${slug()}.css`, path: 'LINK@/href', rel: 'stylesheet' },
      { url: '/favicon.ico', path: 'LINK@/href', rel: 'icon' },
    ];
    if (random() < 0.5) links.push({ url, path: 'LINK@/href', rel: 'canonical' });
    for (let n = int(12, 70); n > 0; n--) {
      const roll = random();
      const target =
        roll < 0.5 ? `/${slug()}/${slug()}` : roll < 0.85 ? `${origin}/${slug()}?p=${int(1, 500)}` : `https://${pick(hosts)}/${slug()}`;
      links.push(random() < 0.8 ? { url: target, text: words(1, 6) } : { url: target });
    }
    if (random() < 0.05) links.push({ url: pick(LICENSES), rel: 'license', text: 'Creative Commons License' });
    const images: WatImage[] = [];
    if (random() < imageShare) {
      for (let n = int(1, 8); n > 0; n--) {
        const roll = random();
        const src =
          roll < 0.4
            ? `/images/${slug()}-${int(1, 9999)}.${pick(IMAGE_EXTENSIONS)}`
            : roll < 0.97
              ? `https://cdn.${host}/${slug()}/${int(100, 99999)}.${pick(IMAGE_EXTENSIONS)}`
              : 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
        const altRoll = random();
        images.push(altRoll < 0.15 ? { src } : altRoll < 0.25 ? { src, alt: word() } : { src, alt: words(2, 14) });
      }
    }
    yield { url, title: words(2, 9), links, images };
  }
}
