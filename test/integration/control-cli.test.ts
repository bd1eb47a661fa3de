import { randomBytes } from 'node:crypto';
import { chmodSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';
import {
  DaemonUnderTest,
  isEvent,
  exchange,
  isRoot,
  makeConfDir,
  withDeadline,
  runCli,
  type CliResult,
} from '../helpers/daemon.js';

/** Writes `data` on a fresh control connection; resolves with everything read until it closes. */
function converse(path: string, data: Buffer | string): Promise<string> {
  return withDeadline(
    new Promise((resolve, reject) => {
      const socket = connect(path);
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (c: string) => (text += c));
      socket.once('close', () => resolve(text));
      socket.once('error', (error: NodeJS.ErrnoException) =>
        error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error),
      );
      socket.once('connect', () => socket.end(data));
    }),
    15000,
    'the control conversation',
  );
}

t.test('without a daemon: exit 102 and one clear line', async (t) => {
  const conf = makeConfDir({});
  t.teardown(conf.cleanup);
  const path = join(conf.dir, 'control.sock');
  for (const args of [['status'], ['stop', 'x'], ['reload'], ['upgrade'], ['kill', 'x@1-y']]) {
    const result = await runCli([...args, '--control', path]);
    t.equal(
      result.stderr,
      `socketeer: fatal: daemon not reachable at ${path}: no such file or directory (ENOENT)\n`,
      args.join(' '),
    );
    t.equal(result.stdout, '');
    t.equal(result.code, 102);
  }
  const empty = await runCli(['status', '--control', '']);
  t.equal(empty.stderr, 'socketeer: fatal: --control: path must not be empty\n');
  t.equal(empty.code, 100);
});

t.test('against a running daemon', async (t) => {
  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const ctl = (...args: string[]): Promise<CliResult> => runCli([...args, '--control', control]);

  await t.test('the control socket is mode 0600', async (t) => {
    const stats = statSync(control);
    t.ok(stats.isSocket());
    t.equal(stats.mode & 0o777, 0o600);
    t.equal(stats.uid, process.getuid?.());
  });

  await t.test('an unknown service is exit 100 with its name', async (t) => {
    for (const verb of ['status', 'stop', 'start', 'quiesce', 'drain', 'kill']) {
      const result = await ctl(verb, 'nope');
      t.equal(result.stderr, 'socketeer: fatal: no service named nope\n', verb);
      t.equal(result.code, 100);
    }
  });

  await t.test('bad arguments are refused before the daemon is asked', async (t) => {
    const signal = await ctl('kill', 'echo', '--signal', 'NOPE');
    t.equal(signal.stderr, 'socketeer: fatal: --signal: unknown signal NOPE\n');
    t.equal(signal.code, 100);
    const timeout = await ctl('drain', 'echo', '--timeout', '-1');
    t.equal(timeout.stderr, 'socketeer: fatal: --timeout: must be 0 to 2147483 seconds\n');
    t.equal(timeout.code, 100);
    t.equal(await echo(daemon), 'ping\n', 'echo was not drained');
  });

  await t.test('kill with no running handler says so', async (t) => {
    const result = await ctl('kill', 'echo', '--signal', '15');
    t.equal(result.stdout, 'echo: no running handlers\n');
    t.equal(result.code, 0);
  });

  await t.test('1 MB of garbage and invalid JSON leave the daemon serving', async (t) => {
    const garbage = await converse(control, randomBytes(1024 * 1024));
    const codes = new Set(
      garbage
        .trim()
        .split('\n')
        .map((line) => errorCode(line)),
    );
    t.ok(codes.has('bad-request'), 'random lines are bad requests');
    t.same(
      [...codes].filter((c) => c !== 'bad-request' && c !== 'too-large'),
      [],
    );
    const long = await converse(control, Buffer.alloc(1024 * 1024, 'x'));
    t.equal(errorCode(long), 'too-large', 'one 1 MB line is too large');
    const invalid = await converse(
      control,
      '{"id":1,"cmd":\n[1,2]\n{"id":2,"cmd":"explode"}\n\u0000\n',
    );
    const replies = invalid
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { ok: boolean; error: { code: string } });
    t.equal(replies.length, 4);
    t.ok(replies.every((r) => !r.ok && r.error.code === 'bad-request'));
    const status = await ctl('status', 'echo');
    t.equal(status.code, 0);
    t.match(status.stdout, /echo +running/);
    t.equal(await echo(daemon), 'ping\n');

    // `status SERVICE` ends with the service's last records, as `systemctl status` does
    await daemon.waitForCount(isEvent('end', 'echo'), 1);
    const json = await ctl('status', 'echo', '--json');
    const recent = (
      JSON.parse(json.stdout) as {
        configDir: string;
        services: { recent: { time: string; event: string; fields: { conn?: string } }[] }[];
      }
    ).services[0]?.recent;
    const last = recent?.at(-1);
    t.equal(last?.event, 'end', 'the last record is the end of the last connection');
    t.ok((recent?.length ?? 0) >= 2 && (recent?.length ?? 0) <= 5, 'at most 5 kept');
    t.match(last?.fields, { conn: /^\d+-/, exitCode: 0 });
    const text = await ctl('status', 'echo');
    t.match(text.stdout, /\necho: last records\n(\S+ \S+.*\n)+$/);
    t.match(text.stdout, /\n\S+Z end conn=\S+ pid=\d+ exitCode=0 /);
    t.match(JSON.parse(json.stdout), { configDir: /^\// }, 'the config dir as an absolute path');
  });

  await t.test(
    "a non-root user cannot use a root daemon's control socket",
    { skip: isRoot ? false : 'needs root: the daemon runs as root and the client as nobody' },
    async (t) => {
      chmodSync(conf.dir, 0o755); // only the socket's own mode stands in the way
      const result = await runCli(
        ['status', '--control', control],
        ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'],
      );
      t.equal(
        result.stderr,
        `socketeer: fatal: daemon not reachable at ${control}: permission denied (EACCES)\n`,
      );
      t.equal(result.code, 102);
      if (loadNativeAddon() !== null) {
        chmodSync(control, 0o666); // now only the daemon's SO_PEERCRED check stands in the way
        const peer = await runCli(
          ['status', '--control', control],
          ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'],
        );
        t.equal(
          peer.stderr,
          `socketeer: fatal: ${control}: uid 65534 may not control this daemon (uid 0)\n`,
        );
        t.equal(peer.code, 102);
        await daemon.waitForLog((r) => r.event === 'control-refused' && r.code === 'forbidden');
      }
      t.equal((await ctl('status', 'echo')).code, 0, 'root still may');
      t.equal(await echo(daemon), 'ping\n');
    },
  );
});

async function echo(daemon: DaemonUnderTest): Promise<string> {
  return (await exchange(daemon.tcp('echo'), 'ping\n')).toString();
}

function errorCode(line: string): string {
  return (JSON.parse(line) as { error?: { code?: string } }).error?.code ?? 'none';
}
