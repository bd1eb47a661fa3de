import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { bindFailure } from '../../src/listen/bind.js';
import t from 'tap';
import {
  DaemonUnderTest,
  cleanEnv,
  cli,
  exchange,
  isRoot,
  makeConfDir,
  root,
  withDeadline,
} from '../helpers/daemon.js';

/** Runs the built CLI to completion; stdout, stderr and exit code together. */
function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(
    '/usr/bin/env',
    [
      '-i',
      ...Object.entries(cleanEnv()).map(([k, v]) => `${k}=${v}`),
      process.execPath,
      cli,
      ...args,
    ],
    {
      encoding: 'utf8',
      timeout: 30000,
    },
  );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

t.test('check passes on the shipped conf.d and prints every service with defaults', async (t) => {
  const result = run(['check', '--config-dir', join(root, 'conf.d')]);
  t.equal(
    result.stderr,
    `${join(root, 'conf.d')}/user-echo@.json: /: note: template with no instance: it serves nothing by itself\n`,
  );
  t.equal(result.code, 0);
  const printed = JSON.parse(result.stdout) as {
    services: Record<string, Record<string, unknown>>;
  };
  t.same(Object.keys(printed.services).sort(), ['daytime', 'echo', 'env', 'http-unix']);
  t.match(printed.services.echo, {
    program: '/usr/bin/cat',
    stderr: 'log',
    disabled: false,
    socket: { mode: '0666', backlog: 511 },
  });
});

t.test('every kind of bad service file: exact message, all at once, exit 100', async (t) => {
  const conf = makeConfDir({
    'a-syntax.json': '{\n  "listen": "tcp:127.0.0.1:0",\n}\n',
    'b-unknown-key.json': { listen: 'tcp:127.0.0.1:0', exec: ['true'], socket: { mdoe: '0600' } },
    'c-wrong-type.json': { listen: 'tcp:127.0.0.1:0', exec: 'true', disabled: 'no' },
    'd-first.json': { listen: 'tcp:127.0.0.1:7999', exec: ['true'] },
    'e-second.json': { listen: ['tcp:127.0.0.1:7998', 'tcp:127.0.0.1:7999'], exec: ['true'] },
    'f-unknown-user.json': { listen: 'tcp:127.0.0.1:0', exec: ['true'], user: 'no-such-user-here' },
    'g-bad-listen.json': {
      listen: ['tcp:localhost:80', 'sctp:53', 'unix:relative.sock'],
      exec: ['true'],
    },
    'h-no-program.json': { listen: 'tcp:127.0.0.1:0', exec: ['no-such-program-anywhere'] },
    'i-missing.json': { exec: ['true'], stderr: 'journal' },
    'README.txt': 'not a service file',
    '.hidden.json': 'not read',
    'backup.json~': 'not read',
  });
  t.teardown(conf.cleanup);
  const result = run(['check', '--config-dir', conf.confDir]);
  const d = conf.confDir;
  t.equal(result.stdout, '');
  t.equal(
    result.stderr,
    [
      `${d}/a-syntax.json: /: invalid JSON: Expected double-quoted property name (line 3, column 1)`,
      `${d}/b-unknown-key.json: /socket/mdoe: unknown key (did you mean mode?)`,
      `${d}/c-wrong-type.json: /disabled: must be boolean`,
      `${d}/c-wrong-type.json: /exec: must be array`,
      `${d}/f-unknown-user.json: /user: unknown user "no-such-user-here"`,
      `${d}/g-bad-listen.json: /listen/0: "tcp:localhost:80": "localhost" is not an IPv4 address (write IPv6 as [::1])`,
      `${d}/g-bad-listen.json: /listen/1: "sctp:53": expected tcp:HOST:PORT, tcp:[V6]:PORT, tcp:PORT, udp:HOST:PORT, udp:[V6]:PORT, udp:PORT, unix:/abs/path or unix:@name`,
      `${d}/g-bad-listen.json: /listen/2: "unix:relative.sock": the path must be absolute`,
      `${d}/h-no-program.json: /exec/0: "no-such-program-anywhere" not found on PATH (${process.env.PATH})`,
      `${d}/i-missing.json: /listen: is required`,
      `${d}/i-missing.json: /stderr: must be one of "log", "socket", "null"`,
      `${d}/e-second.json: /listen/1: tcp:127.0.0.1:7999 is also used by ${d}/d-first.json (/listen)`,
      `socketeer: fatal: 12 problems in ${d}; nothing was started`,
      '',
    ].join('\n'),
  );
  t.equal(result.code, 100);
  const serve = run(['serve', '--config-dir', conf.confDir]);
  t.equal(serve.code, 100, 'serve refuses the same configuration');
  t.equal(serve.stdout, '');
});

