// Logs for journald and syslog: `<N>` priority prefixes when stderr is the JOURNAL_STREAM,
// `--log-target syslog` datagrams on a real Unix datagram socket, and fatal errors as records.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  DaemonUnderTest,
  cleanEnv,
  cli,
  exchange,
  makeConfDir,
  withDeadline,
} from '../helpers/daemon.js';
import { DatagramSink } from '../helpers/dgram-sink.js';

const severity: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };

/** Runs the command with JOURNAL_STREAM set to its own stderr's device:inode, as systemd does. */
const asJournal = [
  'sh',
  '-c',
  'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"',
  'sh',
];

/** Resolves once the daemon's stderr so far matches `pattern`. */
function waitForStderr(daemon: DaemonUnderTest, pattern: RegExp): Promise<void> {
  return withDeadline(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (!pattern.test(daemon.stderrText)) return;
        daemon.child.stderr?.off('data', check);
        resolve();
      };
      daemon.child.stderr?.on('data', check);
      check();
    }),
    30000,
    `stderr matching ${pattern}`,
  );
}

/** One bad request on the control socket: the daemon logs `control-bad-request` (warn). */
function sendBadControlRequest(path: string): Promise<void> {
  return withDeadline(
    new Promise<void>((resolve, reject) => {
      const socket = connect(path, () => socket.write('nonsense\n'));
      socket.on('data', () => socket.end());
      socket.on('close', () => resolve());
      socket.on('error', reject);
    }),
    30000,
    'a control reply',
  );
}

