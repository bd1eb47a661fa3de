// Bench options from argv (`npm run bench -- --duration 3`) or the environment (BENCH_DURATION=3).
import { parseArgs } from 'node:util';

export const serverIds = [
  'null-server',
  'vfork',
  'node-spawn',
  'socketeer',
  'xinetd',
  'tcpserver',
  'systemd-socket-activate',
];

export const scenarioIds = ['spawn', 'refuse90', 'memory', 'scale', 'proxy'];

const usage = `usage: node benchmarks/run.mjs [options]   (each option also as an env variable)
  --scenario LIST     spawn: every connection served; refuse90: 9 of 10 sources refused
                      (by access, and for socketeer also by rate); memory: socketeer's RSS
                      idle and after --memory-connections connections at c=8; scale: start
                      and reload with 1 service and with --scale-services; proxy: 512 MiB
                      streams through socketeer's proxy, systemd-socket-proxyd and socat
                                            BENCH_SCENARIO (spawn,refuse90,memory,scale,proxy)
  --proxy-rounds N    proxy: rounds per cell, the best kept  BENCH_PROXY_ROUNDS (3)
  --memory-connections N  memory: connections before the loaded RSS is read
                                                             BENCH_MEMORY_CONNECTIONS (30000)
  --scale-services N  scale: the large configuration's services
                                                             BENCH_SCALE_SERVICES (1000)
  --scale-rounds N    scale: rounds (each starts both sizes afresh); medians shown
                                                             BENCH_SCALE_ROUNDS (5)
  --duration S        measured seconds per cell              BENCH_DURATION     (5)
  --warmup S          warm-up seconds before each cell       BENCH_WARMUP       (1)
  --concurrency LIST  spawn: connections in flight, e.g. 1,8,64
                                                             BENCH_CONCURRENCY  (1,8,64)
  --refuse-concurrency LIST  refuse90: connections in flight BENCH_REFUSE_CONCURRENCY (8)
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

/** A comma list of positive integers as { list }, or { error }. */
function parseConcurrencies(name, text) {
  const list = splitList(text).map(Number);
  if (list.length === 0 || list.some((c) => !Number.isInteger(c) || c < 1)) {
    return { error: `--${name}: expected a list of positive integers, e.g. 1,8,64` };
  }
  return { list };
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
        scenario: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        concurrency: { type: 'string' },
        'refuse-concurrency': { type: 'string' },
        servers: { type: 'string' },
        spawner: { type: 'string' },
        timeout: { type: 'string' },
        'proxy-rounds': { type: 'string' },
        'memory-connections': { type: 'string' },
        'scale-services': { type: 'string' },
        'scale-rounds': { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (error) {
    return { error: `${error.message}\n${usage}` };
  }
  if (parsed.help === true) return { help: usage };
  const pick = (key, envKey, fallback) => parsed[key] ?? env[envKey] ?? fallback;
  const numbers = readSeconds(pick);
  if (numbers.error !== undefined) return numbers;
  const lists = readLists(pick);
  if (lists.error !== undefined) return lists;
  const counts = {};
  for (const [key, envKey, fallback] of [
    ['proxy-rounds', 'BENCH_PROXY_ROUNDS', '3'],
    ['memory-connections', 'BENCH_MEMORY_CONNECTIONS', '30000'],
    ['scale-services', 'BENCH_SCALE_SERVICES', '1000'],
    ['scale-rounds', 'BENCH_SCALE_ROUNDS', '5'],
  ]) {
    const value = Number(pick(key, envKey, fallback));
    if (!Number.isInteger(value) || value < 1)
      return { error: `--${key}: expected a positive integer` };
    counts[key.replace(/-(.)/g, (_, c) => c.toUpperCase())] = value;
  }
  return { options: { scenarios: lists.scenarios, ...numbers, ...lists.rest, ...counts } };
}

/** --duration, --warmup and --timeout as numbers, or { error }. */
function readSeconds(pick) {
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
  return numbers;
}

/** A list option whose items must all be among `known`: { list } in `known`'s order, or { error }. */
function readKnown(name, text, known) {
  const items = splitList(text);
  const unknown = items.filter((id) => !known.includes(id));
  if (items.length === 0 || unknown.length > 0) {
    return { error: `--${name}: unknown ${unknown.join(',')}; known: ${known.join(',')}` };
  }
  return { list: known.filter((id) => items.includes(id)) };
}

/** The list options: { scenarios, rest: {concurrencies, ..., spawners} } or { error }. */
function readLists(pick) {
  const scenarios = readKnown(
    'scenario',
    pick('scenario', 'BENCH_SCENARIO', scenarioIds.join(',')),
    scenarioIds,
  );
  if (scenarios.error !== undefined) return scenarios;
  const concurrencies = parseConcurrencies(
    'concurrency',
    pick('concurrency', 'BENCH_CONCURRENCY', '1,8,64'),
  );
  if (concurrencies.error !== undefined) return concurrencies;
  const refuseConcurrencies = parseConcurrencies(
    'refuse-concurrency',
    pick('refuse-concurrency', 'BENCH_REFUSE_CONCURRENCY', '8'),
  );
  if (refuseConcurrencies.error !== undefined) return refuseConcurrencies;
  const servers = readKnown(
    'servers',
    pick('servers', 'BENCH_SERVERS', serverIds.join(',')),
    serverIds,
  );
  if (servers.error !== undefined) return servers;
  const spawners = splitList(pick('spawner', 'BENCH_SPAWNER', ''));
  const badSpawner = spawners.find((s) => !['auto', 'native', 'portable'].includes(s));
  if (badSpawner !== undefined) {
    return { error: `--spawner: ${badSpawner} is not one of auto, native, portable` };
  }
  const rest = {
    concurrencies: concurrencies.list,
    refuseConcurrencies: refuseConcurrencies.list,
    servers: servers.list,
    spawners,
  };
  return { scenarios: scenarios.list, rest };
}
