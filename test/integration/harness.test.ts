import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';
import { HandlerTracker, isAlive, withDeadline } from '../helpers/daemon.js';

/**
 * What tests skip without, each a reason when it is missing. On a developer's machine the
 * tests that need it skip; in CI (.ci/run sets CI=true and installs all of it) a missing one
 * is a failure here, so that a broken addon build or package cannot turn tests into skips.
 */
const prerequisites: [string, () => string | null][] = [
  ['the native addon', () => (loadNativeAddon() === null ? 'not built' : null)],
  ['systemd-escape', () => (existsSync('/usr/bin/systemd-escape') ? null : 'not installed')],
  ['python3', () => (spawnSync('python3', ['-c', '']).status === 0 ? null : 'not installed')],
  ['setpriv', () => (spawnSync('setpriv', ['--version']).status === 0 ? null : 'not installed')],
  ['a static /bin/busybox', () => (isStaticElf('/bin/busybox') ? null : 'missing or dynamic')],
];

function isStaticElf(file: string): boolean {
  if (!existsSync(file)) return false;
  const elf = readFileSync(file);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false; // 64-bit ELF only
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const [size, count] = [elf.readUInt16LE(0x36), elf.readUInt16LE(0x38)];
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(phoff + i * size) === 3) return false;
  return true; // no PT_INTERP
}

const isCi = process.env.CI === 'true';

for (const [name, check] of prerequisites) {
  const missing = check();
  t.test(
    `${name} is there`,
    { skip: missing !== null && !isCi ? `${name}: ${missing} (tests that need it skip)` : false },
    async (t) => {
      t.equal(missing, null, `${name} (required in CI)`);
    },
  );
}

t.test('the teardown check finds a handler left alive, by pid, group or marker', async (t) => {
  const tracker = new HandlerTracker();
  tracker.startedAfter(process.pid);
  const env = { SOCKETEER_SERVICE: 'svc', SOCKETEER_INSTANCE: '1-2-3', PATH: '/usr/bin:/bin' };
  // A handler leading its own group, with a child in that group, and a stranger in a session
  // of its own that carries the handler's marker (as a daemonised grandchild would).
  // The stranger prints its pid itself, once setsid has run (echo "$!" could come first).
  const stranger = `setsid sh -c 'echo "$$"; exec sleep 300'`;
  const handler = spawn('/bin/sh', ['-c', `sleep 300 & ${stranger} & wait`], {
    detached: true,
    env,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const handlerPid = handler.pid ?? -1;
  t.teardown(() => {
    for (const pid of tracker.leftovers().map((p) => p.pid)) process.kill(pid, 'SIGKILL');
  });
  const escaped = Number(
    await withDeadline(
      new Promise<string>((resolve) =>
        handler.stdout.once('data', (c: Buffer) => resolve(c.toString())),
      ),
      30000,
      'the handler to start its children',
    ),
  );
  const untracked = new HandlerTracker();
  untracked.startedAfter(process.pid);
  t.same(untracked.leftovers(), [], 'nothing is blamed before a record names it');
  tracker.note({ event: 'accept', level: 'info', service: 'svc', conn: '1-2-3', pid: handlerPid });
  const left = tracker.leftovers();
  t.equal(left.length, 3, 'the handler and its two children');
  t.ok(left.some((p) => p.pid === handlerPid));
  t.ok(left.some((p) => p.pid === escaped && p.sid === escaped));
  await t.rejects(tracker.assertNoneLeft(200), {
    message: /^handler processes left alive after the daemon stopped: \d+ \(\w+\)/,
  });
  await tracker.assertNoneLeft(30000);
  t.notOk(isAlive(escaped), 'the escaped one was killed too');
  t.notOk(isAlive(handlerPid));
});
