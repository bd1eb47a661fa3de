// Imported first by main.ts, before yargs and the rest are loaded: V8's heap kept near what the
// daemon holds alive (about 11 MiB after start and after any number of connections), where its
// defaults size it for throughput. Measured on the bench's service (`stderr: "null"`,
// `--log-level warn`), 30,000 connections at c=8, runs alternated with the build before: RSS
// idle 81 -> 71 MiB and after the load 100-117 -> 76 MiB, CPU per connection and conn/s within
// the machine's noise (no loss). V8 reads these flags each time it sizes a space, so setting them
// at run time is enough (no node flags needed); a node given its own heap-sizing flags keeps them.
import { setFlagsFromString } from 'node:v8';

/** Each flag, its value, and the words of the node flags that would size the same thing. */
const settings: readonly (readonly [flag: string, value: number, unless: string])[] = [
  // the young generation (new space) stays at the size it starts with: doubling up to 16 MiB
  // per semi-space as start-up and then the per-connection path allocate was most of the RSS
  ['semi-space-growth-factor', 1, 'semi-space'],
  // a full collection when the old generation has grown by half (not up to 4x) since the last
  // one: what each connection leaves there is a few hundred bytes of garbage
  ['heap-growing-percent', 50, 'heap-growing'],
  // what start-up left behind is given back 2 s after the daemon goes quiet, not 8 s
  ['gc-memory-reducer-start-delay-ms', 2000, 'memory-reducer'],
];

const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ').replaceAll('_', '-');
for (const [flag, value, unless] of settings)
  if (!given.includes(unless)) setFlagsFromString(`--${flag}=${value}`);
