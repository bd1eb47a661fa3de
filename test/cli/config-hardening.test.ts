/**
 * Issue #10, items 2 to 5, through the built CLI and a running daemon: what is not a regular
 * file (a FIFO, a device, a huge file) is a problem and never blocks; pathological input (deep
 * nesting, NUL bytes, an unreadable drop-in directory) is a config problem (100), never a bug
 * (101); `escape --` as systemd-escape; no handler runs as root unless its file says so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { AccountLookup, UserEntry } from '../../src/config/accounts.js';
import { assembleConfig } from '../../src/config/load.js';
import { readConfigDir } from '../../src/config/read-dir.js';
import type { ResolveContext } from '../../src/config/resolve.js';
import {
  DaemonUnderTest,
  exchange,
  isEvent,
  isRoot,
  makeConfDir,
  runCli,
  writeServices,
} from '../helpers/daemon.js';

const rootOnly = isRoot ? false : 'needs root (handler users, a reader that root is not)';
const cat = { listen: 'tcp:127.0.0.1:0', exec: ['cat'] };

/**
 * Cleanup for the code before this fix, which blocks in open(2) on a FIFO: removes the link to
 * /dev/zero first (that code would read it into memory up to 4 GB), then opens each FIFO for
 * writing and closes it, so that a blocked reader gets EOF and can end.
 */
function releaseFifos(paths: readonly string[], zero: string): void {
  rmSync(zero, { force: true });
  for (const path of paths) {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // no reader (ENXIO) or already removed: nothing is blocked on it
    }
  }
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

/** A conf.d with one good service and every kind of file that is not a regular one. */
function makeBadFiles(t: Test): { confDir: string; fifos: string[] } {
  const conf = makeConfDir({ 'good.json': cat, 'drop.json': cat });
  const fifos = [join(conf.confDir, 'x.json'), join(conf.confDir, 'drop.json.d', '10.json')];
  mkdirSync(join(conf.confDir, 'drop.json.d'));
  for (const fifo of fifos) mkfifo(fifo);
  symlinkSync('/dev/zero', join(conf.confDir, 'zero.json'));
  writeFileSync(join(conf.confDir, 'big.json'), Buffer.alloc(2 * 1024 * 1024, 0x20));
  t.teardown(() => {
    releaseFifos(fifos, join(conf.confDir, 'zero.json'));
    conf.cleanup();
  });
  return { confDir: conf.confDir, fifos };
}

function badFileProblems(d: string): string {
  return [
    `${d}/big.json: /: is 2097152 bytes, over the limit of 1048576 bytes (1 MiB) per file; not read`,
    `${d}/drop.json.d/10.json: /: is a FIFO, not a regular file; not read`,
    `${d}/x.json: /: is a FIFO, not a regular file; not read`,
    `${d}/zero.json: /: is a character device, not a regular file; not read`,
  ].join('\n');
}

t.test('a FIFO, a device and a 2 MiB file: check and serve report all, exit 100', async (t) => {
  const { confDir: d } = makeBadFiles(t);
  const problems = badFileProblems(d);
  const check = await runCli(['check', '--config-dir', d], [], 20000);
  t.equal(check.stderr, `${problems}\nsocketeer: fatal: 4 problems in ${d}; nothing was started\n`);
  t.equal(check.stdout, '');
  t.equal(check.code, 100);
  const control = join(d, '..', 'control.sock');
  const serve = await runCli(
    ['serve', '--config-dir', d, '--control', control, '--log-format', 'text'],
    [],
    20000,
  );
  t.equal(serve.stderr, `${problems}\nsocketeer: fatal: 4 problems in ${d}; nothing was started\n`);
  t.equal(serve.code, 100);
});

t.test('a reload that meets a FIFO and a device reports them; the daemon serves on', async (t) => {
  const conf = makeConfDir({ 'echo.json': cat });
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  const fifo = join(conf.confDir, 'x.json');
  t.teardown(async () => {
    releaseFifos([fifo], join(conf.confDir, 'zero.json'));
    await daemon.stop();
    conf.cleanup();
  });
  t.equal((await exchange(daemon.tcp('echo'), 'before\n')).toString(), 'before\n');
  mkfifo(fifo);
  symlinkSync('/dev/zero', join(conf.confDir, 'zero.json'));
  const d = conf.confDir;
  const reload = await runCli(['reload', '--control', control], [], 20000);
  t.equal(
    reload.stderr,
    [
      `${d}/x.json: /: is a FIFO, not a regular file; not read`,
      `${d}/zero.json: /: is a character device, not a regular file; not read`,
      'socketeer: fatal: reload refused: 2 problems; the running configuration is unchanged',
      '',
    ].join('\n'),
  );
  t.equal(reload.code, 100);
  const failed = await daemon.waitForLog(isEvent('reload-failed'));
  t.match(failed, { reason: 'config', level: 'error' });
  t.equal((await exchange(daemon.tcp('echo'), 'after\n')).toString(), 'after\n', 'still served');
  const status = await runCli(['status', '--json', '--control', control], [], 20000);
  t.equal(status.code, 0, 'the control socket answers');
  t.match(JSON.parse(status.stdout), { services: [{ name: 'echo', state: 'running' }] });
});