t.test('usage and environment errors', async (t) => {
  const noCommand = run([]);
  t.equal(noCommand.code, 100);
  t.match(noCommand.stderr, /socketeer: fatal: a command is required \(see socketeer --help\)\n$/);
  const unknown = run(['check', '--frobnicate']);
  t.equal(unknown.code, 100);
  t.match(
    unknown.stderr,
    /socketeer: fatal: unknown argument: --frobnicate \(see socketeer --help\)\n$/,
  );
  // no yargs internals (its camelCase twin of each flag), and a near miss is named
  const typo = run(['check', '--config-dri', '/nonexistent/conf.d']);
  t.equal(typo.code, 100);
  t.equal(
    typo.stderr,
    'socketeer: fatal: unknown argument: --config-dri (did you mean --config-dir?) (see socketeer --help)\n',
  );
  const command = run(['stauts']);
  t.equal(
    command.stderr,
    'socketeer: fatal: unknown argument: stauts (did you mean status?) (see socketeer --help)\n',
  );
  const notNumber = run(['serve', '--config-dir', '/nonexistent/conf.d', '--kill-grace', 'soon']);
  t.equal(notNumber.code, 100);
  t.match(notNumber.stderr, /--kill-grace: not a number: must be a number of seconds, 0 or more/);
  const missingDir = run(['check', '--config-dir', '/nonexistent/conf.d']);
  t.equal(
    missingDir.stderr,
    'socketeer: fatal: unable to read config dir /nonexistent/conf.d: no such file or directory (ENOENT)\n',
  );
  t.equal(missingDir.code, 100);
  const version = run(['--version']);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  t.equal(version.stdout, `${pkg.version}\n`);
  t.equal(version.code, 0);
  const help = run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /socketeer serve +run the daemon in the foreground/);
});

t.test('an address in use is a temporary failure: exit 111', async (t) => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const conf = makeConfDir({ 'taken.json': { listen: `tcp:127.0.0.1:${port}`, exec: ['true'] } });
  t.teardown(conf.cleanup);
  const result = await withDeadline(
    Promise.resolve(run(['serve', '--config-dir', conf.confDir, '--log-format', 'text'])),
    30000,
    'serve',
  );
  t.equal(result.stdout, '');
  t.match(
    result.stderr,
    `socketeer: fatal: unable to bind tcp:127.0.0.1:${port}: address already in use (EADDRINUSE)\n`,
  );
  t.equal(result.code, 111);
});

t.test('every address that cannot be bound is reported at once; nothing starts', async (t) => {
  const blockers = [createServer(), createServer()];
  for (const b of blockers) await new Promise<void>((resolve) => b.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blockers.forEach((b) => b.close()));
  const [one, two] = blockers.map((b) => (b.address() as { port: number }).port);
  const conf = makeConfDir({
    'a.json': { listen: ['tcp:127.0.0.1:0', `tcp:127.0.0.1:${one}`], exec: ['true'] },
    'b.json': { listen: `tcp:127.0.0.1:${two}`, exec: ['true'] },
  });
  t.teardown(conf.cleanup);
  const result = run(['serve', '--config-dir', conf.confDir, '--log-format', 'text']);
  t.equal(result.stdout, '', 'never ready');
  t.match(
    result.stderr,
    `unable to bind tcp:127.0.0.1:${one}: address already in use (EADDRINUSE)\n` +
      `unable to bind tcp:127.0.0.1:${two}: address already in use (EADDRINUSE)\n` +
      'socketeer: fatal: 2 addresses could not be bound; nothing was started\n',
  );
  t.equal(result.code, 111);
});

