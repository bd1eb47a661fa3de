import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  cleanEnv,
  cli,
  exchange,
  isRoot,
  makeConfDir,
  withDeadline,
} from '../helpers/daemon.js';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';

const rootOnly = isRoot ? false : 'needs root to switch users, groups and limits';
const spawners = ['native', 'portable'] as const;
const hasNative = loadNativeAddon() !== null;

/** Reads one `Key:\tvalue` line of /proc/self/status as printed by the handler. */
const statusField = (text: string, key: string): string | undefined =>
  new RegExp(`^${key}:[ \\t]*(.*?)[ \\t]*$`, 'm').exec(text)?.[1];

const limitLine = (text: string, name: string): string[] | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line?.slice(26).trim().split(/\s+/).slice(0, 2);
};

/** A user with two supplementary groups, made for this test and removed after it. */
function makeTestUser(t: Test): { name: string; uid: number; gid: number; extra: number[] } {
  const name = `sktest${process.pid % 100000}`;
  const groups = [`${name}a`, `${name}b`];
  for (const g of groups) spawnSync('groupadd', [g]);
  spawnSync('useradd', [
    '-M',
    '-N',
    '-g',
    'nogroup',
    '-G',
    groups.join(','),
    '-s',
    '/bin/sh',
    name,
  ]);
  t.teardown(() => {
    spawnSync('pkill', ['-KILL', '-u', name]);
    spawnSync('userdel', [name]);
    for (const g of groups) spawnSync('groupdel', [g]);
  });
  const id = (flag: string): number[] =>
    spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim().split(' ').map(Number);
  return {
    name,
    uid: id('-u')[0] ?? -1,
    gid: id('-g')[0] ?? -1,
    extra: groups.map((g) =>
      Number(spawnSync('getent', ['group', g], { encoding: 'utf8' }).stdout.split(':')[2]),
    ),
  };
}

const probe =
  'cat /proc/self/status; echo ---; cat /proc/self/limits; echo ---; cut -d" " -f19 /proc/self/stat; pwd';

for (const spawner of spawners) {
  t.test(
    `process setup with the ${spawner} spawner`,
    {
      skip:
        rootOnly || (spawner === 'native' && !hasNative ? 'the native addon is not built' : false),
    },
    async (t) => {
      const user = makeTestUser(t);
      const conf = makeConfDir({
        'setup.json': {
          listen: 'tcp:127.0.0.1:0',
          exec: ['/bin/sh', '-c', probe],
          user: user.name,
          groups: true,
          rlimits: { nofile: { soft: 100, hard: 200 }, core: 0, fsize: '1M', cpu: 'infinity' },
          umask: '0027',
          nice: 7,
          noNewPrivileges: true,
          cwd: '/tmp',
        },
        'listed.json': {
          listen: 'tcp:127.0.0.1:0',
          exec: ['/bin/sh', '-c', 'cat /proc/self/status'],
          user: user.name,
          groups: ['nogroup', `${user.name}b`],
        },
        'plain.json': {
          listen: 'tcp:127.0.0.1:0',
          exec: ['/bin/sh', '-c', 'cat /proc/self/status'],
          user: user.name,
        },
      });
      t.teardown(conf.cleanup);
      const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', spawner]);
      t.teardown(() => daemon.stop());
      const [status = '', limits = '', rest = ''] = (await exchange(daemon.tcp('setup'), null))
        .toString()
        .split('---\n');
      t.equal(statusField(status, 'Uid'), `${user.uid}\t${user.uid}\t${user.uid}\t${user.uid}`);
      t.equal(statusField(status, 'Gid'), `${user.gid}\t${user.gid}\t${user.gid}\t${user.gid}`);
      t.same(
        statusField(status, 'Groups')?.split(' ').map(Number).sort(),
        [user.gid, ...user.extra].sort(),
      );
      t.equal(statusField(status, 'Umask'), '0027');
      t.equal(statusField(status, 'NoNewPrivs'), '1');
      t.same(limitLine(limits, 'Max open files'), ['100', '200']);
      t.same(limitLine(limits, 'Max core file size'), ['0', '0']);
      t.same(limitLine(limits, 'Max file size'), ['1048576', '1048576']);
      t.same(limitLine(limits, 'Max cpu time'), ['unlimited', 'unlimited']);
      t.equal(rest, '7\n/tmp\n', 'nice 7, cwd /tmp');
      const listed = (await exchange(daemon.tcp('listed'), null)).toString();
      t.same(
        statusField(listed, 'Groups')?.split(' ').map(Number).sort(),
        [65534, user.extra[1]].sort(),
      );
      const plain = (await exchange(daemon.tcp('plain'), null)).toString();
      t.equal(statusField(plain, 'Groups'), '', 'switching user without groups clears them');
      t.equal(statusField(plain, 'NoNewPrivs'), '0');
    },
  );
}

