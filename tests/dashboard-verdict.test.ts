import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bottleneckVerdict } from '../src/coordinator/verdict.js';

test('a full queue and a busy filter: filter-bound', () => {
  assert.equal(bottleneckVerdict(256, 256, 0), 'filter-bound');
  assert.equal(bottleneckVerdict(200, 256, 0.1), 'filter-bound');
});

test('an empty queue and a waiting filter: workers-bound', () => {
  assert.equal(bottleneckVerdict(0, 256, 0.6), 'workers-bound');
  assert.equal(bottleneckVerdict(30, 256, 0.35), 'workers-bound');
});

test('a filter idle the whole interval with nothing queued: idle', () => {
  assert.equal(bottleneckVerdict(0, 256, 1), 'idle');
  assert.equal(bottleneckVerdict(0, 0, 1), 'idle');
});

test('anything between: balanced', () => {
  assert.equal(bottleneckVerdict(128, 256, 0.1), 'balanced', 'half full');
  assert.equal(bottleneckVerdict(250, 256, 0.5), 'balanced', 'full but the filter often idle');
  assert.equal(bottleneckVerdict(5, 256, 0.05), 'balanced', 'empty but the filter busy');
});

test('odd inputs do not throw and are read sensibly', () => {
  assert.equal(bottleneckVerdict(10, 0, 0.5), 'workers-bound', 'no queue capacity counts as an empty queue');
  assert.equal(bottleneckVerdict(300, 256, -1), 'filter-bound', 'over capacity and a negative idle fraction clamp');
  assert.equal(bottleneckVerdict(0, 256, Number.NaN), 'balanced');
});
