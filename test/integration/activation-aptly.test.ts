// accept: false with the real `aptly api serve` (Debian aptly 1.5), the scenario of the blog post
// that made aptly take a systemd socket: a Unix socket with mode 0660 owned by an archive user
// and an archivesocket group, aptly started on the first request and run as that user, and
// systemd-socket-proxyd on TCP in front of it. aptly finds LISTEN_FDS itself (go-systemd's
// activation.Listeners: LISTEN_PID must be its pid, exactly one socket) and then ignores -listen.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  isEvent,
  isRoot,
  makeConfDir,
  runCli,
  withDeadline,
  type LogRecord,
} from '../helpers/daemon.js';

const aptly = '/usr/bin/aptly';
const proxyd = '/lib/systemd/systemd-socket-proxyd';
const curlPath = '/usr/bin/curl';

const noAptly = existsSync(aptly) ? false : 'aptly is not installed (apt-get install aptly)';
const noProxyd = existsSync(proxyd) ? false : 'systemd-socket-proxyd is not installed (systemd)';
const rootOnly = isRoot ? false : 'needs root (an archive user and group, chown, a user switch)';

/** What `/api/version` answers: `{"Version":"1.5.0+ds1-1+b4"}`, from `aptly version`. */
const versionJson = (): string => {
  const text = execFileSync(aptly, ['version'], { encoding: 'utf8' });
  return JSON.stringify({ Version: /^aptly version: (\S+)/m.exec(text)?.[1] ?? '?' });
};

type Target = { host: string; port: number } | { path: string };

/**
 * GET /api/version through curl: `200 BODY`, or what went wrong (`curl failed: …`), with curl's
 * `Immediate connect fail for PATH: REASON` when connect(2) itself failed (refused, no such
 * file): a "Couldn't connect" without it is a connection that was made and then closed by the
 * other end before curl had sent its request.
 */
function getVersion(target: Target): Promise<string> {
  const url =
    'path' in target
      ? ['--unix-socket', target.path, 'http://x/api/version']
      : [`http://${target.host}:${target.port}/api/version`];
  return new Promise((resolve) => {
    execFile(
      curlPath,
      ['-v', '-sS', '--max-time', '20', '-w', ' %{http_code}', ...url],
      (error, stdout, stderr) => {
        if (error !== null) {
          const said = stderr
            .split('\n')
            .filter((l) => /^(\* Immediate connect fail|curl:)/.test(l));
          return resolve(`curl failed: ${said.join(' ') || error.message}`);
        }
        const space = stdout.lastIndexOf(' ');
        resolve(`${stdout.slice(space + 1)} ${stdout.slice(0, space)}`);
      },
    );
  });
}

interface Archive {
  /** The blog's `archive` user and `archivesocket` group, when root; else nothing. */
  readonly user?: { name: string; uid: number };
  readonly group?: { name: string; gid: number };
  readonly remove: () => void;
}

/** The archive user and the archivesocket group, made for one test (root only). */
function makeArchive(): Archive {
  if (!isRoot) return { remove: () => undefined };
  const name = `skarch${process.pid % 100000}`;
  const group = `skasock${process.pid % 100000}`;
  spawnSync('groupadd', [group]);
  spawnSync('useradd', ['-M', '-N', '-g', 'nogroup', '-s', '/bin/sh', name]);
  const uid = Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(
    spawnSync('getent', ['group', group], { encoding: 'utf8' }).stdout.split(':')[2],
  );
  return {
    user: { name, uid },
    group: { name: group, gid },
    remove: () => {
      spawnSync('pkill', ['-KILL', '-u', name]);
      spawnSync('userdel', [name]);
      spawnSync('groupdel', [group]);
    },
  };
}

/**
 * A conf.d with aptly.json (and aptly-proxy.json when `withProxy`), aptly's config file with a
 * rootDir of its own, and a daemon serving them; all removed by the test's teardown.
 */