t.test('stderr is the journal stream: every record has its <N> priority', async (t) => {
  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const daemon = await DaemonUnderTest.start(conf.confDir, [], cleanEnv(), asJournal);
  t.teardown(() => daemon.stop());

  // the daemon's JOURNAL_STREAM names the stream it got as stderr (a socket, as journald's is)
  const environ = readFileSync(`/proc/${daemon.pid}/environ`, 'utf8').split('\0');
  const given = environ.find((v) => v.startsWith('JOURNAL_STREAM='))?.slice(15);
  const stat = statSync(`/proc/${daemon.pid}/fd/2`, { bigint: true });
  t.equal(given, `${stat.dev}:${stat.ino}`);

  t.equal((await exchange(daemon.tcp('echo'), 'hi\n')).toString(), 'hi\n');
  await sendBadControlRequest(join(conf.dir, 'control.sock'));
  writeFileSync(join(conf.confDir, 'broken.json'), '{');
  daemon.child.kill('SIGHUP');
  await waitForStderr(daemon, /"event":"end"/);
  await waitForStderr(daemon, /"event":"control-bad-request"/);
  await waitForStderr(daemon, /"event":"reload-failed"/);

  const lines = daemon.stderrText.split('\n').filter((l) => l !== '');
  const levels = new Set<string>();
  for (const line of lines) {
    const m = /^<(\d)>(\{.*\})$/.exec(line);
    if (m === null) {
      t.fail(`a line without a priority prefix: ${line}`);
      continue;
    }
    const record = JSON.parse(m[2] ?? '') as { level: string };
    levels.add(record.level);
    if (Number(m[1]) !== severity[record.level]) t.fail(`${line}: wrong priority`);
  }
  t.ok(levels.has('error') && levels.has('warn') && levels.has('info'), [...levels].join(' '));
  t.match(daemon.stderrText, /^<4>\{.*"event":"control-bad-request"/m);
  t.match(daemon.stderrText, /^<3>\{.*"event":"reload-failed"/m);
  t.match(daemon.stderrText, /^<6>\{.*"event":"end","service":"echo"/m);
});

t.test('a JOURNAL_STREAM that is not stderr (redirected): no prefixes', async (t) => {
  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const daemon = await DaemonUnderTest.start(conf.confDir, [], cleanEnv({ JOURNAL_STREAM: '1:2' }));
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((r) => r.event === 'ready');
  t.match(daemon.stderrText, /^\{"time"/);
  t.notMatch(daemon.stderrText, /^</m);
});

t.test(
  'a fatal error is a JSON record under --log-format json, with <3> under the journal',
  async (t) => {
    const conf = makeConfDir({ 'bad.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'], nope: 1 } });
    t.teardown(conf.cleanup);
    const file = join(conf.confDir, 'bad.json');
    const serve = (format: string, wrapper: string[]): { stderr: string; code: number | null } => {
      const control = join(conf.dir, 'control.sock');
      const args = [
        'serve',
        '--config-dir',
        conf.confDir,
        '--control',
        control,
        '--log-format',
        format,
      ];
      const result = spawnSync(
        wrapper[0] ?? process.execPath,
        [...wrapper.slice(1), process.execPath, cli, ...args],
        {
          encoding: 'utf8',
          env: cleanEnv(),
          timeout: 30000,
        },
      );
      return { stderr: result.stderr, code: result.status };
    };
    const problem = `${file}: /nope: unknown key`;
    const json = serve('json', ['/usr/bin/env']);
    t.equal(json.code, 100);
    const record = JSON.parse(json.stderr) as Record<string, unknown>;
    t.match(record, {
      level: 'error',
      event: 'fatal',
      error: `1 problem in ${conf.confDir}; nothing was started`,
      exitCode: 100,
    });
    t.equal((record.problems as string[]).length, 1);
    t.ok((record.problems as string[])[0]?.startsWith(problem), String(record.problems));
    t.equal(json.stderr.split('\n').length, 2, 'one line');

    const journal = serve('json', asJournal);
    t.match(
      journal.stderr,
      /^<3>\{"time":"[^"]+","level":"error","event":"fatal","error":"1 problem in /,
    );
    t.equal(journal.code, 100);
    const text = serve('text', asJournal);
    const lines = text.stderr.split('\n');
    t.ok(lines[0]?.startsWith(`<3>${problem}`), lines[0] ?? '');
    t.equal(lines[1], `<3>socketeer: fatal: 1 problem in ${conf.confDir}; nothing was started`);
    t.equal(text.code, 100);
  },
);

/** `<PRI>` then the RFC 3164 or RFC 5424 header, then the JSON record. */
const headers = {
  rfc3164: (pid: number) =>
    new RegExp(
      `^<(\\d+)>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d ${hostname()} socketeer\\[${pid}\\]: (\\{.*\\})$`,
    ),
  rfc5424: (pid: number) =>
    new RegExp(
      `^<(\\d+)>1 \\d{4}-\\d\\d-\\d\\dT[^ ]+ ${hostname()} socketeer ${pid} - - (\\{.*\\})$`,
    ),
};

for (const format of ['rfc3164', 'rfc5424'] as const) {
  t.test(
    `--log-target syslog (${format}): datagrams with priority, event and service`,
    async (t) => {
      const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
      t.teardown(conf.cleanup);
      const socket = join(conf.dir, 'log');
      const sink = await DatagramSink.bind(socket);
      t.teardown(() => sink.close());
      const daemon = await DaemonUnderTest.start(conf.confDir, [
        '--log-target',
        'syslog',
        '--syslog-socket',
        socket,
        '--syslog-format',
        format,
      ]);
      t.teardown(() => daemon.stop());
      t.equal((await exchange(daemon.tcp('echo'), 'hi\n')).toString(), 'hi\n');
      await sendBadControlRequest(join(conf.dir, 'control.sock'));
      const end = await sink.waitFor((m) => m.includes('"event":"end"'));
      const warn = await sink.waitFor((m) => m.includes('"event":"control-bad-request"'));
      const header = headers[format](daemon.pid);
      for (const message of sink.messages) {
        const m = header.exec(message);
        if (m === null) {
          t.fail(`not a ${format} message: ${message}`);
          continue;
        }
        const record = JSON.parse(m[2] ?? '') as { level: string };
        t.equal(Number(m[1]), 24 + (severity[record.level] ?? -99), `facility daemon: ${message}`);
      }
      t.match(end, /^<30>.*"event":"end","service":"echo"/);
      t.match(warn, /^<28>/);
      t.equal(daemon.stderrText, '', 'nothing on stderr');
    },
  );
}

t.test('--log-target syslog with no socket there: fatal 111', async (t) => {
  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const missing = join(conf.dir, 'no-log');
  const result = spawnSync(
    process.execPath,
    [
      cli,
      'serve',
      '--config-dir',
      conf.confDir,
      '--log-format',
      'text',
      '--log-target',
      'syslog',
      '--syslog-socket',
      missing,
    ],
    { encoding: 'utf8', env: cleanEnv(), timeout: 30000 },
  );
  t.equal(
    result.stderr,
    `socketeer: fatal: --syslog-socket ${missing}: no such file or directory (ENOENT)\n`,
  );
  t.equal(result.status, 111);
});

/** A native-protocol datagram's simple fields (`NAME=value` lines; no value here has a newline). */
function journalFields(message: string): Map<string, string> {
  return new Map(
    message
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

t.test('--log-target journal: one datagram per record, its fields journal fields', async (t) => {
  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const socket = join(conf.dir, 'journal.socket');
  const sink = await DatagramSink.bind(socket);
  t.teardown(() => sink.close());
  const daemon = await DaemonUnderTest.start(conf.confDir, [
    '--log-target',
    'journal',
    '--journal-socket',
    socket,
    '--log-format',
    'text',
  ]);
  t.teardown(() => daemon.stop());
  t.equal((await exchange(daemon.tcp('echo'), 'hi\n')).toString(), 'hi\n');
  await sendBadControlRequest(join(conf.dir, 'control.sock'));
  const end = journalFields(await sink.waitFor((m) => m.includes('SOCKETEER_EVENT=end\n')));
  t.match(Object.fromEntries(end), {
    PRIORITY: '6',
    SYSLOG_IDENTIFIER: 'socketeer',
    SOCKETEER_EVENT: 'end',
    SOCKETEER_SERVICE: 'echo',
    SOCKETEER_EXIT_CODE: '0',
    SOCKETEER_SIGNAL: 'null',
  });
  t.match(end.get('MESSAGE'), /^end service=echo conn=\S+ pid=\d+ exitCode=0 /);
  const warn = journalFields(
    await sink.waitFor((m) => m.includes('SOCKETEER_EVENT=control-bad-request\n')),
  );
  t.equal(warn.get('PRIORITY'), '4', 'journalctl -p warning selects it');
  t.equal(daemon.stderrText, '', 'nothing on stderr');
});

t.test('--log-target journal with no journal socket there: fatal 111', async (t) => {
  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const missing = join(conf.dir, 'no-journal');
  const args = ['serve', '--config-dir', conf.confDir, '--log-format', 'text'];
  const result = spawnSync(
    process.execPath,
    [cli, ...args, '--log-target', 'journal', '--journal-socket', missing],
    { encoding: 'utf8', env: cleanEnv(), timeout: 30000 },
  );
  t.equal(
    result.stderr,
    `socketeer: fatal: unable to log to the journal at ${missing}: no such file or directory (ENOENT)\n`,
  );
  t.equal(result.status, 111);
});
