// The Unix bind under attack (issue #10, items 1, 6 and 7): a local user who can write the
// socket's directory races the daemon with inotify; guessable names pre-created; a symlinked
// parent; abstract names reached by non-Node clients; reloads under a flood of connections.
import { spawnSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  exchange,
  isRoot,
  type LogRecord,
  withDeadline,
  writeServices,
} from '../helpers/daemon.js';
import { unsafeDirectory } from '../../src/listen/unix-path.js';

const has = (command: string): boolean =>
  spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
const rootOnly = isRoot ? false : 'needs root (a test user, chown)';

/**
 * A temp dir others can traverse (0755), removed in teardown with any process still running
 * with it in its command line (a daemon whose readiness timed out on a loaded machine).
 */
function makeDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sk-unix-'));
  chmodSync(dir, 0o755);
  t.teardown(() => {
    for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir))
          process.kill(+pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** An unprivileged user made for this file, removed after it. */
function makeTestUser(t: Test): { name: string; uid: number; gid: number } {
  const name = `skunix${process.pid % 100000}`;
  spawnSync('useradd', ['-M', '-N', '-g', 'nogroup', '-s', '/bin/sh', name]);
  t.teardown(() => {
    spawnSync('pkill', ['-KILL', '-u', name]);
    spawnSync('userdel', [name]);
  });
  const id = (flag: string): number =>
    Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  return { name, uid: id('-u'), gid: id('-g') };
}

/** Renames every new entry of a directory away and puts a symlink to a victim in its place. */
const swapperSource = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int dir = open(argv[1], O_RDONLY | O_DIRECTORY), in = inotify_init1(0);
  if (argc < 3 || dir < 0 || in < 0 || inotify_add_watch(in, argv[1], IN_CREATE) < 0) return 1;
  printf("ready\\n");
  fflush(stdout);
  static char buf[65536] __attribute__((aligned(8)));
  unsigned long n = 0;
  for (;;) {
    ssize_t len = read(in, buf, sizeof buf);
    if (len <= 0) return 2;
    for (char *p = buf; p < buf + len;) {
      struct inotify_event *e = (struct inotify_event *)p;
      p += sizeof *e + e->len;
      struct stat st;
      if (e->len == 0 || strncmp(e->name, "moved-", 6) == 0) continue;
      if (fstatat(dir, e->name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(st.st_mode)) continue;
      char away[64];
      snprintf(away, sizeof away, "moved-%lu", n++);
      if (renameat(dir, e->name, dir, away) == 0 && symlinkat(argv[2], dir, e->name) == 0) {
        printf("swapped %s\\n", e->name);
        fflush(stdout);
      }
    }
  }
}
`;

/** Compiles the swapper into `work`; its path. */
function compileSwapper(t: Test, work: string): string {
  writeFileSync(join(work, 'swapper.c'), swapperSource);
  const binary = join(work, 'swapper');
  const cc = spawnSync('cc', ['-O2', '-o', binary, join(work, 'swapper.c')], { encoding: 'utf8' });
  t.equal(cc.status, 0, `cc: ${cc.stderr}`);
  return binary;
}

/** Starts the swapper as `user` on `dir`; resolves once it watches. */
async function startSwapper(
  t: Test,
  binary: string,
  user: { uid: number; gid: number },
  dir: string,
  victim: string,
): Promise<{ child: ChildProcess; swapped: () => string[] }> {
  const ids = [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'];
  const child = spawn('setpriv', [...ids, binary, dir, victim], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  await withDeadline(
    new Promise<void>((resolve) =>
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.startsWith('ready\n')) resolve();
      }),
    ),
    15000,
    'the swapper',
  );
  const swapped = (): string[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('swapped '))
      .map((l) => l.slice(8));
  return { child, swapped };
}

/**
 * A directory of `user` where the socket's directory has no safe ancestor on its filesystem
 * (the root of a tmpfs they own): the daemon's private directory is made in it, under attack.
 * Null where tmpfs cannot be mounted.
 */
function mountUserTmpfs(t: Test, dir: string, user: { uid: number; gid: number }): string | null {
  mkdirSync(dir);
  const options = `size=4m,mode=0755,uid=${user.uid},gid=${user.gid}`;
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]).status !== 0) return null;
  t.teardown(() => void spawnSync('umount', ['-l', dir]));
  return dir;
}

const modeOf = (path: string): number => lstatSync(path).mode & 0o7777;

/** SIGHUP, then the `reload` (or `reload-failed`) record it caused. */
async function reloadBySignal(daemon: DaemonUnderTest): Promise<LogRecord> {
  const isDone = (r: LogRecord): boolean => r.event === 'reload' || r.event === 'reload-failed';
  const before = daemon.records.filter(isDone).length;
  daemon.child.kill('SIGHUP');
  await daemon.waitForCount(isDone, before + 1, 60000);
  const record = daemon.records.filter(isDone)[before];
  if (record === undefined) throw new Error('no reload record');
  return record;
}

t.test(
  'a local user racing the bind with inotify and symlinks gets nothing (5 starts, 30 reloads)',
  { skip: rootOnly || (!has('cc') && 'needs cc for the swapper') },
  async (t) => {
    const work = makeDir(t);
    const user = makeTestUser(t);
    const home = join(work, 'home');
    mkdirSync(home);
    chownSync(home, user.uid, user.gid);
    const victim = join(work, 'victim');
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    chmodSync(victim, 0o600);
    const binary = compileSwapper(t, work);
    const mnt = mountUserTmpfs(t, join(work, 'mnt'), user);
    const homes = mnt === null ? [home] : [home, mnt];
    const swappers = await Promise.all(
      homes.map((dir) => startSwapper(t, binary, user, dir, victim)),
    );
    const confDir = join(work, 'conf.d');
    const paths = homes.map((dir) => join(dir, 's.sock'));
    const control = join(work, 'control.sock');
    const nobody = 65534;
    const write = (i: number): { mode: number; uid: number } => {
      const mode = i % 2 === 0 ? 0o600 : 0o666;
      const owner = i % 3 === 0 ? 'nobody' : user.name;
      writeServices(confDir, {
        'victim.json': {
          listen: paths.map((path) => `unix:${path}`),
          user: 'nobody',
          exec: ['cat'],
          // every other pair of reloads also changes the backlog: a real re-bind
          socket: { mode: `0${mode.toString(8)}`, user: owner, backlog: i % 4 < 2 ? 128 : 64 },
        },
      });
      return { mode, uid: owner === 'nobody' ? nobody : user.uid };
    };
    let expected = write(0);
    let step = 0;
    for (let start = 0; start < 5; start++) {
      const daemon = await DaemonUnderTest.start(confDir, ['--control', control]).catch(
        (error: Error) => error,
      );
      if (daemon instanceof Error) {
        t.fail(`start ${start}: ${daemon.message}`);
        continue;
      }
      t.teardown(() => daemon.stop());
      for (let reload = 0; reload < 6; reload++) {
        expected = write(++step);
        const record = await reloadBySignal(daemon);
        t.same(record.bindFailures, [], `reload ${step}`);
      }
      for (const path of paths) {
        const answer = await exchange({ path }, `run ${start}\n`).catch((e: Error) => e.message);
        t.equal(answer.toString(), `run ${start}\n`, `start ${start}: ${path} served`);
        const now = lstatSync(path, { throwIfNoEntry: false });
        t.same(
          { isSocket: now?.isSocket(), mode: (now?.mode ?? 0) & 0o7777, uid: now?.uid },
          { isSocket: true, ...expected },
          `start ${start}: ${path} has the configured mode and owner`,
        );
      }
      t.same((await daemon.stop()).code, 0);
    }
    const stats = lstatSync(victim);
    t.same(
      { uid: stats.uid, gid: stats.gid, mode: stats.mode & 0o7777 },
      { uid: 0, gid: 0, mode: 0o600 },
      'the victim keeps its owner and mode',
    );
    t.equal(readFileSync(victim, 'utf8'), 'secret\n');
    const counts = swappers.map((s) => s.swapped().length);
    t.comment(`swapped: ${counts.join(' and ')} entries (home${mnt === null ? '' : ', tmpfs'})`);
    // in the user's own filesystem the private directory is made next to the socket: raced
    if (mnt !== null) t.ok((counts[1] ?? 0) > 0, 'the swapper on the tmpfs acted');
    else t.comment('tmpfs not mountable: the private directory in the parent is not raced');
  },
);

t.test(
  '400 pre-created guessable temporary names do not stop a start',
  { skip: rootOnly },
  async (t) => {
    const work = makeDir(t);
    const crowd = join(work, 'crowd');
    mkdirSync(crowd);
    // the names of the old scheme (.NAME.PID.N) for the next 400 pids, and 400 `.sk-` names
    const last = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    for (let pid = last + 1; pid <= last + 400; pid++) mkdirSync(join(crowd, `.c.sock.${pid}.1`));
    for (let i = 0; i < 400; i++) mkdirSync(join(crowd, `.sk-${i.toString(16).padStart(18, '0')}`));
    const confDir = join(work, 'conf.d');
    const path = join(crowd, 'c.sock');
    writeServices(confDir, {
      'crowd.json': { listen: `unix:${path}`, user: 'nobody', exec: ['cat'] },
    });
    const daemon = await DaemonUnderTest.start(confDir);
    t.teardown(() => daemon.stop());
    t.equal((await exchange({ path }, 'in\n')).toString(), 'in\n');
    t.equal(modeOf(path), 0o666, 'the default mode');
    t.equal((await daemon.stop()).code, 0);
    t.throws(() => lstatSync(path), { code: 'ENOENT' }, 'removed at shutdown');
  },
);

t.test('a symlink in the socket path is followed only if root or the daemon owns it', async (t) => {
  const work = makeDir(t);
  const real = join(work, 'real');
  mkdirSync(real);
  symlinkSync(real, join(work, 'theirs'));
  symlinkSync(real, join(work, 'ours'));
  if (isRoot) lchownSync(join(work, 'theirs'), 65534, 65534);
  const confDir = join(work, 'conf.d');
  writeServices(confDir, {
    'linked.json': { listen: `unix:${work}/theirs/s.sock`, exec: ['cat'], user: 'nobody' },
  });
  if (isRoot) {
    const refused = await DaemonUnderTest.start(confDir).then(
      async (daemon) => {
        await daemon.stop();
        return 'it started';
      },
      (error: Error) => error.message,
    );
    t.match(refused, /^daemon exited 111: /);
    const fatal = refused.split('\n').find((line) => line.includes('"event":"fatal"'));
    t.match(JSON.parse(fatal ?? '{}'), {
      level: 'error',
      exitCode: 111,
      error: `unable to bind unix:${work}/theirs/s.sock: refusing to follow the symlink "theirs" in ${work}/theirs: it is owned by uid 65534, neither root nor the daemon's user: operation not permitted (EPERM)`,
    });
    t.throws(() => lstatSync(join(real, 's.sock')), { code: 'ENOENT' }, 'nothing bound');
  }
  // root's /var/run -> /run (where it is a link) and a link of the daemon's own user: followed
  const varRun = `/var/run/sk-unix-${process.pid}.sock`;
  const own = isRoot ? [varRun] : [];
  writeServices(confDir, {
    'linked.json': {
      listen: [`unix:${work}/ours/s.sock`, ...own.map((p) => `unix:${p}`)],
      exec: ['cat'],
      user: 'nobody',
    },
  });
  const daemon = await DaemonUnderTest.start(confDir);
  t.teardown(() => daemon.stop());
  t.equal((await exchange({ path: join(real, 's.sock') }, 'ok\n')).toString(), 'ok\n');
  for (const p of own) t.equal((await exchange({ path: p }, 'run\n')).toString(), 'run\n');
  t.equal((await daemon.stop()).code, 0);
  t.throws(() => lstatSync(join(real, 's.sock')), { code: 'ENOENT' });
});

