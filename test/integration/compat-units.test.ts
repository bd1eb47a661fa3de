// inetd.conf and systemd units read as they are, with real programs: a `udp wait` in.tftpd line
// driven by tftp and a tcp nowait git daemon line, a git-daemon.socket + git-daemon@.service pair
// driven by git ls-remote, an aptly.socket + aptly.service pair driven by curl; then `convert`
// of the same files, written into a conf.d as JSON, gives the same services.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DaemonUnderTest, isEvent, isRoot, makeConfDir, runCli } from '../helpers/daemon.js';
import {
  freeTcpPort,
  freeUdpPort,
  git,
  lsRemote,
  makeGitRepo,
  missing,
  noGit,
  runClient,
  self,
} from '../helpers/compat.js';

const tftpd = '/usr/sbin/in.tftpd';
const tftp = '/usr/bin/tftp';
const aptly = '/usr/bin/aptly';
const curl = '/usr/bin/curl';
const noTftp = missing(tftpd, 'tftpd-hpa') || missing(tftp, 'tftp-hpa');
const rootOnly = isRoot ? false : 'in.tftpd -s chroots: needs root';
const noAptly = missing(aptly, 'aptly') || missing(curl, 'curl');

/** A conf.d with every foreign file of this test, and what drives each. */
async function writeUnits(conf: ReturnType<typeof makeConfDir>) {
  chmodSync(conf.dir, 0o755); // in.tftpd drops to nobody, aptly may run as another user
  const head = makeGitRepo(conf.dir);
  const { user } = self();
  const [tftpPort, gitPort, unitPort] = [
    await freeUdpPort(),
    await freeTcpPort(),
    await freeTcpPort(),
  ];
  const tftpRoot = join(conf.dir, 'tftp');
  mkdirSync(tftpRoot);
  const blob = randomBytes(200000);
  writeFileSync(join(tftpRoot, 'blob'), blob);
  const daemonArgs = `daemon --inetd --export-all --base-path=${conf.dir}`;
  const tftpLine = isRoot
    ? `127.0.0.1:${tftpPort}\tdgram\tudp\twait\troot\t${tftpd}\tin.tftpd -s ${tftpRoot} -u nobody -t 1\n`
    : '';
  writeFileSync(
    join(conf.confDir, 'inetd.conf'),
    `# inetd.conf\n${tftpLine}127.0.0.1:${gitPort}\tstream\ttcp\tnowait.600\t${user}\t${git}\tgit ${daemonArgs}\n`,
  );
  writeFileSync(
    join(conf.confDir, 'git-daemon.socket'),
    `[Unit]\nDescription=Git Activation Socket\n\n[Socket]\nListenStream=127.0.0.1:${unitPort}\nAccept=yes\n\n[Install]\nWantedBy=sockets.target\n`,
  );
  writeFileSync(
    join(conf.confDir, 'git-daemon@.service'),
    `[Unit]\nDescription=Git Repositories Server Daemon\nDocumentation=man:git-daemon(1)\n\n[Service]\nUser=${user}\nExecStart=-${git} daemon --inetd \\\n  --export-all "--base-path=${conf.dir}"\nStandardInput=socket\nStandardError=journal\n`,
  );
  const sock = join(conf.dir, 'aptly.sock');
  const aptlyConf = join(conf.dir, 'aptly.conf');
  mkdirSync(join(conf.dir, 'aptly'));
  writeFileSync(aptlyConf, JSON.stringify({ rootDir: join(conf.dir, 'aptly') }));
  writeFileSync(
    join(conf.confDir, 'aptly.socket'),
    `[Socket]\nListenStream=${sock}\nSocketMode=0660\nRemoveOnStop=yes\n`,
  );
  const envFile = join(conf.dir, 'aptly.env');
  writeFileSync(envFile, '# aptly\nGIN_MODE="release"\n');
  writeFileSync(
    join(conf.confDir, 'aptly.service'),
    `[Service]\nExecStart=${aptly} api serve -config=\${CONF}\nEnvironment=CONF=${aptlyConf}\nEnvironmentFile=${envFile}\nWorkingDirectory=${conf.dir}\nUser=${user}\nRestart=on-failure\n`,
  );
  return { head, tftpPort, gitPort, unitPort, sock, blob, tftpRoot };
}