t.test('100,000-deep nesting is a problem of its file, exit 100, not a bug', async (t) => {
  const deep = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
  const conf = makeConfDir({
    'a-deep.json': `{"listen": "tcp:127.0.0.1:0", "exec": ["cat"], "env": ${deep(100000)}}`,
    'b-deep-object.json': `${'{"a":'.repeat(100000)}1${'}'.repeat(100000)}`,
    'c.json': cat,
    'd-just-deep-enough.json': `{"listen": "tcp:127.0.0.1:0", "exec": ["cat"], "env": ${deep(63)}}`,
  });
  t.teardown(conf.cleanup);
  const d = conf.confDir;
  writeServices(join(d, 'c.json.d'), { '10-deep.json': `{"limits": ${deep(64)}}` });
  const check = await runCli(['check', '--config-dir', d]);
  const nested = 'nested deeper than 64 levels of arrays and objects';
  t.equal(
    check.stderr,
    [
      `${d}/a-deep.json: /: ${nested}`,
      `${d}/b-deep-object.json: /: ${nested}`,
      `${d}/c.json.d/10-deep.json: /: ${nested}`,
      `${d}/d-just-deep-enough.json: /env: must be object`,
      `socketeer: fatal: 4 problems in ${d}; nothing was started`,
      '',
    ].join('\n'),
  );
  t.equal(check.code, 100);
});

t.test('a NUL byte in any string or key is refused at check, with its pointer', async (t) => {
  const conf = makeConfDir({
    'nul.json': {
      listen: ['unix:/tmp/socketeer-a\u0000b.sock', 'tcp:127.0.0.1:0'],
      exec: ['/bin/echo\u0000', 'arg\u0000'],
      env: { 'NAME\u0000': 'v', VALUE: 'x\u0000y' },
      passEnv: ['HOME\u0000'],
      cwd: '/tmp\u0000',
      chroot: '/\u0000',
      user: 'root\u0000',
    },
    'spec@.json': { listen: 'tcp:127.0.0.1:0', exec: ['echo', '%I'] },
    'spec@\\x00.json': {},
  });
  t.teardown(conf.cleanup);
  const d = conf.confDir;
  const check = await runCli(['check', '--config-dir', d]);
  const nul = 'contains a NUL byte, which no path, argument, name or environment entry can hold';
  t.equal(
    check.stderr,
    [
      `${d}/nul.json: /listen/0: ${nul}`,
      `${d}/nul.json: /exec/0: ${nul}`,
      `${d}/nul.json: /exec/1: ${nul}`,
      `${d}/nul.json: /env/NAME\u0000: ${nul}`,
      `${d}/nul.json: /env/VALUE: ${nul}`,
      `${d}/nul.json: /passEnv/0: ${nul}`,
      `${d}/nul.json: /cwd: ${nul}`,
      `${d}/nul.json: /chroot: ${nul}`,
      `${d}/nul.json: /user: ${nul}`,
      `${d}/nul.json: /env/NAME\u0000: is not a valid name`,
      `${d}/nul.json: /passEnv/0: must match ^[A-Za-z_][A-Za-z0-9_]*$`,
      `${d}/spec@\\x00.json: /: invalid instance "\\x00": it holds \\x00`,
      `socketeer: fatal: 12 problems in ${d}; nothing was started`,
      '',
    ].join('\n'),
  );
  t.equal(check.code, 100);
});

t.test(
  'an unreadable drop-in directory is one problem among the others',
  { skip: rootOnly },
  async (t) => {
    const conf = makeConfDir({ 'a.json': cat, 'b.json': '{"listen": ', 'c.json': cat });
    t.teardown(conf.cleanup);
    const d = conf.confDir;
    writeServices(join(d, 'a.json.d'), { '10.json': { socket: { backlog: 8 } } });
    chmodSync(conf.dir, 0o755);
    chmodSync(join(d, 'a.json.d'), 0o700);
    // root reads every directory: the reader is nobody
    const check = await runCli(['check', '--config-dir', d], ['runuser', '-u', 'nobody', '--']);
    t.equal(
      check.stderr,
      [
        `${d}/a.json.d: /: unable to read the drop-in directory: permission denied (EACCES)`,
        `${d}/b.json: /: invalid JSON: Unexpected end of JSON input`,
        `socketeer: fatal: 2 problems in ${d}; nothing was started`,
        '',
      ].join('\n'),
    );
    t.equal(check.code, 100);
  },
);