t.test('EACCES on a port below 1024 says what would allow it', async (t) => {
  const low = bindFailure(
    { kind: 'tcp', host: '127.0.0.1', port: 80 },
    'permission denied (EACCES)',
  );
  t.match(
    low.message,
    /^unable to bind tcp:127\.0\.0\.1:80: permission denied \(EACCES\) \(ports below 1024 need root or CAP_NET_BIND_SERVICE/,
  );
  const high = bindFailure(
    { kind: 'tcp', host: '127.0.0.1', port: 8080 },
    'permission denied (EACCES)',
  );
  t.equal(high.message, 'unable to bind tcp:127.0.0.1:8080: permission denied (EACCES)');
});

t.test('a live Unix socket at the path is never taken over; a stale one is replaced', async (t) => {
  const conf = makeConfDir({});
  t.teardown(conf.cleanup);
  const path = join(conf.dir, 'live.sock');
  const live: Server = createServer();
  await new Promise<void>((resolve) => live.listen(path, resolve));
  t.teardown(() => live.close());
  const confLive = makeConfDir({ 'live.json': { listen: `unix:${path}`, exec: ['true'] } });
  t.teardown(confLive.cleanup);
  const refused = run(['serve', '--config-dir', confLive.confDir, '--log-format', 'text']);
  t.equal(
    refused.stderr.split('\n').at(-2),
    `socketeer: fatal: unable to bind unix:${path}: a live socket is already at that path (EADDRINUSE)`,
  );
  t.equal(refused.code, 111);
  const blocker = join(conf.dir, 'file-in-the-way');
  const confFile = makeConfDir({ 'file.json': { listen: `unix:${blocker}`, exec: ['true'] } });
  t.teardown(confFile.cleanup);
  spawnSync('touch', [blocker]);
  const inTheWay = run(['serve', '--config-dir', confFile.confDir, '--log-format', 'text']);
  t.equal(
    inTheWay.stderr.split('\n').at(-2),
    `socketeer: fatal: unable to bind unix:${blocker}: a file that is not a socket is at that path (EEXIST)`,
  );
  t.equal(inTheWay.code, 111);

  const stale = join(conf.dir, 'stale.sock');
  spawnSync('python3', [
    '-c',
    'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
    stale,
  ]);
  t.ok(lstatSync(stale).isSocket(), 'a socket nobody listens on');
  const confStale = makeConfDir({
    'stale.json': { listen: `unix:${stale}`, exec: ['echo', 'replaced'] },
  });
  t.teardown(confStale.cleanup);
  const daemon = await DaemonUnderTest.start(confStale.confDir);
  t.equal((await exchange({ path: stale }, null)).toString(), 'replaced\n');
  t.same(await daemon.stop(), { code: 0, signal: null });
  t.notOk(existsSync(stale), 'removed at shutdown');
});

t.test(
  'a control socket directory another user owns is refused',
  { skip: isRoot ? false : 'needs root to make a directory owned by nobody' },
  async (t) => {
    const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
    t.teardown(conf.cleanup);
    const foreign = join(conf.dir, 'theirs');
    mkdirSync(foreign, { mode: 0o755 });
    chownSync(foreign, 65534, 65534);
    const result = run([
      'serve',
      '--config-dir',
      conf.confDir,
      '--control',
      join(foreign, 'control.sock'),
      '--log-format',
      'text',
    ]);
    t.equal(result.stdout, '');
    t.equal(
      result.stderr.split('\n').at(-2),
      `socketeer: fatal: unable to bind control socket in ${foreign}: the directory is not safe (owned by uid 65534, mode 0755); pass --control PATH`,
    );
    t.equal(result.code, 111);
  },
);
