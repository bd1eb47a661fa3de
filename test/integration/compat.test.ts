// xinetd files read as they are, with real programs: Debian's /etc/xinetd.d as shipped (every
// service listed, the INTERNAL ones reported, none dropped silently), git daemon --inetd driven
// by git ls-remote (and a reload meeting a broken file), rsync --daemon with only_from,
// instances, per_source and cps (defaults from --xinetd-conf) driven by rsync.
import {
  cpSync,
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { DaemonUnderTest, isEvent, makeConfDir, runCli, withDeadline } from '../helpers/daemon.js';
import {
  freeTcpPort,
  git,
  lsRemote,
  makeGitRepo,
  missing,
  noGit,
  noRsync,
  rsync,
  runClient,
  self,
} from '../helpers/compat.js';

const debianDir = '/etc/xinetd.d';
const noXinetd = missing(debianDir, 'xinetd');

interface Checked {
  services: Record<
    string,
    {
      file: string;
      sources: Record<string, string>;
      limits: Record<string, unknown>;
      builtin?: string;
      listen?: string;
    }
  >;
  skipped?: string[];
}

t.test(
  "check on Debian's /etc/xinetd.d as shipped: every service listed, none silent",
  { skip: noXinetd },
  async (t) => {
    for (const how of ['copy', 'symlink']) {
      const conf = makeConfDir({});
      t.teardown(conf.cleanup);
      const dir = join(conf.confDir, 'xinetd.d');
      if (how === 'copy') cpSync(debianDir, dir, { recursive: true });
      else symlinkSync(debianDir, dir);
      const result = await runCli(['check', '--config-dir', conf.confDir]);
      t.equal(result.code, 0, result.stderr);
      const shown = JSON.parse(result.stdout) as Checked;
      // what xinetd itself would read: every file whose name has no "." and no trailing "~"
      const files = readdirSync(debianDir).filter((n) => !n.includes('.') && !n.endsWith('~'));
      const blocks = files.flatMap((name) =>
        [...readFileSync(join(debianDir, name), 'utf8').matchAll(/^service\s+(\S+)/gm)].map(
          () => name,
        ),
      );
      t.ok(blocks.length >= 10, `Debian ships ${blocks.length} service blocks`);
      const skipped = shown.skipped ?? [];
      t.equal(
        Object.keys(shown.services).length + skipped.length,
        blocks.length,
        `${how}: each block served or listed`,
      );
      // the INTERNAL names that are no built-in, and (as xinetd) a disabled second definition
      // of an id (Debian defines echo-dgram in both echo and echo-udp)
      const notBuiltin = new RegExp(
        `^${dir}/[a-z-]+:\\d+: type: INTERNAL service (\\S+) is not one of socketeer's built-ins \\(echo, discard, chargen, daytime, time\\); service \\1 skipped$`,
      );
      const duplicate = new RegExp(
        `^${dir}/[a-z]+-udp:\\d+: service: disabled, and service [a-z]+-dgram is also defined by ${dir}/[a-z]+:\\d+: skipped$`,
      );
      for (const line of skipped) t.ok(notBuiltin.test(line) || duplicate.test(line), line);
      t.equal(skipped.filter((l) => duplicate.test(l)).length, 5, 'the 5 -udp duplicates');
      const names = new Set(skipped.map((l) => / service (\S+) skipped$/.exec(l)?.[1]));
      t.ok(names.has('servers'), `${how}: servers is listed as skipped`);
      // the INTERNAL built-ins are services, on their port from /etc/services
      for (const [name, builtin, listen] of [
        ['echo-stream', 'echo', 'tcp:7'],
        ['echo-dgram', 'echo', 'udp:7'],
        ['discard-stream', 'discard', 'tcp:9'],
        ['chargen-dgram', 'chargen', 'udp:19'],
        ['daytime-stream', 'daytime', 'tcp:13'],
        ['time-dgram', 'time', 'udp:37'],
      ] as const) {
        t.match(shown.services[name], { builtin, listen }, `${how}: ${name} is a builtin`);
      }
      for (const line of skipped) t.ok(result.stderr.includes(`${line}\n`), 'and said on stderr');
    }
  },
);

t.test(
  'git daemon --inetd from an xinetd file, driven by git ls-remote; reloads',
  { skip: noGit },
  async (t) => {
    const conf = makeConfDir({});
    chmodSync(conf.dir, 0o755);
    const head = makeGitRepo(conf.dir);
    const port = await freeTcpPort();
    const dir = join(conf.confDir, 'xinetd.d');
    mkdirSync(dir);
    const gitFile = (extra: string) => `# git daemon, as the git-daemon-run docs write it
service git
{
	type		= UNLISTED
	port		= ${port}
	bind		= 127.0.0.1
	socket_type	= stream
	wait		= no
	user		= ${self().user}
	server		= ${git}
	server_args	= daemon --inetd --export-all --base-path=${conf.dir}
	log_on_failure	+= USERID
${extra}}
`;
    writeFileSync(join(dir, 'git'), gitFile(''));
    writeFileSync(join(dir, 'git.dpkg-old'), 'not read: a name with a dot');
    writeFileSync(
      join(dir, 'tcpmux'),
      'service tcpmux\n{\n\ttype = INTERNAL\n\tsocket_type = stream\n\twait = no\n}\n',
    );
    const daemon = await DaemonUnderTest.start(conf.confDir);
    t.teardown(async () => {
      await daemon.stop();
      conf.cleanup();
    });
    t.same(daemon.addresses.get('git'), [`tcp:127.0.0.1:${port}`]);
    t.match(daemon.records.find(isEvent('config-warning')), {
      file: `${join(dir, 'tcpmux')}:3`,
      pointer: 'type',
      message:
        "INTERNAL service tcpmux is not one of socketeer's built-ins (echo, discard, chargen, daytime, time); service tcpmux skipped",
    });
    t.equal(await lsRemote(port, 'repo.git'), `ok ${head}\tHEAD\n${head}\trefs/heads/main\n`);
    t.match(await daemon.waitForLog(isEvent('end', 'git')), { exitCode: 0 });

    const control = join(conf.dir, 'control.sock');
    writeFileSync(join(dir, 'git'), gitFile('\tinstances = many\n'));
    const refused = await runCli(['reload', '--control', control]);
    t.equal(refused.code, 100);
    t.match(
      refused.stderr,
      `${join(dir, 'git')}:13: instances: "many" is not an integer within 1-2147483647 or UNLIMITED`,
    );
    t.equal(
      await lsRemote(port, 'repo.git'),
      `ok ${head}\tHEAD\n${head}\trefs/heads/main\n`,
      'still served',
    );

    writeFileSync(join(dir, 'git'), gitFile('\tonly_from = 10.0.0.0\n'));
    const applied = await runCli(['reload', '--control', control]);
    t.equal(applied.code, 0, applied.stderr);
    t.match(await lsRemote(port, 'repo.git'), /^failed: /);
    t.match(await daemon.waitForLog(isEvent('refuse', 'git')), { reason: 'denied' });
  },
);

t.test(
  'rsync --daemon with only_from, instances, per_source and cps (defaults in xinetd.conf)',
  { skip: noRsync },
  async (t) => {
    const conf = makeConfDir({});
    chmodSync(conf.dir, 0o755);
    const data = join(conf.dir, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'hello.txt'), 'hello\n');
    const { user, group } = self();
    const rsyncd = join(conf.dir, 'rsyncd.conf');
    writeFileSync(
      rsyncd,
      `use chroot = no\nuid = ${user}\ngid = ${group}\n[mod]\n\tpath = ${data}\n\tread only = yes\n`,
    );
    const [port, deniedPort] = [await freeTcpPort(), await freeTcpPort()];
    const included = join(conf.dir, 'xinetd.d');
    mkdirSync(included);
    const service = (name: string, p: number, access: string) => `service ${name}
{
	port		= ${p}
	bind		= 127.0.0.1
	socket_type	= stream
	wait		= no
	user		= ${user}
	server		= ${rsync}
	server_args	= --daemon --config=${rsyncd}
	${access}
	instances	= 4
	per_source	= 1
}
`;
    writeFileSync(join(included, 'rsync'), service('rsync', port, 'only_from = 127.0.0.1'));
    writeFileSync(
      join(included, 'rsync-denied'),
      service('rsync-denied', deniedPort, 'no_access = 127.0.0.0/8'),
    );
    const cpsPort = await freeTcpPort();
    writeFileSync(join(included, 'rsync-cps'), service('rsync-cps', cpsPort, 'cps = 1 10'));
    const xinetdConf = join(conf.dir, 'xinetd.conf');
    writeFileSync(
      xinetdConf,
      `defaults\n{\n\tcps = 50 10\n\tlog_type = SYSLOG daemon info\n}\n\nincludedir ${included}\n`,
    );

    const checked = await runCli([
      'check',
      '--config-dir',
      conf.confDir,
      '--xinetd-conf',
      xinetdConf,
    ]);
    t.equal(checked.code, 0, checked.stderr);
    const shown = (JSON.parse(checked.stdout) as Checked).services.rsync;
    t.match(shown?.limits, { instances: 4, perSource: 1, rate: { perSecond: 50, burst: 50 } });
    t.same(
      [shown?.file, shown?.sources['/limits/rate'], shown?.sources['/access/allow']],
      [`${included}/rsync:1`, `${xinetdConf}:3 (cps)`, `${included}/rsync:10 (only_from)`],
    );

    const daemon = await DaemonUnderTest.start(conf.confDir, ['--xinetd-conf', xinetdConf]);
    t.teardown(async () => {
      await daemon.stop();
      conf.cleanup();
    });
    const url = `rsync://127.0.0.1:${port}/mod/`;
    t.match(await runClient(rsync, ['--contimeout=20', url]), /^ok [\s\S]*hello\.txt/);

    await daemon.waitForCount(isEvent('end', 'rsync'), 1); // its handler has left its slot
    // per_source = 1: a connection held open (rsync's greeting read) takes this source's one slot
    const held = connect(port, '127.0.0.1');
    await withDeadline(
      new Promise((resolve) => held.once('data', resolve)),
      20000,
      'the rsync greeting',
    );
    t.match(await runClient(rsync, ['--contimeout=20', url]), /^failed: /);
    t.match(await daemon.waitForLog(isEvent('refuse', 'rsync')), { reason: 'per-source' });
    held.destroy();
    await daemon.waitForCount(isEvent('end', 'rsync'), 2);
    t.match(
      await runClient(rsync, ['--contimeout=20', url]),
      /^ok [\s\S]*hello\.txt/,
      'the slot is free again',
    );

    t.match(
      await runClient(rsync, ['--contimeout=20', `rsync://127.0.0.1:${deniedPort}/mod/`]),
      /^failed: /,
    );
    t.match(await daemon.waitForLog(isEvent('refuse', 'rsync-denied')), { reason: 'denied' });

    // cps = 1 10: one connection per second (a bucket of 1); of three at once, two are refused
    const three = Array.from({ length: 3 }, () => connect(cpsPort, '127.0.0.1'));
    await daemon.waitForCount(isEvent('refuse', 'rsync-cps'), 2);
    t.same(
      daemon.records.filter(isEvent('refuse', 'rsync-cps')).map((r) => r.reason),
      ['rate', 'rate'],
    );
    for (const socket of three) socket.destroy();
    await daemon.waitForLog(isEvent('end', 'rsync-cps'));

    // a reload reads --xinetd-conf again, and the files it includes
    const addedPort = await freeTcpPort();
    writeFileSync(
      join(included, 'rsync-added'),
      service('rsync-added', addedPort, 'only_from = 127.0.0.1'),
    );
    const reloaded = await runCli(['reload', '--control', join(conf.dir, 'control.sock')]);
    t.equal(reloaded.code, 0, reloaded.stderr);
    t.match(reloaded.stdout, /rsync-added/);
    const added = await runClient(rsync, [
      '--contimeout=20',
      `rsync://127.0.0.1:${addedPort}/mod/`,
    ]);
    t.match(added, /^ok [\s\S]*hello\.txt/, 'the service added by the reload serves');
  },
);
