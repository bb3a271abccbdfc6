import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { settingsFromFlags, type GpuOptions } from '../src/app/gpu.js';
import { addCoordinatorOptions } from '../src/cli/gpu.js';
import { parseScorerFlag } from '../src/app/filter.js';

function parse(args: string[]): GpuOptions {
  const cmd = addCoordinatorOptions(new Command('gpu').exitOverride().configureOutput({ writeErr: () => undefined }));
  cmd.parse(args, { from: 'user' });
  return cmd.opts<GpuOptions>();
}

test('cah gpu flags reach the workers\' settings: --decode-timeout-s, --extract-exif (defaults: 10 s, off)', () => {
  const defaults = settingsFromFlags(parse([])).worker;
  assert.equal(defaults.decodeTimeoutS, 10);
  assert.equal(defaults.extractExif, false);
  const set = settingsFromFlags(parse(['--decode-timeout-s', '3', '--extract-exif'])).worker;
  assert.equal(set.decodeTimeoutS, 3);
  assert.equal(set.extractExif, true);
  assert.throws(() => parse(['--decode-timeout-s', '0']));
});

test('--scorer names that are dataset columns are refused (they would shadow the column in the tar .json)', () => {
  for (const name of ['exif', 'similarity', 'key', 'language']) {
    assert.throws(() => parseScorerFlag(`${name}=./model.onnx`), /the dataset has a column of that name/);
  }
  assert.throws(() => parseScorerFlag('watermark=./no-such-model.onnx'), /no such model file/);
});
