import { execFile, execFileSync, spawn as spawnChild } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import t, { type Test } from 'tap';
import { signalGroup } from '../../src/spawn/group-tree.js';

import {
  isNativeSpawnError,
  loadNativeAddon,
  probeNativeAddon,
  type NativeAddon,
  type NativeExitCallback,
} from '../../src/spawn/native-addon.js';
import { buildNativeOptions, createNativeSpawner } from '../../src/spawn/native-spawner.js';
import type { HandlerOutcome, SpawnedHandler, SpawnPlan } from '../../src/model/spawn.js';
import { basePlan } from '../helpers/spawn-plan.js';
import { readAll, within } from '../helpers/wait.js';

const addon = loadNativeAddon();
const isRoot = process.getuid?.() === 0;
const rootOnly = isRoot ? false : 'needs root (uid/gid drops, chroot, raised limits)';

const sh = (script: string, more: Partial<SpawnPlan> = {}): SpawnPlan => ({
  ...basePlan,
  file: '/bin/sh',
  argv: ['sh', '-c', script],
  ...more,
});

const socketFd = (socket: net.Socket): number =>
  (socket as unknown as { _handle: { fd: number } })._handle.fd;

/** Child processes of this process in Z state. */
function zombieChildren(): number[] {
  const zombies: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' && Number(ppid) === process.pid) zombies.push(Number(name));
  }
  return zombies;
}

