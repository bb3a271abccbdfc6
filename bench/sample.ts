import { newSample, sampleToWire } from '../src/output/sample.js';
import type { WireSample } from '../src/wire/contract.js';

/** What a 2-vCPU worker downloads and resizes at most (README, "Real links"): the pace of the benches' simulated workers. */
export const WORKER_PAIRS_PER_SEC = 200;

/** Sample number `n` as a worker sends it: a success with `jpeg`, through the one sample table (src/output/sample.ts). */
export function benchSample(n: number, host: string, jpeg: Buffer): WireSample {
  return sampleToWire(
    newSample({
      key: n.toString(16).padStart(16, '0'),
      url: `http://${host}/${n}.jpg`,
      caption: `a benchmark caption number ${n}`,
      pageUrl: `http://${host}/`,
      status: 'success',
      width: 256,
      height: 256,
      originalWidth: 500,
      originalHeight: 400,
      jpeg,
      downloadMs: 10,
      resizeMs: 5,
      downloadAttempts: 1,
    }),
  );
}