t.test('an abstract socket is bound with its exact name: socat and python3 reach it', async (t) => {
  const work = makeDir(t);
  const name = `sk-unix-test-${process.pid}`;
  writeServices(join(work, 'conf.d'), {
    'abstract.json': { listen: `unix:@${name}`, exec: ['cat'], user: 'nobody' },
  });
  const daemon = await DaemonUnderTest.start(join(work, 'conf.d'));
  t.teardown(() => daemon.stop());
  const python = spawnSync(
    'python3',
    [
      '-c',
      'import socket,sys\n' +
        's=socket.socket(socket.AF_UNIX)\n' +
        's.connect(b"\\0"+sys.argv[1].encode())\n' +
        's.sendall(b"python\\n"); s.shutdown(socket.SHUT_WR)\n' +
        'print(s.recv(100).decode(), end="")',
      name,
    ],
    { encoding: 'utf8', timeout: 30000 },
  );
  t.same({ out: python.stdout, err: python.stderr }, { out: 'python\n', err: '' }, 'python3');
  if (has('socat')) {
    const socat = spawnSync('socat', ['-', `ABSTRACT-CONNECT:${name}`], {
      input: 'socat\n',
      encoding: 'utf8',
      timeout: 30000,
    });
    t.same({ out: socat.stdout, err: socat.stderr }, { out: 'socat\n', err: '' }, 'socat');
  }
  const names = readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .map((l) => l.split(' ').at(-1) ?? '')
    .filter((p) => p.startsWith(`@${name}`));
  t.same([...new Set(names)], [`@${name}`], 'no padding after the name');
  t.equal((await daemon.stop()).code, 0);
});