/** Resolves once none of `pids` exists (a zombie still does), checking every 20 ms. */
async function untilGone(pids: number[]): Promise<void> {
  while (pids.some((pid) => fs.existsSync(`/proc/${pid}`))) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The fds of this process, once pending handle closes have run. */
async function listFds(): Promise<string[]> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  return fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return `${fd} ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return `${fd} (gone)`; // the directory handle readdirSync used
    }
  });
}

function isStaticElf(file: string): boolean {
  const elf = fs.readFileSync(file);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false; // 64-bit ELF only
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const [size, count] = [elf.readUInt16LE(0x36), elf.readUInt16LE(0x38)];
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(phoff + i * size) === 3) return false;
  return true; // no PT_INTERP
}

if (addon === null) {
  t.plan(0, `native addon not built: ${probeNativeAddon().reason}`);
} else {
  defineTests(addon);
}

function defineTests(addon: NativeAddon): void {
  const spawner = createNativeSpawner(addon);
  const server = net.createServer({ pauseOnConnect: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'socketeer-native-'));
  t.before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  t.teardown(() => {
    server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  let lastConnect: Promise<unknown> = Promise.resolve();
  /** A client and its accepted socket; serialised, so that the pairs never cross. */
  function connect(): Promise<{ client: net.Socket; accepted: net.Socket }> {
    const next = lastConnect.then(connectNow, connectNow);
    lastConnect = next;
    return next;
  }

  async function connectNow(): Promise<{ client: net.Socket; accepted: net.Socket }> {
    const accepting = once(server, 'connection') as Promise<[net.Socket]>;
    const { port } = server.address() as net.AddressInfo;
    const client = net.connect(port, '127.0.0.1');
    const [[accepted]] = await within(
      Promise.all([accepting, once(client, 'connect')]),
      5000,
      'accept',
    );
    return { client, accepted };
  }

  interface Run {
    handler: SpawnedHandler;
    output: string;
    outcome: HandlerOutcome;
  }

  /** Spawns with a fresh connection, drops the parent's copy, sends input, reads until EOF. */
  async function run(plan: SpawnPlan, input = ''): Promise<Run> {
    const { client, accepted } = await connect();
    const handler = spawner.spawn(plan, socketFd(accepted));
    accepted.destroy();
    const output = readAll(client);
    client.end(input);
    const outcome = await within(handler.outcome, 10_000, 'handler outcome');
    return { handler, output: await output, outcome };
  }

  const exited = (exitCode: number | null, signal: NodeJS.Signals | null = null) => ({
    kind: 'exit',
    exitCode,
    signal,
  });

  void t.test(
    'the socket is stdin and stdout; the client sees EOF when the handler exits',
    async (t) => {
      const { handler, output, outcome } = await run(basePlan, 'hello\nworld\n');
      t.equal(output, 'hello\nworld\n');
      t.same(outcome, exited(0));
      t.type(handler.pid, 'number');
      t.equal(handler.stderr, null);
    },
  );

  void t.test('fds 0..2 only, blocking, in a new session', async (t) => {
    const script =
      'echo fds $(ls /proc/self/fd); echo flags $(sed -n "s/^flags:\\s*//p" /proc/self/fdinfo/0);' +
      'echo session $(cut -d" " -f6 /proc/self/stat)';
    const { output, outcome, handler } = await run(sh(script));
    const lines = new Map(
      output
        .trim()
        .split('\n')
        .map((line) => [line.split(' ')[0], line]),
    );
    t.equal(lines.get('fds'), 'fds 0 1 2 3', 'nothing but stdio (and the dir fd of ls)');
    t.match(lines.get('flags'), /^flags [0-7]+$/);
    t.equal(parseInt(lines.get('flags')!.slice(6), 8) & 0o4000, 0, 'O_NONBLOCK cleared on fd 0');
    t.equal(lines.get('session'), `session ${handler.pid}`, 'session leader');
    t.same(outcome, exited(0));
  });

  void t.test('exit codes and signals', async (t) => {
    t.same((await run(sh('exit 7'))).outcome, exited(7));
    t.same((await run(sh('kill -TERM $$'))).outcome, exited(null, 'SIGTERM'));
    const { client, accepted } = await connect();
    const handler = spawner.spawn(
      { ...basePlan, file: '/bin/sleep', argv: ['sleep', '100'] },
      socketFd(accepted),
    );
    accepted.destroy();
    // spawn returns before the child's setsid: wait (with a deadline) until it leads its session
    const deadline = Date.now() + 5000;
    while (!leadsOwnSession(handler.pid!)) {
      if (Date.now() > deadline) throw new Error('the handler never led its own session');
      await new Promise((resolve) => setImmediate(resolve));
    }
    process.kill(-handler.pid!, 'SIGKILL'); // its own process group
    t.same(await within(handler.outcome, 5000, 'outcome'), exited(null, 'SIGKILL'));
    client.destroy();
  });

  void t.test('signalGroup right after spawn reaches every handler', async (t) => {
    // spawn returns before the child's setsid; the daemon's signalGroup falls back to kill(pid)
    const { client, accepted } = await connect();
    const sleeper = { ...basePlan, file: '/bin/sleep', argv: ['sleep', '100'] };
    const handlers = Array.from({ length: 100 }, () => spawner.spawn(sleeper, socketFd(accepted)));
    const reached = handlers.filter((h) => signalGroup(h.pid!, 'SIGKILL')).length;
    accepted.destroy();
    t.equal(reached, 100, 'every handler was signalled');
    const outcomes = await within(Promise.all(handlers.map((h) => h.outcome)), 10_000, 'outcomes');
    t.same(outcomes, Array(100).fill(exited(null, 'SIGKILL')));
    client.destroy();
  });

  void t.test('waitForSession false: a signal sent before the exec is not lost', async (t) => {
    const devNull = fs.openSync('/dev/null', 'r+');
    t.teardown(() => fs.closeSync(devNull));
    const options = {
      ...buildNativeOptions({ ...basePlan, file: '/bin/sleep', argv: ['sleep', '100'] }, devNull),
      waitForSession: false,
    };
    const ends = Array.from({ length: 50 }, () => {
      let onExit: NativeExitCallback = () => {};
      const end = new Promise<unknown[]>((resolve) => (onExit = (...args) => resolve(args)));
      const result = addon.spawn(options, onExit);
      if (isNativeSpawnError(result)) throw new Error(result.message);
      process.kill(result.pid, 'SIGTERM'); // its group may not exist yet: the fallback killers use
      return end;
    });
    const outcomes = await within(Promise.all(ends), 10_000, 'outcomes');
    t.same(outcomes, Array(50).fill([null, 'SIGTERM', null]));
    t.equal(addon.debugCounters().liveArenas, 0);
  });

  void t.test('exec and setup failures come back as spawn-failed, reaped', async (t) => {
    const notExecutable = path.join(tmp, 'not-executable');
    const garbage = path.join(tmp, 'garbage');
    fs.writeFileSync(notExecutable, '#!/bin/sh\n', { mode: 0o644 });
    fs.writeFileSync(garbage, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), { mode: 0o755 });
    const fdsBefore = await listFds();
    // 'child': the step fails in the child, which has a pid in clone mode (the default: spawn
    // returns before the exec) and none in vfork mode; 'options': refused before any clone.
    const cases: [SpawnPlan, string, string, 'child' | 'options'][] = [
      [
        { ...basePlan, file: '/nonexistent' },
        'ENOENT',
        'execve /nonexistent: no such file or directory',
        'child',
      ],
      [
        { ...basePlan, file: notExecutable },
        'EACCES',
        `execve ${notExecutable}: permission denied`,
        'child',
      ],
      [{ ...basePlan, file: garbage }, 'ENOEXEC', `execve ${garbage}: exec format error`, 'child'],
      [
        { ...basePlan, cwd: '/nonexistent' },
        'ENOENT',
        'chdir /nonexistent: no such file or directory',
        'child',
      ],
      [
        { ...basePlan, rlimits: [{ resource: 'nofile', soft: 10, hard: 5 }] },
        'EINVAL',
        'setrlimit nofile: invalid argument',
        'child',
      ],
    ];
    cases.push([
      { ...basePlan, argv: ['cat', 'a\0b'] },
      'EINVAL',
      'spawn /bin/cat: options.argv must be NUL-free',
      'options',
    ]);
    const hasPid = addon.debugCounters().mode === 'clone';
    for (const [plan, code, message, where] of cases) {
      const { handler, output, outcome } = await run({ ...plan, stderr: 'log' });
      t.same(outcome, { kind: 'spawn-failed', error: { code, message } }, code);
      if (where === 'child' && hasPid) {
        t.type(handler.pid, 'number', 'the child existed');
        t.ok(handler.stderr, 'its stderr pipe, at EOF now');
        handler.stderr?.destroy();
      } else {
        t.equal(handler.pid, null);
        t.equal(handler.stderr, null);
      }
      t.equal(output, '', 'client sees EOF');
      t.same(zombieChildren(), [], 'no zombie');
    }
    t.same(await listFds(), fdsBefore, 'no fd left open');
    t.equal(addon.debugCounters().liveArenas, 0, 'no arena left');
  });

  void t.test(
    'prepared spawns: fixed options once per plan shape, the env per spawn',
    async (t) => {
      const argv = ['sh', '-c', 'echo "[$A] [$B]"; pwd']; // one array: one prepared entry
      const plan = (env: string[], cwd: string): SpawnPlan => ({
        ...basePlan,
        file: '/bin/sh',
        argv,
        env,
        cwd,
      });
      t.equal((await run(plan(['A=1', 'B=2'], '/'))).output, '[1] [2]\n/\n');
      t.equal((await run(plan(['B=', 'A=3'], '/'))).output, '[3] []\n/\n', "each spawn's env");
      t.equal((await run(plan(['A=x'], tmp))).output, `[x] []\n${tmp}\n`, 'same argv, new cwd');
      t.equal((await run(plan(['A=y'], '/'))).output, '[y] []\n/\n', 'and back');
      t.equal((await run(plan([], '/'))).output, '[] []\n/\n', 'an empty env');
      const { handler, outcome } = await run(plan(['A=1\0B=2'], '/'));
      const message = 'spawn /bin/sh: options.envp must be NUL-free';
      t.same(outcome, { kind: 'spawn-failed', error: { code: 'EINVAL', message } });
      t.equal(handler.pid, null, 'refused before any clone');
      t.equal(addon.debugCounters().liveArenas, 0, 'no arena left');
    },
  );

  void t.test('stderr: log (pipe), socket, null', async (t) => {
    const { client, accepted } = await connect();
    const handler = spawner.spawn(
      sh('echo oops >&2; echo out', { stderr: 'log' }),
      socketFd(accepted),
    );
    accepted.destroy();
    t.ok(handler.stderr, 'a stream for log');
    const [stderr, output] = await Promise.all([readAll(handler.stderr!), readAll(client)]);
    t.equal(stderr, 'oops\n');
    t.equal(output, 'out\n');
    t.same(await handler.outcome, exited(0));
    t.equal((await run(sh('echo oops >&2; echo out', { stderr: 'socket' }))).output, 'oops\nout\n');
    const quiet = await run(sh('echo oops >&2; readlink /proc/self/fd/2', { stderr: 'null' }));
    t.equal(quiet.output, '/dev/null\n');
  });

  void t.test(
    'Node children keep their exit status while native handlers run and exit',
    async (t) => {
      const connections = await Promise.all([connect(), connect(), connect()]);
      const running = connections.map(({ accepted }) => {
        const handler = spawner.spawn(basePlan, socketFd(accepted));
        accepted.destroy();
        return handler;
      });
      const trues = Array.from({ length: 6 }, () => execTrue());
      const quick = await Promise.all(Array.from({ length: 6 }, () => run(sh('exit 3'))));
      t.same(await within(Promise.all(trues), 10_000, 'execFile'), Array(6).fill(0));
      t.same(
        quick.map((r) => r.outcome),
        Array(6).fill(exited(3)),
      );
      for (const { client } of connections) client.end();
      t.same(await Promise.all(running.map((h) => h.outcome)), Array(3).fill(exited(0)));
    },
  );

  void t.test('2000 spawns, failures mixed in, leave no zombie, no fd, no arena', async (t) => {
    const { client, accepted } = await connect();
    const fd = socketFd(accepted);
    const fdsBefore = await listFds();
    const modes = ['null', 'log', 'socket'] as const;
    const noFile = {
      kind: 'spawn-failed',
      error: { code: 'ENOENT', message: 'execve /nonexistent: no such file or directory' },
    };
    const noCwd = {
      kind: 'spawn-failed',
      error: { code: 'ENOENT', message: 'chdir /nonexistent: no such file or directory' },
    };
    // In each batch of 20: 4 exec failures (i % 5 == 3), 2 chdir failures (i % 10 == 9).
    const planOf = (i: number): SpawnPlan => ({
      ...basePlan,
      file: i % 5 === 3 ? '/nonexistent' : '/bin/true',
      argv: ['true'],
      cwd: i % 10 === 9 ? '/nonexistent' : null,
      stderr: modes[i % 3]!,
    });
    const expected = Array.from({ length: 20 }, (_, i) =>
      i % 5 === 3 ? noFile : i % 10 === 9 ? noCwd : exited(0),
    );
    for (let batch = 0; batch < 100; batch++) {
      const handlers = Array.from({ length: 20 }, (_, i) => spawner.spawn(planOf(i), fd));
      const ends = handlers.map(async (h) => {
        if (h.stderr !== null) await Promise.all([once(h.stderr, 'close'), readAll(h.stderr)]);
        return h.outcome;
      });
      const outcomes = await within(Promise.all(ends), 10_000, 'batch outcomes');
      if (JSON.stringify(outcomes) !== JSON.stringify(expected)) {
        t.same(outcomes, expected, `batch ${batch}`);
        break;
      }
    }
    t.same(zombieChildren(), []);
    t.same(await listFds(), fdsBefore);
    const { liveArenas, cachedArenas } = addon.debugCounters();
    t.equal(liveArenas, 0, 'every arena freed');
    t.ok(cachedArenas <= 64, `at most 64 kept for reuse (${cachedArenas})`);
    accepted.destroy();
    client.destroy();
  });

  void t.test('SOCKETEER_NATIVE_VFORK=1: spawn returns after the exec', async (t) => {
    const built = fileURLToPath(
      new URL('../../build/Release/socketeer_native.node', import.meta.url),
    );
    const code = `
      const addon = require(${JSON.stringify(built)});
      const fd = require('node:fs').openSync('/dev/null', 'r+');
      const options = { file: '/bin/true', argv: ['true'], envp: [], stdinFd: fd, stderr: 'null' };
      const failed = addon.spawn({ ...options, file: '/nonexistent' }, () => {});
      const ok = addon.spawn(options, (code, signal, failure) => {
        console.log(JSON.stringify({ ...addon.debugCounters(), failed, exit: [code, signal, failure], pid: typeof ok.pid }));
      });`;
    const env = { ...process.env, SOCKETEER_NATIVE_VFORK: '1' };
    const { stdout } = await within(
      promisify(execFile)(process.execPath, ['-e', code], { env }),
      10_000,
      'vfork-mode child',
    );
    t.same(JSON.parse(stdout), {
      mode: 'vfork',
      liveArenas: 0,
      cachedArenas: 1,
      failed: { errno: 'ENOENT', syscall: 'execve', message: 'no such file or directory' },
      exit: [0, null, null],
      pid: 'number',
    });
  });

  void t.test('children still running when a worker ends are reaped all the same', async (t) => {
    const built = fileURLToPath(
      new URL('../../build/Release/socketeer_native.node', import.meta.url),
    );
    const code = `
      const addon = require(${JSON.stringify(built)});
      const fd = require('node:fs').openSync('/dev/null', 'r+');
      const options = { file: '/bin/sleep', argv: ['sleep', '0.3'], envp: [], stdinFd: fd, stderr: 'null' };
      const pids = [1, 2, 3].map(() => addon.spawn(options, () => {}).pid);
      require('node:worker_threads').parentPort.postMessage(pids);`;
    const worker = new Worker(code, { eval: true });
    const [pids] = (await within(once(worker, 'message'), 5000, 'worker pids')) as [number[]];
    await worker.terminate();
    t.equal(pids.length, 3);
    await within(untilGone(pids), 5000, 'reaping');
    t.same(zombieChildren(), []);
  });

  void t.test('lookups', (t) => {
    t.same(addon.lookupUser('root'), {
      uid: 0,
      gid: 0,
      name: 'root',
      home: '/root',
      shell: addon.lookupUser(0)?.shell,
    });
    t.equal(addon.lookupUser('socketeer-no-such-user'), null);
    t.same(addon.lookupGroup('root'), { gid: 0, name: 'root' });
    t.same(addon.lookupGroup(0), { gid: 0, name: 'root' });
    t.equal(addon.lookupGroup(4_000_000_000), null);
    t.ok(addon.groupList('root', 0).includes(0));
    t.throws(() => addon.peerCredentials(1_000_000), { code: 'EBADF', syscall: 'getsockopt' });
    t.end();
  });

  void t.test('peerCredentials of a Unix socket client in this process', async (t) => {
    const creds = await acceptUnixPeer(path.join(tmp, 'self.sock'), (socketPath) => {
      const client = net.connect(socketPath);
      return () => {
        client.destroy();
      };
    });
    t.same(creds, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  });

  void t.test('as root: identity, limits, chroot', { skip: rootOnly }, (t) => defineRootTests(t));

  function defineRootTests(t: Test): void {
    const name = `sktn${process.pid}`;
    t.before(() => {
      fs.chmodSync(tmp, 0o755); // the handlers' user reaches its cwd and the socket below
      execFileSync('groupadd', [`${name}a`]);
      execFileSync('groupadd', [`${name}b`]);
      execFileSync('useradd', ['-M', '-U', '-s', '/bin/sh', '-G', `${name}a,${name}b`, name]);
    });
    t.teardown(() => {
      for (const [cmd, arg] of [
        ['userdel', name],
        ['groupdel', `${name}a`],
        ['groupdel', `${name}b`],
        ['groupdel', name],
      ]) {
        try {
          execFileSync(cmd!, [arg!], { stdio: 'ignore' });
        } catch {
          // already gone (userdel removes the user's own group)
        }
      }
    });
    const user = () => addon.lookupUser(name)!;
    const groupOf = (suffix: string) => addon.lookupGroup(`${name}${suffix}`)!.gid;

    void t.test('uid, gid, groups, umask, nice, rlimits, no_new_privs, cwd', async (t) => {
      const { uid, gid } = user();
      const groups = addon.groupList(name, gid);
      t.same([...groups].sort(), [gid, groupOf('a'), groupOf('b')].sort(), 'groupList');
      const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
      const plan = sh(
        'grep -E "^(Uid|Gid|Groups|Umask|NoNewPrivs):" /proc/self/status;' +
          'grep -E "^Max (open files|core file size)" /proc/self/limits; cut -d" " -f19 /proc/self/stat; pwd',
        {
          uid,
          gid,
          groups,
          cwd,
          umask: 0o027,
          nice: 7,
          noNewPrivileges: true,
          rlimits: [
            { resource: 'nofile', soft: 100, hard: 200 },
            { resource: 'core', soft: 0, hard: null },
          ],
        },
      );
      fs.chmodSync(cwd, 0o700);
      t.same(
        (await run(plan)).outcome,
        {
          kind: 'spawn-failed',
          error: { code: 'EACCES', message: `chdir ${cwd}: permission denied` },
        },
        "cwd entered with the handler's permissions",
      );
      fs.chmodSync(cwd, 0o755);
      const { output, outcome } = await run(plan);
      t.same(outcome, exited(0));
      const lines = output
        .trim()
        .split('\n')
        .map((line) => line.trim().split(/\s+/).join(' '));
      t.same(lines, [
        `Umask: 0027`,
        `Uid: ${uid} ${uid} ${uid} ${uid}`,
        `Gid: ${gid} ${gid} ${gid} ${gid}`,
        `Groups: ${[...groups].sort((a, b) => a - b).join(' ')}`,
        'NoNewPrivs: 1',
        'Max core file size 0 unlimited bytes',
        'Max open files 100 200 files',
        '7',
        cwd,
      ]);
    });

    void t.test('a uid drop without a group list clears the groups', async (t) => {
      const { uid, gid } = user();
      const { output } = await run(sh('grep ^Groups: /proc/self/status', { uid, gid }));
      t.equal(output.trim(), 'Groups:');
    });

    void t.test('chroot', async (t) => {
      const empty = fs.mkdtempSync(path.join(tmp, 'root-'));
      t.same(
        (await run(sh('true', { chroot: empty }))).outcome,
        {
          kind: 'spawn-failed',
          error: { code: 'ENOENT', message: 'execve /bin/sh: no such file or directory' },
        },
        'the program is looked up inside the new root',
      );
      t.same((await run(sh('true', { chroot: '/nonexistent' }))).outcome, {
        kind: 'spawn-failed',
        error: { code: 'ENOENT', message: 'chroot /nonexistent: no such file or directory' },
      });
      const busybox = '/bin/busybox';
      if (!fs.existsSync(busybox) || !isStaticElf(busybox)) {
        t.skip(
          'no static /bin/busybox (apt-get install busybox-static; .ci/run does): only failing chroots tested',
          () => {},
        );
        return;
      }
      fs.mkdirSync(path.join(empty, 'bin'));
      fs.copyFileSync(busybox, path.join(empty, 'bin', 'busybox'));
      fs.chmodSync(path.join(empty, 'bin', 'busybox'), 0o755);
      const plan = {
        ...basePlan,
        chroot: empty,
        file: '/bin/busybox',
        argv: ['busybox', 'sh', '-c', 'pwd; ls /'],
      };
      t.same(await run(plan).then((r) => [r.output, r.outcome]), ['/\nbin\n', exited(0)]);
      t.equal((await run({ ...plan, cwd: '/bin' })).output, '/bin\nbin\n');
    });

    void t.test('peerCredentials of a client running as another user', async (t) => {
      const { uid, gid } = user();
      let clientPid = 0;
      const creds = await acceptUnixPeer(path.join(tmp, 'other.sock'), (socketPath) => {
        const script = 'require("net").connect(process.argv[1]); process.stdin.resume()';
        const child = spawnChild(process.execPath, ['-e', script, socketPath], {
          uid,
          gid,
          cwd: '/',
          stdio: ['pipe', 'ignore', 'inherit'],
        });
        clientPid = child.pid!;
        return async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill();
            await once(child, 'exit');
          }
        };
      });
      t.same(creds, { pid: clientPid, uid, gid });
    });
    t.end();
  }

  /** Listens on a Unix path, lets `connectClient` connect, returns the accepted peer's creds. */
  async function acceptUnixPeer(
    socketPath: string,
    connectClient: (socketPath: string) => () => Promise<void> | void,
  ) {
    const unix = net.createServer({ pauseOnConnect: true });
    unix.listen(socketPath);
    await once(unix, 'listening');
    fs.chmodSync(socketPath, 0o777);
    const accepting = once(unix, 'connection') as Promise<[net.Socket]>;
    const stop = connectClient(socketPath);
    try {
      const [accepted] = await within(accepting, 10_000, 'unix connection');
      const creds = addon.peerCredentials(socketFd(accepted));
      accepted.destroy();
      return creds;
    } finally {
      await stop();
      unix.close();
    }
  }
}

function execTrue(): Promise<number | null> {
  return new Promise((resolve) => {
    execFile('/bin/true', (error) => resolve(error === null ? 0 : (error.code as number | null)));
  });
}

/** Whether a process is its own process group and session leader (/proc/PID/stat fields 5, 6). */
function leadsOwnSession(pid: number): boolean {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[2]) === pid && Number(fields[3]) === pid;
}
