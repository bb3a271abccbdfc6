import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progressBar, sparkline } from '../src/dashboard/bars.js';
import { fit, formatBytes, formatCount, formatDuration, oneLine, truncate, truncateStart } from '../src/dashboard/format.js';
import { planLayout } from '../src/dashboard/layout.js';
import { fitLine, lineText, seg } from '../src/dashboard/views/line.js';

test('numbers, bytes and durations stay short', () => {
  assert.deepEqual([0, 999, 1000, 1234, 34_567, 99_960, 999_999, 1_234_567].map(formatCount), ['0', '999', '1.0k', '1.2k', '34.6k', '100k', '1.0M', '1.2M']);
  assert.deepEqual([512, 1500, 38_914_557_440].map(formatBytes), ['512 B', '1.5 kB', '38.9 GB']);
  assert.deepEqual([null, 4_400, 754_000, 11_040_000, 190_000_000].map(formatDuration), ['—', '4s', '12m34s', '3h04m', '2d04h']);
});

test('text is cut to width with an ellipsis, control characters never reach the terminal', () => {
  assert.equal(truncate('abcdef', 4), 'abc…');
  assert.equal(truncate('abc', 4), 'abc');
  assert.equal(truncateStart('/a/b/c/d', 5), '…/c/d');
  assert.equal(fit('ab', 4, 'right'), '  ab');
  assert.equal(oneLine('bad\n\x1b[2Jthing\t'), 'bad thing');
  const line = [seg('Shards ', 'title'), seg('12/100 finished')];
  assert.equal(lineText(fitLine(line, 10)), 'Shards 12…');
  assert.equal(lineText(fitLine(line, 40)), 'Shards 12/100 finished');
});

test('sparklines scale to their maximum and run to the right edge', () => {
  assert.equal(sparkline([0, 1, 2, 4, 8], 5), '▁▂▃▅█');
  assert.equal(sparkline([5, 5], 4), '  ██');
  assert.equal(sparkline([0, 0], 2), '▁▁');
  assert.equal(sparkline([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3), '▇██');
  assert.equal(progressBar(0.5, 10), '█████░░░░░');
  assert.equal(progressBar(2, 4), '████');
});

test('the layout leaves the last terminal row free and shares the rest', () => {
  const standard = planLayout(80, 24);
  assert.equal(standard.twoColumns, true);
  assert.equal(standard.leftWidth + standard.rightWidth + 2, 80);
  // header + shards|filter + throughput + actors + errors|output + footer = rows - 1
  assert.equal(1 + 5 + (1 + standard.throughputLines) + standard.actorLines + (1 + standard.errorRows) + 1, 23);
  assert.ok(standard.actorLines >= 8);
  const narrow = planLayout(60, 24);
  assert.equal(narrow.twoColumns, false);
  assert.equal(narrow.throughputLines, 0, 'sparklines give way to the actors first');
  const tiny = planLayout(50, 12);
  assert.equal(tiny.errorRows, 0);
  assert.equal(tiny.output, false);
  const tall = planLayout(160, 50);
  assert.equal(tall.spacing, true);
  assert.equal(tall.errorRows, 8, 'a tall terminal shows more errors');
  assert.equal(tall.throughputLines, 4, 'and one sparkline a line');
});