t.test('reloads under a flood of connections lose none (in place, and re-bound)', async (t) => {
  const work = makeDir(t);
  const confDir = join(work, 'conf.d');
  const path = join(work, 'f.sock');
  const control = join(work, 'control.sock');
  const write = (i: number): void =>
    writeServices(confDir, {
      'flood.json': {
        listen: `unix:${path}`,
        exec: ['cat'],
        user: 'nobody',
        // mode every reload (changed in place); backlog every third (a real re-bind)
        socket: { mode: i % 2 === 0 ? '0666' : '0660', backlog: i % 3 === 2 ? 300 : 511 },
      },
    });
  write(0);
  const daemon = await DaemonUnderTest.start(confDir, ['--control', control]);
  t.teardown(() => daemon.stop());
  let running = true;
  let answered = 0;
  const failures: string[] = [];
  const once = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const socket = connect(path);
      let got = '';
      socket.on('connect', () => socket.end(`${n}\n`));
      socket.on('data', (chunk: Buffer) => (got += chunk.toString()));
      socket.on('error', (error: NodeJS.ErrnoException) => {
        failures.push(error.code ?? error.message);
        resolve();
      });
      socket.on('close', () => {
        if (got === `${n}\n`) answered += 1;
        else if (!socket.errored) failures.push(`answer ${JSON.stringify(got)}`);
        resolve();
      });
    });
  let attempted = 0;
  const loop = async (): Promise<void> => {
    while (running) await once(++attempted);
  };
  const loops = Array.from({ length: 48 }, () => loop());
  for (let i = 1; i <= 12; i++) {
    write(i);
    t.same((await reloadBySignal(daemon)).bindFailures, [], `reload ${i}`);
  }
  running = false;
  await withDeadline(Promise.all(loops), 60000, 'the client loops');
  t.comment(`${answered} answered of ${attempted} across 12 reloads`);
  t.same(failures.slice(0, 5), [], 'no connection refused or reset');
  t.equal(answered, attempted, 'every connection answered');
  t.ok(attempted > 500, `a real flood (${attempted} connections)`);
  t.equal(modeOf(path), 0o666);
  t.equal((await daemon.stop()).code, 0);
});

t.test('without the addon: directories another user can write are refused', async (t) => {
  const work = makeDir(t);
  t.equal(unsafeDirectory(work), null, 'root 0755');
  t.equal(unsafeDirectory(tmpdir()), null, 'sticky /tmp');
  const open = join(work, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  t.match(unsafeDirectory(join(open, 'sub')), /^cannot resolve .*\/open\/sub: ENOENT/);
  t.equal(
    unsafeDirectory(open),
    `the directory ${open} can be written by another user (uid ${process.geteuid?.() ?? 0}, mode 0777)`,
  );
  if (!isRoot) return;
  const theirs = join(work, 'theirs');
  mkdirSync(theirs);
  chownSync(theirs, 65534, 65534);
  t.equal(
    unsafeDirectory(theirs),
    `the directory ${theirs} can be written by another user (uid 65534, mode 0755)`,
  );
  symlinkSync(work, join(work, 'link'));
  lchownSync(join(work, 'link'), 65534, 65534);
  t.equal(unsafeDirectory(join(work, 'link')), `the symlink ${work}/link is owned by uid 65534`);
});