t.test(
  'a root daemon warns about a service file that others can write',
  { skip: rootOnly },
  async (t) => {
    const conf = makeConfDir({ 'open.json': cat, 'theirs.json': cat, 'safe.json': cat });
    t.teardown(conf.cleanup);
    const d = conf.confDir;
    chmodSync(join(d, 'open.json'), 0o666);
    chownSync(join(d, 'theirs.json'), 65534, 0);
    chmodSync(join(d, 'safe.json'), 0o644);
    const check = await runCli(['check', '--config-dir', d]);
    t.equal(check.code, 0);
    const advice = 'whoever can write it chooses what this root daemon runs, and as whom';
    const notes = check.stderr.split('\n').filter((l) => l.includes('writable by'));
    t.same(notes, [
      `${d}/open.json: /: note: writable by every user: ${advice} (chown root, chmod go-w)`,
      `${d}/theirs.json: /: note: writable by its owner, uid 65534: ${advice} (chown root, chmod go-w)`,
    ]);
  },
);

t.test('escape -- STRING prints what systemd-escape -- STRING prints', async (t) => {
  const cases = [
    ['--', '-x'],
    ['--', '-x', '--path', '1e3', '0012'],
    ['a', '--', '-b'],
    ['--path', '--', '-x'],
    ['--path', '--', '/-x/y'],
    ['--unescape', '--', '\\x2dx'],
    ['--unescape', '--path', '--', '\\x2dx-y'],
    ['--', '--'],
  ];
  for (const args of cases) {
    const theirs = spawnSync('systemd-escape', args, { encoding: 'utf8' });
    const ours = await runCli(['escape', ...args]);
    t.same(
      { stdout: ours.stdout, stderr: ours.stderr, code: ours.code },
      { stdout: theirs.stdout, stderr: theirs.stderr, code: theirs.status },
      args.join(' '),
    );
  }
});

/** The id of an account or group, from getent. */
function getentId(database: 'passwd' | 'group', key: string): number {
  return Number(execFileSync('getent', [database, key], { encoding: 'utf8' }).split(':')[2]);
}

t.test(
  'a root daemon runs a handler as root only when its file says so',
  { skip: rootOnly },
  async (t) => {
    const busybox = '/bin/busybox';
    const hasChroot = existsSync(busybox);
    const conf = makeConfDir({});
    t.teardown(conf.cleanup);
    const jail = join(conf.dir, 'jail');
    const ids = ['/bin/sh', '-c', 'id -u; id -g'];
    const services: Record<string, unknown> = {
      'a-none.json': { listen: 'tcp:127.0.0.1:0', exec: ids },
      'b-group.json': { listen: 'tcp:127.0.0.1:0', exec: ids, group: 'daemon' },
      'd-root.json': { listen: 'tcp:127.0.0.1:0', exec: ids, user: 'root' },
    };
    if (hasChroot) {
      mkdirSync(join(jail, 'bin'), { recursive: true });
      copyFileSync(busybox, join(jail, 'bin', 'busybox'));
      services['c-chroot.json'] = {
        listen: 'tcp:127.0.0.1:0',
        exec: ['/bin/busybox', 'sh', '-c', 'id -u; id -g'],
        chroot: jail,
      };
    } else t.comment('no static /bin/busybox (.ci/run installs busybox-static): no chroot case');
    writeServices(conf.confDir, services);
    const nobody = getentId('passwd', 'nobody');
    const nobodyGid = Number(
      execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).split(':')[3],
    );
    const daemonGid = getentId('group', 'daemon');
    const groupName = (gid: number): string =>
      execFileSync('getent', ['group', String(gid)], { encoding: 'utf8' }).split(':')[0] ?? '';
    const byDefault = {
      user: 'nobody',
      uid: nobody,
      group: groupName(nobodyGid),
      gid: nobodyGid,
      from: 'default',
    };
    const expected: Record<string, { runAs: unknown; ids: string }> = {
      'a-none': { runAs: byDefault, ids: `${nobody}\n${nobodyGid}\n` },
      'b-group': {
        runAs: { ...byDefault, group: 'daemon', gid: daemonGid },
        ids: `${nobody}\n${daemonGid}\n`,
      },
      ...(hasChroot ? { 'c-chroot': { runAs: byDefault, ids: `${nobody}\n${nobodyGid}\n` } } : {}),
      'd-root': {
        runAs: { user: 'root', uid: 0, group: 'root', gid: 0, from: 'file' },
        ids: '0\n0\n',
      },
    };
    const check = await runCli(['check', '--config-dir', conf.confDir]);
    t.equal(check.stderr, '');
    t.equal(check.code, 0);
    const printed = JSON.parse(check.stdout) as { services: Record<string, { runAs: unknown }> };
    const daemon = await DaemonUnderTest.start(conf.confDir);
    t.teardown(() => daemon.stop());
    for (const [name, want] of Object.entries(expected)) {
      t.same(printed.services[name]?.runAs, want.runAs, `check: ${name} runs as`);
      t.equal(
        (await exchange(daemon.tcp(name), null)).toString(),
        want.ids,
        `${name}: id -u, id -g`,
      );
    }
  },
);