async function serveAptly(
  t: Test,
  front: 'proxyd' | 'proxy' | null,
): Promise<{ daemon: DaemonUnderTest; sock: string; control: string; archive: Archive }> {
  const conf = makeConfDir({});
  const archive = makeArchive();
  chmodSync(conf.dir, 0o755); // aptly and the proxy run as other users under a root daemon
  const rootDir = join(conf.dir, 'aptly');
  mkdirSync(rootDir);
  if (archive.user !== undefined) chownSync(rootDir, archive.user.uid, 0);
  const aptlyConf = join(conf.dir, 'aptly.conf');
  writeFileSync(aptlyConf, JSON.stringify({ rootDir }));
  const sock = join(conf.dir, 'aptly.sock');
  writeFileSync(
    join(conf.confDir, 'aptly.json'),
    JSON.stringify({
      listen: `unix:${sock}`,
      exec: [aptly, 'api', 'serve', `-config=${aptlyConf}`],
      accept: false,
      cwd: rootDir,
      ...(archive.user === undefined ? {} : { user: archive.user.name }),
      socket: {
        mode: '0660',
        ...(archive.user === undefined ? {} : { user: archive.user.name }),
        ...(archive.group === undefined ? {} : { group: archive.group.name }),
      },
    }),
  );
  if (front === 'proxy')
    writeFileSync(
      join(conf.confDir, 'aptly-tcp.json'),
      JSON.stringify({ listen: 'tcp:127.0.0.1:0', proxy: `unix:${sock}` }),
    );
  if (front === 'proxyd') {
    writeFileSync(
      join(conf.confDir, 'aptly-proxy.json'),
      JSON.stringify({
        listen: 'tcp:127.0.0.1:0',
        exec: [proxyd, sock],
        accept: false,
        // as root it runs as nobody: the socket's group lets it in
        ...(archive.group === undefined ? {} : { groups: [archive.group.name] }),
      }),
    );
  }
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  t.teardown(async () => {
    await daemon.stop();
    archive.remove();
    conf.cleanup();
  });
  return { daemon, sock, control, archive };
}

const activations = (daemon: DaemonUnderTest, service: string): LogRecord[] =>
  daemon.records.filter(isEvent('activate', service));

t.test(
  'aptly api serve on a Unix socket 0660, started by the first request',
  { skip: noAptly },
  async (t) => {
    const { daemon, sock, control, archive } = await serveAptly(t, null);
    const ok = `200 ${versionJson()}`;
    const stat = statSync(sock);
    t.equal(stat.mode & 0o777, 0o660, 'SocketMode=0660');
    t.same(activations(daemon, 'aptly'), [], 'nothing runs before a request');

    // the first requests: a burst of 20 before aptly runs, all waiting in the backlog
    const burst = await Promise.all(Array.from({ length: 20 }, () => getVersion({ path: sock })));
    t.same(
      burst,
      Array.from({ length: 20 }, () => ok),
    );
    const started = activations(daemon, 'aptly');
    t.equal(started.length, 1, 'one aptly for the whole burst');
    t.match(started[0], { trigger: 'demand', fds: [`3=unix:${sock}`] });
    const pid = started[0]?.pid as number;
    await t.test('SocketUser, SocketGroup and the user aptly runs as', { skip: rootOnly }, (t) => {
      t.same(
        { uid: stat.uid, gid: stat.gid },
        { uid: archive.user?.uid, gid: archive.group?.gid },
        'SocketUser=archive, SocketGroup=archivesocket',
      );
      t.equal(statSync(`/proc/${pid}`).uid, archive.user?.uid, 'aptly runs as the archive user');
      t.end();
    });

    // killed while idle: it comes back, and the next request is answered
    process.kill(pid, 'SIGKILL');
    await daemon.waitForLog(
      (r) => isEvent('end', 'aptly')(r) && r.signal === 'SIGKILL' && r.pid === pid,
    );
    t.equal(await getVersion({ path: sock }), ok);
    await daemon.waitForCount(isEvent('activate', 'aptly'), 2);
    const second = activations(daemon, 'aptly')[1];
    t.match(second, { trigger: 'restart' }, 'restart: on-failure (the default) after a SIGKILL');
    t.not(second?.pid, pid, 'a new aptly');

    // quiesce under a loop of requests: the next one starts a new aptly, and none is lost but
    // what aptly itself had accepted: socket-activated, aptly 1.5 serves with http.Serve and no
    // signal handler (cmd/api_serve.go), so SIGTERM ends it at once and resets a request in
    // flight. Such a reset may only hit a request that started before that aptly ended.
    let isLooping = true;
    const failures: { readonly got: string; readonly startedAt: number }[] = [];
    let served = 0;
    const loop = async (): Promise<void> => {
      while (isLooping) {
        const startedAt = Date.now();
        const got = await getVersion({ path: sock });
        if (got === ok) served += 1;
        else failures.push({ got, startedAt });
      }
    };
    const loops = [loop(), loop()];
    const quiesced = await runCli(['quiesce', 'aptly', '--control', control]);
    t.equal(quiesced.code, 0, quiesced.stderr);
    await daemon.waitForCount(isEvent('activate', 'aptly'), 3);
    const before = served;
    await withDeadline(
      (async () => {
        while (served < before + 20) await getVersion({ path: sock });
      })(),
      60000,
      'requests after the quiesce',
    );
    isLooping = false;
    await Promise.all(loops);
    const ended = await daemon.waitForLog(
      (r) => isEvent('end', 'aptly')(r) && r.pid === second?.pid,
    );
    const endedAt = Date.parse(String(ended.time));
    // A request aptly had accepted when it died is reset (aptly's own behaviour): curl says
    // "Recv failure" or "Empty reply" once it had sent the request, and "Couldn't connect" (its
    // connect(2) succeeded, then poll saw the other end closed) when aptly accepted it a moment
    // before curl sent it. Only a request that started before that aptly ended, at most two; a
    // connect(2) that fails (curl's "Immediate connect fail") is never allowed.
    const inFlight =
      /^curl failed: curl: \((56|52|7)\) (Recv failure|Empty reply|Failed to connect)/;
    const unexcused = failures.filter((f) => !(inFlight.test(f.got) && f.startedAt <= endedAt));
    t.same(unexcused, [], 'no request lost across the quiesce but one aptly had in flight');
    t.ok(failures.length <= 2, `at most two in flight: ${JSON.stringify(failures)}`);
    if (failures.length > 0)
      t.comment(`failed in flight at aptly's exit: ${JSON.stringify(failures)}`);
    t.match(activations(daemon, 'aptly')[2], { trigger: 'demand' }, 'the next request started it');
  },
);

