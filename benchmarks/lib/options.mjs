// Bench options from argv (`npm run bench -- --duration 3`) or the environment (BENCH_DURATION=3).
import { parseArgs } from 'node:util';

export const serverIds = [
  'null-server',
  'node-spawn',
  'socketeer',
  'xinetd',
  'tcpserver',
  'systemd-socket-activate',
];

const usage = `usage: node benchmarks/run.mjs [options]   (each option also as an env variable)
  --duration S        measured seconds per cell              BENCH_DURATION     (5)
  --warmup S          warm-up seconds before each cell       BENCH_WARMUP       (1)
  --concurrency LIST  connections in flight, e.g. 1,8,64     BENCH_CONCURRENCY  (1,8,64)
  --servers LIST      any of ${serverIds.join(',')}
                                                             BENCH_SERVERS      (all)
  --spawner LIST      run socketeer once per spawner, passing --spawner X (auto,native,portable);
                      unset: socketeer runs once without the flag      BENCH_SPAWNER
  --timeout S         per-connection timeout in the loadgen  BENCH_TIMEOUT      (10)
  --help`;

/** Splits a comma list, dropping blanks. */
function splitList(text) {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function parseSeconds(name, text, { allowZero }) {
  const value = Number(text);
  if (Number.isFinite(value) && (value > 0 || (allowZero && value === 0))) return { value };
  return { error: `${name}: not a ${allowZero ? 'non-negative' : 'positive'} number of seconds` };
}

/**
 * Reads the options; returns { options } or { error } (a usage problem) or { help }.
 * Precedence: argv over env over the defaults.
 */
export function readOptions(argv, env) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        concurrency: { type: 'string' },
        servers: { type: 'string' },
        spawner: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (error) {
    return { error: `${error.message}\n${usage}` };
  }
  if (parsed.help === true) return { help: usage };
  const pick = (key, envKey, fallback) => parsed[key] ?? env[envKey] ?? fallback;

  const numbers = {};
  for (const [key, envKey, fallback] of [
    ['duration', 'BENCH_DURATION', '5'],
    ['warmup', 'BENCH_WARMUP', '1'],
    ['timeout', 'BENCH_TIMEOUT', '10'],
  ]) {
    const result = parseSeconds(`--${key}`, pick(key, envKey, fallback), {
      allowZero: key === 'warmup',
    });
    if (result.error !== undefined) return { error: result.error };
    numbers[key] = result.value;
  }
  const concurrencies = splitList(pick('concurrency', 'BENCH_CONCURRENCY', '1,8,64')).map(Number);
  if (concurrencies.length === 0 || concurrencies.some((c) => !Number.isInteger(c) || c < 1)) {
    return { error: '--concurrency: expected a list of positive integers, e.g. 1,8,64' };
  }
  const servers = splitList(pick('servers', 'BENCH_SERVERS', serverIds.join(',')));
  const unknown = servers.filter((id) => !serverIds.includes(id));
  if (servers.length === 0 || unknown.length > 0) {
    return { error: `--servers: unknown ${unknown.join(',')}; known: ${serverIds.join(',')}` };
  }
  const spawners = splitList(pick('spawner', 'BENCH_SPAWNER', ''));
  const badSpawner = spawners.find((s) => !['auto', 'native', 'portable'].includes(s));
  if (badSpawner !== undefined) {
    return { error: `--spawner: ${badSpawner} is not one of auto, native, portable` };
  }
  return {
    options: {
      ...numbers,
      concurrencies,
      servers: serverIds.filter((id) => servers.includes(id)),
      spawners,
    },
  };
}
