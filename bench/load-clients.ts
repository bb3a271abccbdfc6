import { simulatedWorker, type LoadOptions } from './load.js';

/**
 * The simulated workers of `npm run bench -- load`, in their own process: argv is the coordinator
 * address and the load options; prints {kept, leaseMs} as JSON.
 */
const [address, json] = process.argv.slice(2);
const opts = JSON.parse(json!) as LoadOptions;
const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(opts.pairBytes - 3, 7)]);
const leaseMs: number[] = [];
const kept = await Promise.all(Array.from({ length: opts.workers }, (_, i) => simulatedWorker(address!, i, opts, jpeg, leaseMs)));
process.stdout.write(JSON.stringify({ kept: kept.reduce((a, b) => a + b, 0), leaseMs }));
process.exit(0);