/** 20 requests at once, half through the TCP front, half on aptly's socket: one aptly answers all. */
async function burstBothWays(
  t: Test,
  on: { daemon: DaemonUnderTest; tcp: Target; sock: string; ok: string },
): Promise<void> {
  const { daemon, tcp, sock, ok } = on;
  const burst = await Promise.all(
    Array.from({ length: 20 }, (_, i) => getVersion(i % 2 === 0 ? tcp : { path: sock })),
  );
  t.same(
    burst,
    Array.from({ length: 20 }, () => ok),
  );
  t.equal(activations(daemon, 'aptly').length, 1, 'the one aptly serves both ways');
}

t.test(
  'systemd-socket-proxyd on TCP in front of aptly: the first TCP request starts both',
  { skip: noAptly || noProxyd },
  async (t) => {
    const { daemon, sock } = await serveAptly(t, 'proxyd');
    const ok = `200 ${versionJson()}`;
    const tcp = daemon.tcp('aptly-proxy');
    t.same([...activations(daemon, 'aptly'), ...activations(daemon, 'aptly-proxy')], []);
    t.equal(await getVersion(tcp), ok, 'through the proxy');
    t.match(activations(daemon, 'aptly-proxy'), [
      { trigger: 'demand', fds: [`3=tcp:127.0.0.1:${tcp.port}`] },
    ]);
    t.match(activations(daemon, 'aptly'), [{ trigger: 'demand', fds: [`3=unix:${sock}`] }]);

    await burstBothWays(t, { daemon, tcp, sock, ok });
    t.equal(activations(daemon, 'aptly-proxy').length, 1);
  },
);

t.test(
  'a proxy service on TCP in front of aptly: the first TCP request starts aptly, no process per connection',
  { skip: noAptly },
  async (t) => {
    const { daemon, sock } = await serveAptly(t, 'proxy');
    const ok = `200 ${versionJson()}`;
    const tcp = daemon.tcp('aptly-tcp');
    t.same(activations(daemon, 'aptly'), [], 'nothing runs before a request');
    t.equal(await getVersion(tcp), ok, 'through the proxy');
    t.match(activations(daemon, 'aptly'), [{ trigger: 'demand', fds: [`3=unix:${sock}`] }]);
    await burstBothWays(t, { daemon, tcp, sock, ok });
    await daemon.waitForCount(isEvent('end', 'aptly-tcp'), 11);
    const ends = daemon.records.filter(isEvent('end', 'aptly-tcp'));
    t.equal(ends.length, 11, 'one end record per proxied request');
    t.ok(
      ends.every((r) => r.pid === null && (r.bytesToClient as number) > 0),
      'each with the bytes it carried and no pid',
    );
  },
);
