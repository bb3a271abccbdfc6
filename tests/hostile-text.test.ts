import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runExtract } from '../src/warc/extract-command.js';
import { writeWatFile } from '../src/warc/wat-writer.js';
import { oneLine } from '../src/text/sanitize.js';
import { oneLine as dashboardLine } from '../src/dashboard/format.js';
import { HOSTILE_ALT_TEXTS, TERMINAL_UNSAFE } from './fixtures/hostile/text.js';

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function hostileWat(dir: string): Promise<string> {
  const path = join(dir, 'hostile.wat');
  await writeWatFile(
    path,
    [
      {
        url: 'http://evil.test/page\tFORGED-URL\tFORGED-CAPTION',
        images: HOSTILE_ALT_TEXTS.map((alt, i) => ({ src: `/img${i}.jpg`, alt })),
        links: [{ url: 'https://creativecommons.org/licenses/by/4.0/\tforged\nhttp://forged.test/x.jpg\tforged row\tx\t-', rel: 'license' }],
      },
    ],
    { gzip: false },
  );
  return path;
}

test('corpus/text: extract TSV gains no forged row or column, and no escape or bidi control reaches the terminal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-hostile-text-'));
  try {
    const path = await hostileWat(dir);
    const out = collect();
    const err = collect();
    const counts = await runExtract(path, { json: false, minCaptionLength: 1, maxCaptionLength: 256 }, out.stream, err.stream);
    const lines = out.text().split('\n').filter((l) => l !== '');
    assert.equal(lines.length, counts.candidates, 'one line per candidate');
    assert.equal(counts.candidates, HOSTILE_ALT_TEXTS.length);
    for (const line of lines) {
      assert.equal(line.split('\t').length, 4, `4 columns: ${JSON.stringify(line)}`);
      assert.doesNotMatch(line, TERMINAL_UNSAFE, JSON.stringify(line));
    }
    assert.doesNotMatch(err.text(), TERMINAL_UNSAFE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corpus/text: extract --json keeps every value exactly, written as terminal-safe JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-hostile-text-'));
  try {
    const path = await hostileWat(dir);
    const out = collect();
    await runExtract(path, { json: true, minCaptionLength: 1, maxCaptionLength: 256 }, out.stream, collect().stream);
    const lines = out.text().split('\n').filter((l) => l !== '');
    assert.equal(lines.length, HOSTILE_ALT_TEXTS.length);
    const captions = lines.map((l) => (JSON.parse(l) as { caption: string }).caption);
    assert.ok(captions.some((c) => c.includes('\u202e')), 'the bidi override is kept in the data');
    for (const line of lines) assert.doesNotMatch(line, TERMINAL_UNSAFE, JSON.stringify(line));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corpus/text: one sanitizer for text views; the dashboard uses it', () => {
  for (const text of HOSTILE_ALT_TEXTS) {
    for (const clean of [oneLine(text), dashboardLine(text)]) {
      assert.doesNotMatch(clean, TERMINAL_UNSAFE, JSON.stringify(clean));
      assert.doesNotMatch(clean, /\[2J|\]0;|\]8;/, `no escape residue: ${JSON.stringify(clean)}`);
    }
  }
  assert.equal(oneLine('a\tb\nc'), 'a b c');
});