/** Accounts with root, daemon and (unless `withNobody` is false) nobody. */
function fakeAccounts(withNobody: boolean): AccountLookup {
  const users: UserEntry[] = [
    { name: 'root', uid: 0, gid: 0, home: '/root' },
    ...(withNobody ? [{ name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' }] : []),
  ];
  const groups = [
    { name: 'root', gid: 0 },
    { name: 'nogroup', gid: 65534 },
  ];
  const find = <T extends { name: string }>(
    list: T[],
    id: (e: T) => number,
    key: string | number,
  ) => list.find((e) => e.name === String(key) || id(e) === Number(key)) ?? null;
  return {
    user: (key) => find(users, (e) => e.uid, key),
    group: (key) => find(groups, (e) => e.gid, key),
    groupList: (_, gid) => [gid],
  };
}

function rootContext(accounts: AccountLookup): ResolveContext {
  return {
    accounts,
    isRoot: true,
    self: { uid: 0, gid: 0, user: 'root', home: '/root' },
    daemonEnv: { PATH: '/usr/bin:/bin' },
    checkExecutable: () => 'ok',
  };
}

t.test('a root daemon without an account "nobody" refuses a service with no user', async (t) => {
  const conf = makeConfDir({
    'a.json': cat,
    'b.json': { ...cat, group: 'nogroup' },
    'c.json': { ...cat, user: 'root' },
    'd.json': { ...cat, exec: ['echo', '%u'] },
  });
  t.teardown(conf.cleanup);
  const d = conf.confDir;
  const files = readConfigDir(d);
  const missing =
    'no "user" given and the account "nobody" (what a root daemon runs such a handler as) does not exist; name the user, or "root" to run the handler as root';
  t.same(assembleConfig(d, files, rootContext(fakeAccounts(false))), {
    ok: false,
    problems: [
      { file: `${d}/a.json`, pointer: '/user', message: missing },
      { file: `${d}/b.json`, pointer: '/user', message: missing },
      {
        file: `${d}/d.json`,
        pointer: '/exec/1',
        message: 'cannot expand "%u": no user "nobody" for a service with no "user"',
      },
    ],
  });
  const loaded = assembleConfig(d, files, rootContext(fakeAccounts(true)));
  t.ok(loaded.ok);
  if (!loaded.ok) return;
  t.same(
    loaded.config.services.map((s) => [s.name, s.switchTo, s.runAs.from, s.exec?.argv]),
    [
      ['a', { uid: 65534, gid: 65534 }, 'default', ['cat']],
      ['b', { uid: 65534, gid: 65534 }, 'default', ['cat']],
      ['c', { uid: 0, gid: 0 }, 'file', ['cat']],
      ['d', { uid: 65534, gid: 65534 }, 'default', ['echo', 'nobody']],
    ],
  );
});

t.test('a daemon that is not root runs handlers as itself', { skip: rootOnly }, async (t) => {
  const conf = makeConfDir({
    'a-none.json': { listen: 'tcp:127.0.0.1:0', exec: ['/bin/sh', '-c', 'id -u; id -g'] },
  });
  t.teardown(conf.cleanup);
  // the unprivileged daemon's user (daemon, uid 1) owns the dir of its control socket
  chmodSync(conf.dir, 0o755);
  chownSync(conf.dir, getentId('passwd', 'daemon'), getentId('group', 'daemon'));
  const asDaemon = ['runuser', '-u', 'daemon', '--'];
  const uid = getentId('passwd', 'daemon');
  const gid = getentId('group', 'daemon');
  const check = await runCli(['check', '--config-dir', conf.confDir], asDaemon);
  t.equal(check.stderr, '');
  t.equal(check.code, 0);
  const printed = JSON.parse(check.stdout) as { services: Record<string, { runAs: unknown }> };
  t.same(printed.services['a-none']?.runAs, {
    user: 'daemon',
    uid,
    group: 'daemon',
    gid,
    from: 'default',
  });
  const daemon = await DaemonUnderTest.start(conf.confDir, [], undefined, asDaemon);
  t.teardown(() => daemon.stop());
  t.equal((await exchange(daemon.tcp('a-none'), null)).toString(), `${uid}\n${gid}\n`);
});