t.test('nproc stops a fork bomb in a handler', { skip: rootOnly }, async (t) => {
  const user = makeTestUser(t);
  const bomb =
    'i=0; while [ $i -lt 40 ]; do sleep 30 </dev/null >/dev/null 2>&1 & i=$((i+1)); done 2>/dev/null; echo done';
  const conf = makeConfDir({
    'bomb.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', bomb],
      user: user.name,
      rlimits: { nproc: 5 },
      stderr: 'null',
    },
  });
  t.teardown(conf.cleanup);
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--kill-grace', '1']);
  t.teardown(() => daemon.stop());
  const { host, port } = daemon.tcp('bomb');
  const { connect } = await import('node:net');
  const socket = connect(port, host);
  t.teardown(() => socket.destroy());
  // the shell either gives up and says so, or dies of a failed fork: either way it stopped
  await withDeadline(
    new Promise<void>((resolve) => {
      socket.on('data', (d: Buffer) => d.toString().includes('done') && resolve());
      socket.on('end', resolve);
    }),
    10000,
    'the bomb to stop',
  );
  const owned = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return (
          statusField(readFileSync(`/proc/${p}/status`, 'utf8'), 'Uid')?.split('\t')[0] ===
          String(user.uid)
        );
      } catch {
        return false;
      }
    });
  t.ok(owned.length <= 5 && owned.length >= 2, `the user has ${owned.length} processes (limit 5)`);
  // The bomb's sleeps outlive their handler (issue #10 item 10): end them before the teardown
  // checks that the daemon left no handler process behind. The handler's shell itself may have
  // exited and been reaped since the listing (ESRCH: seen once in CI).
  for (const pid of owned) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
});

t.test(
  'chroot runs the handler in its new root (native) and is refused by the portable spawner',
  { skip: rootOnly },
  async (t) => {
    const busybox = ['/bin/busybox', '/usr/bin/busybox'].find(
      (p) =>
        spawnSync(p, ['true']).status === 0 &&
        /static/.test(spawnSync('file', [p], { encoding: 'utf8' }).stdout ?? 'static'),
    );
    if (busybox === undefined) {
      t.skip(
        'chroot cases need a static busybox (apt-get install busybox-static; .ci/run does)',
        () => {},
      );
      return;
    }
    const conf = makeConfDir({});
    t.teardown(conf.cleanup);
    const jail = join(conf.dir, 'jail');
    mkdirSync(join(jail, 'bin'), { recursive: true });
    mkdirSync(join(conf.confDir), { recursive: true });
    copyFileSync(busybox, join(jail, 'bin', 'busybox'));
    const service = {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/busybox', 'sh', '-c', 'echo in jail; ls /'],
      chroot: jail,
    };
    const jailed = makeConfDir({ 'jailed.json': service });
    t.teardown(jailed.cleanup);
    if (hasNative) {
      const daemon = await DaemonUnderTest.start(jailed.confDir, ['--spawner', 'native']);
      t.teardown(() => daemon.stop());
      t.equal((await exchange(daemon.tcp('jailed'), null)).toString(), 'in jail\nbin\n');
    }
    const env = Object.entries(cleanEnv()).map(([k, v]) => `${k}=${v}`);
    const portable = spawnSync(
      '/usr/bin/env',
      [
        '-i',
        ...env,
        process.execPath,
        cli,
        'check',
        '--config-dir',
        jailed.confDir,
        '--spawner',
        'portable',
      ],
      { encoding: 'utf8' },
    );
    t.equal(
      portable.stderr.split('\n')[0],
      `${jailed.confDir}/jailed.json: /chroot: the portable spawner cannot set chroot (use the native spawner)`,
    );
    t.equal(portable.status, 100);
  },
);

t.test(
  'a Unix peer running as another user is named by its credentials',
  { skip: rootOnly || (hasNative ? false : 'peer credentials need the native addon') },
  async (t) => {
    const conf = makeConfDir({});
    t.teardown(conf.cleanup);
    const path = join(conf.dir, 'peer.sock');
    const withPath = makeConfDir({ 'peer.json': { listen: `unix:${path}`, exec: ['env'] } });
    t.teardown(withPath.cleanup);
    spawnSync('chmod', ['0755', conf.dir]);
    const daemon = await DaemonUnderTest.start(withPath.confDir);
    t.teardown(() => daemon.stop());
    const client = `const s = require('net').connect(process.argv[1]); let out = '';
s.on('connect', () => s.end()); s.setEncoding('utf8'); s.on('data', (d) => (out += d));
s.on('end', () => process.stdout.write(out + 'CLIENTPID=' + process.pid + '\\n'));`;
    const run = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '/usr/bin/env',
        '-i',
        process.execPath,
        '-e',
        client,
        path,
      ],
      { encoding: 'utf8' },
    );
    t.equal(run.status, 0, run.stderr);
    const env = Object.fromEntries(
      run.stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    t.equal(env.IPCREMOTEEUID, '65534');
    t.equal(env.IPCREMOTEEGID, '65534');
    t.equal(env.IPCREMOTEPID, env.CLIENTPID);
    t.equal(env.SOCKETEER_INSTANCE, `1-${env.CLIENTPID}-65534`);
  },
);