const refs = (head: string) => `ok ${head}\tHEAD\n${head}\trefs/heads/main\n`;

t.test(
  'inetd.conf and systemd units served, each driven by its real client',
  { skip: noGit || noAptly },
  async (t) => {
    const conf = makeConfDir({});
    const units = await writeUnits(conf);
    const daemon = await DaemonUnderTest.start(conf.confDir);
    t.teardown(async () => {
      await daemon.stop();
      conf.cleanup();
    });
    t.same(daemon.addresses.get(String(units.gitPort)), [`tcp:127.0.0.1:${units.gitPort}`]);
    t.equal(await lsRemote(units.gitPort, 'repo.git'), refs(units.head), 'inetd.conf: tcp nowait');
    t.equal(
      await lsRemote(units.unitPort, 'repo.git'),
      refs(units.head),
      'git-daemon.socket + git-daemon@.service',
    );
    t.match(await daemon.waitForLog(isEvent('accept', 'git-daemon')), { service: 'git-daemon' });

    const version = await runClient(curl, [
      '-sS',
      '--max-time',
      '20',
      '--unix-socket',
      units.sock,
      'http://x/api/version',
    ]);
    t.match(version, /^ok \{"Version":"[^"]+"\}$/, 'aptly.socket + aptly.service');
    t.match(await daemon.waitForLog(isEvent('activate', 'aptly')), {
      trigger: 'demand',
      fds: [`3=unix:${units.sock}`],
    });

    await t.test(
      'in.tftpd from a `udp wait` line, driven by tftp',
      { skip: noTftp || rootOnly },
      async (t) => {
        const name = String(units.tftpPort);
        t.same(daemon.addresses.get(name), [`udp:127.0.0.1:${units.tftpPort}`]);
        const local = join(conf.dir, 'got');
        const got = await runClient(tftp, [
          '-m',
          'binary',
          '127.0.0.1',
          name,
          '-c',
          'get',
          'blob',
          local,
        ]);
        t.match(got, /^ok/);
        t.ok(readFileSync(local).equals(units.blob), 'the same bytes');
        t.match(await daemon.waitForLog(isEvent('activate', name)), {
          fds: [`0=udp:127.0.0.1:${units.tftpPort}`, `1=udp:127.0.0.1:${units.tftpPort}`],
        });
      },
    );
  },
);

t.test(
  'convert: its JSON in a conf.d defines the same services',
  { skip: noGit || noAptly },
  async (t) => {
    const conf = makeConfDir({});
    t.teardown(conf.cleanup);
    const { gitPort, tftpPort } = await writeUnits(conf);
    const converted = await runCli(['convert', '--config-dir', conf.confDir]);
    t.equal(converted.code, 0, converted.stderr);
    t.match(
      converted.stderr,
      `${join(conf.confDir, 'git-daemon.socket')}:9: WantedBy: note: accepted, no effect`,
    );
    const files = JSON.parse(converted.stdout) as Record<string, { env?: unknown; exec?: unknown }>;
    t.same(files['aptly.json']?.env, { CONF: join(conf.dir, 'aptly.conf'), GIN_MODE: 'release' });
    t.same(files['aptly.json']?.exec, [
      aptly,
      'api',
      'serve',
      `-config=${join(conf.dir, 'aptly.conf')}`,
    ]);
    t.same(
      Object.keys(files).sort(),
      [
        'aptly.json',
        'git-daemon.json',
        `${gitPort}.json`,
        ...(isRoot ? [`${tftpPort}.json`] : []),
      ].sort(),
    );
    const json = makeConfDir(files);
    t.teardown(json.cleanup);
    const effective = async (dir: string) => {
      const shown = await runCli(['check', '--config-dir', dir]);
      t.equal(shown.code, 0, shown.stderr);
      const { services } = JSON.parse(shown.stdout) as {
        services: Record<string, Record<string, unknown>>;
      };
      return Object.fromEntries(
        Object.entries(services).map(
          ([name, { file: _file, files: _files, sources: _sources, ...rest }]) => [name, rest],
        ),
      );
    };
    const [fromForeign, fromJson] = [await effective(conf.confDir), await effective(json.confDir)];
    t.equal(Object.keys(fromForeign).length, isRoot ? 4 : 3);
    t.same(fromJson, fromForeign);
  },
);
