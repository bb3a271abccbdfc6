import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import sharp from 'sharp';
import { MAX_EXIF_CHARS } from '../src/output/sample.js';
import { storedExif } from '../src/coordinator/sample-check.js';
import { exifJson } from '../src/worker/exif.js';
import { DEFAULT_RESIZE_OPTIONS, resizeImage } from '../src/worker/resize.js';

async function exifOf(tags: Record<string, Record<string, string>>): Promise<Buffer> {
  const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#08f' } }).withExif(tags).jpeg().toBuffer();
  return (await sharp(jpeg).metadata()).exif!;
}

test('exif: tags keyed as img2dataset\'s column ("Image Make", "EXIF …", "GPS …"), text values, binary tags and IFD pointers left out', async () => {
  const json = exifJson(await exifOf({ IFD0: { Make: 'Canon', Model: 'EOS 5D' }, IFD2: { ExposureTime: '1/100' }, IFD3: { GPSLatitudeRef: 'N' } }));
  const tags = JSON.parse(json!) as Record<string, string>;
  assert.equal(tags['Image Make'], 'Canon');
  assert.equal(tags['Image Model'], 'EOS 5D');
  assert.equal(tags['EXIF ExposureTime'], '0.01');
  assert.equal(tags['GPS GPSLatitudeRef'], 'N');
  assert.equal(tags['EXIF ExifVersion'], undefined, 'binary');
  assert.equal(tags['Image ExifTag'], undefined, 'a pointer, not a tag');
  assert.ok(Object.values(tags).every((v) => typeof v === 'string'));
});

test('exif: hostile values are put on one line and cut; the whole stays under the bound; none or garbage is null', async () => {
  const tags = JSON.parse(exifJson(await exifOf({ IFD0: { Make: `\x1b]0;pwned\x07Evil\r\nRow\u202e${'x'.repeat(5000)}`, Artist: 'a'.repeat(3000), Copyright: 'c'.repeat(3000), ImageDescription: 'd'.repeat(3000) } }))!) as Record<string, string>;
  assert.ok(tags['Image Make']!.startsWith('Evil Row'), tags['Image Make']!.slice(0, 20));
  assert.ok(!/[\x00-\x1f\u202e]/.test(tags['Image Make']!));
  assert.ok(tags['Image Make']!.length <= 512);
  assert.equal(exifJson(undefined), null);
  assert.equal(exifJson(Buffer.alloc(0)), null);
  assert.equal(exifJson(Buffer.from('Exif\0\0not a tiff header at all')), null);
  const header = Buffer.from('Exif\0\0II*\0\x08\0\0\0', 'latin1');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
      const out = exifJson(Buffer.concat([header, Buffer.from(bytes)]));
      if (out === null) return true;
      assert.ok(out.length <= MAX_EXIF_CHARS, `${out.length}`);
      assert.equal(typeof JSON.parse(out), 'object');
      return true;
    }),
    { numRuns: 2000, seed: 7 },
  );
});

test('exif: the worker reads it only when the run asks; the coordinator keeps a worker\'s value only as a bounded JSON object of text', async () => {
  const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#0a0' } }).withExif({ IFD0: { Make: 'Nikon', Model: 'D90' } }).jpeg().toBuffer();
  const asked = await resizeImage(jpeg, { ...DEFAULT_RESIZE_OPTIONS, extractExif: true });
  assert.ok(asked.ok);
  assert.equal((JSON.parse(asked.exif!) as Record<string, string>)['Image Model'], 'D90');
  const notAsked = await resizeImage(jpeg, DEFAULT_RESIZE_OPTIONS);
  assert.ok(notAsked.ok);
  assert.equal(notAsked.exif, null);

  assert.equal(storedExif(asked.exif!), asked.exif);
  assert.equal(storedExif(''), null);
  assert.equal(storedExif('not json'), null);
  assert.equal(storedExif('[1,2]'), null);
  assert.equal(storedExif('{"Image Make": 5}'), null, 'values are text');
  assert.equal(storedExif(JSON.stringify({ 'Image Make': 'x'.repeat(MAX_EXIF_CHARS) })), null, 'over the bound');
  assert.equal(storedExif(JSON.stringify({ 'Image\u001b[2J Make': 'a\r\nb' })), '{"Image Make":"a b"}');
});
