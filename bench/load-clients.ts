import { simulatedWorker, type LoadOptions } from './load.js';

/**
 * Simulated workers of `npm run bench -- load`, in their own process: argv is the coordinator
 * address, the load options, the first worker's index and how many; prints {kept, leaseMs} as JSON.
 */
const [address, json, first, count] = process.argv.slice(2);
const opts = JSON.parse(json!) as LoadOptions;
const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(opts.pairBytes - 3, 7)]);
const leaseMs: number[] = [];
const kept = await Promise.all(Array.from({ length: Number(count) }, (_, i) => simulatedWorker(address!, Number(first) + i, opts, jpeg, leaseMs)));
process.stdout.write(JSON.stringify({ kept: kept.reduce((a, b) => a + b, 0), leaseMs }));
process.exit(0);
