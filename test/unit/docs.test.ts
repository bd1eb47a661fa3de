import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadLimitsSchema, loadServiceSchema } from '../../src/config/validate.js';
import { handledSignals } from '../../src/daemon/signals.js';
import { ExitCode } from '../../src/model/errors.js';
import { logEvents } from '../../src/log/events.js';
import { buildHandlerEnv } from '../../src/spawn/env.js';
import { cleanEnv, cli, root } from '../helpers/daemon.js';

const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The lines of the README section under `heading`, up to the next heading of any level. */
function section(heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  if (start === -1) throw new Error(`README has no section ${heading}`);
  const rest = readme.slice(start + heading.length + 2);
  const end = rest.search(/\n#{1,6} /);
  return end === -1 ? rest : rest.slice(0, end);
}

/** Every backticked name in the first column of the section's tables. */
function firstColumnNames(heading: string): string[] {
  const names: string[] = [];
  for (const line of section(heading).split('\n')) {
    const cell = /^\| ((?:[^|\\]|\\.)+) \|/.exec(line)?.[1];
    if (cell === undefined) continue;
    for (const m of cell.matchAll(/`([^`]+)`/g)) names.push(m[1] ?? '');
  }
  return names;
}

const sorted = (list: Iterable<string>): string[] => [...new Set(list)].sort();

t.test('every log event is in the README and every README event exists', async (t) => {
  t.same(sorted(firstColumnNames('## Logs')), sorted(Object.keys(logEvents)));
});

t.test('every exit code is in the README and no other', async (t) => {
  const documented = section('## Exit codes')
    .split('\n')
    .map((line) => /^\|\s*(\d+)\s*\|/.exec(line)?.[1])
    .filter((code): code is string => code !== undefined);
  t.same(sorted(documented), sorted(Object.values(ExitCode).map(String)));
});

t.test('every service file key is in the README and no other', async (t) => {
  const schema = loadServiceSchema() as {
    properties: Record<string, { properties?: Record<string, unknown> }>;
  };
  const keys: string[] = [];
  for (const [key, sub] of Object.entries(schema.properties)) {
    if (sub.properties === undefined) keys.push(key);
    else for (const inner of Object.keys(sub.properties)) keys.push(`${key}.${inner}`);
  }
  t.same(sorted(firstColumnNames('## Service files')), sorted(keys));
});

t.test('every limits and access key is in the README and no other', async (t) => {
  const schema = loadLimitsSchema() as {
    definitions: Record<string, { properties?: Record<string, unknown> }>;
  };
  const keys = ['limits', 'access'].flatMap((d) =>
    Object.keys(schema.definitions[d]?.properties ?? {}).map((k) => `${d}.${k}`),
  );
  t.ok(keys.length > 10);
  t.same(
    sorted(firstColumnNames('## Limits and access').filter((n) => /^(limits|access)\./.test(n))),
    sorted(keys),
  );
});

t.test('every handler variable is in the README and no other', async (t) => {
  const service = { name: 's', baseEnv: { PATH: '/bin', HOME: '/', USER: 'u', LOGNAME: 'u' } };
  const tcp = buildHandlerEnv({
    service,
    peer: {
      kind: 'tcp',
      localAddress: '127.0.0.1',
      localPort: 1,
      remoteAddress: '127.0.0.1',
      remotePort: 2,
    },
    connectionId: '1',
    sourceConnections: 1,
  });
  const ipc = buildHandlerEnv({
    service,
    peer: { kind: 'unix', localPath: '/x', pid: 1, uid: 2, gid: 3 },
    connectionId: '1',
    sourceConnections: 1,
  });
  const names = [...tcp, ...ipc].map((entry) => entry.slice(0, entry.indexOf('=')));
  t.same(sorted(firstColumnNames('## Handler contract')), sorted(names));
});

t.test('every handled signal is in the README and no other', async (t) => {
  t.same(sorted(firstColumnNames('## Signals')), sorted(handledSignals));
});

t.test('every CLI command is in the README and no other', async (t) => {
  const help = spawnSync(
    '/usr/bin/env',
    [
      '-i',
      ...Object.entries(cleanEnv()).map(([k, v]) => `${k}=${v}`),
      process.execPath,
      cli,
      '--help',
    ],
    {
      encoding: 'utf8',
    },
  );
  const commands = [...help.stdout.matchAll(/^ {2}socketeer (\S+)/gm)].map((m) => m[1] ?? '');
  t.ok(commands.length >= 2, 'help lists the commands');
  const documented = firstColumnNames('## Commands')
    .map((cell) => /^socketeer (\w[\w-]*)/.exec(cell)?.[1])
    .filter((c): c is string => c !== undefined);
  t.same(sorted(documented), sorted(commands));
});
