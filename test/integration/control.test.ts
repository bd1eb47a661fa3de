import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { sendControlRequest } from '../../src/control/client.js';
import { resolveControlPath } from '../../src/control/paths.js';
import {
  ControlError,
  type ControlReply,
  type ControlRequest,
} from '../../src/control/protocol.js';
import {
  startControlServer,
  type ControlServer,
  type ControlServerOptions,
} from '../../src/control/server.js';
import { FatalError } from '../../src/model/errors.js';

/** How long a wait may take before the test fails: generous, for a loaded machine. */
const deadlineMs = 30000;
const isRoot = process.getuid?.() === 0;

function makeDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sct-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function makeLog() {
  const records: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  const add = (level: string) => (event: string, fields: Record<string, unknown>) =>
    records.push({ level, event, fields });
  return { records, info: add('info'), warn: add('warn'), error: add('error') };
}

/** Echoes the request; `stop nope` is an unknown service; `stop boom` is a handler bug. */
async function handle(request: ControlRequest): Promise<unknown> {
  if (request.cmd === 'stop' && request.service === 'nope') {
    throw new ControlError('unknown-service', 'no service named "nope"');
  }
  if (request.cmd === 'stop' && request.service === 'boom') throw new Error('kaboom');
  if (request.cmd === 'drain') {
    await new Promise((resolve) => setTimeout(resolve, (request.timeoutSec ?? 0) * 1000));
  }
  return { echo: request };
}

async function start(
  path: string,
  extra: Partial<ControlServerOptions> = {},
): Promise<{ server: ControlServer; log: ReturnType<typeof makeLog> }> {
  const log = makeLog();
  const server = await startControlServer({ path, handle, log, ...extra });
  t.teardown(() => server.close());
  return { server, log };
}

/** A raw connection that collects reply lines and notices when it closes. */
function open(path: string) {
  const socket: Socket = connect(path);
  const lines: string[] = [];
  let buffered = '';
  let isClosed = false;
  let wake = (): void => undefined;
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    const parts = (buffered + chunk.toString('utf8')).split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
    wake();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closed.then(() => {
    isClosed = true;
    wake();
  });
  t.teardown(() => socket.destroy());
  return {
    socket,
    closed,
    isClosed: () => isClosed,
    send: (text: string | Buffer) => socket.write(text),
    /** Resolves to the next `n` replies, parsed. */
    async replies(n: number): Promise<ControlReply[]> {
      while (lines.length < n && !isClosed) {
        await withDeadline(new Promise<void>((resolve) => (wake = resolve)), `${n} replies`);
      }
      if (lines.length < n) throw new Error(`closed after ${lines.length} of ${n} replies`);
      return lines.splice(0, n).map((line) => JSON.parse(line) as ControlReply);
    },
  };
}

function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), deadlineMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

void t.test('a request and its reply, and what a handler failure becomes', async (t) => {
  const path = join(makeDir(), 'control.sock');
  const { log } = await start(path);
  const send = (request: ControlRequest) => sendControlRequest(path, request, { timeoutMs: 5000 });
  t.same(await send({ id: 1, cmd: 'status' }), {
    id: 1,
    ok: true,
    result: { echo: { id: 1, cmd: 'status' } },
  });
  t.same(await send({ id: 2, cmd: 'kill', service: 'web', instance: '3-1-0', signal: 'SIGHUP' }), {
    id: 2,
    ok: true,
    result: { echo: { id: 2, cmd: 'kill', service: 'web', instance: '3-1-0', signal: 'SIGHUP' } },
  });
  t.same(await send({ id: 3, cmd: 'stop', service: 'nope' }), {
    id: 3,
    ok: false,
    error: { code: 'unknown-service', message: 'no service named "nope"' },
  });
  t.same(await send({ id: 4, cmd: 'stop', service: 'boom' }), {
    id: 4,
    ok: false,
    error: { code: 'internal', message: 'internal error; see the daemon log' },
  });
  t.same(
    log.records.filter((r) => r.level === 'error'),
    [{ level: 'error', event: 'control-failed', fields: { cmd: 'stop', error: 'Error: kaboom' } }],
  );
  t.same(log.records[0], { level: 'info', event: 'control-listen', fields: { path } });
});

void t.test('pipelined requests are answered one at a time, in order', async (t) => {
  const path = join(makeDir(), 'control.sock');
  await start(path);
  const conn = open(path);
  const lines = [
    { id: 7, cmd: 'drain', service: 'a', timeoutSec: 0.05 },
    { id: 8, cmd: 'status', service: 'b' },
    { id: 9, cmd: 'drain', service: 'c', timeoutSec: 0.01 },
    { id: 10, cmd: 'reload' },
  ];
  conn.send(lines.map((line) => JSON.stringify(line) + '\n').join(''));
  const replies = await conn.replies(4);
  t.same(
    replies.map((reply) => reply.id),
    [7, 8, 9, 10],
  );
  t.same(replies[0], { id: 7, ok: true, result: { echo: lines[0] } });
  t.equal(conn.isClosed(), false, 'the connection stays open for more');
});

void t.test('a request arriving while another runs waits for it', async (t) => {
  const path = join(makeDir(), 'control.sock');
  const calls: string[] = [];
  let release = (): void => undefined;
  let signalStarted = (): void => undefined;
  const started = new Promise<void>((resolve) => (signalStarted = resolve));
  await start(path, {
    handle: async (request) => {
      calls.push(`begin ${request.id}`);
      if (request.cmd === 'drain') {
        signalStarted();
        await new Promise<void>((resolve) => (release = resolve));
      }
      calls.push(`end ${request.id}`);
      return request.id;
    },
  });
  const conn = open(path);
  conn.send('{"id":1,"cmd":"drain","service":"a"}\n');
  await withDeadline(started, 'the first request to reach the handler');
  conn.send('{"id":2,"cmd":"status"}\n{"id":3,"cmd":"reload"}\n');
  // a round trip on another connection: by then the server has read the lines sent before it
  const other = await sendControlRequest(path, { id: 9, cmd: 'status' }, { timeoutMs: 5000 });
  t.same(other, { id: 9, ok: true, result: 9 }, 'other connections are not held up');
  release();
  t.same(
    (await conn.replies(3)).map((reply) => reply.id),
    [1, 2, 3],
  );
  t.same(
    calls.filter((call) => !call.endsWith(' 9')),
    ['begin 1', 'end 1', 'begin 2', 'end 2', 'begin 3', 'end 3'],
  );
});

void t.test('invalid requests get bad-request and the connection stays usable', async (t) => {
  const path = join(makeDir(), 'control.sock');
  const { log } = await start(path);
  const conn = open(path);
  const cases: [string, number | null, string][] = [
    ['{"id": 1, "cmd": "stat', null, 'request is not valid JSON'],
    ['[1,2]', null, 'request must be a JSON object'],
    ['"status"', null, 'request must be a JSON object'],
    ['{"cmd":"status"}', null, '/id: required'],
    ['{"id":-1,"cmd":"status"}', null, '/id: must be an integer from 0 to 9007199254740991'],
    ['{"id":1.5,"cmd":"status"}', null, '/id: must be integer'],
    ['{"id":1}', 1, '/cmd: required'],
    ['{"id":2,"cmd":7}', 2, '/cmd: must be string'],
    [
      '{"id":3,"cmd":"frob\\u001b[2J"}',
      3,
      '/cmd: unknown command "frob\\u001b[2J" (expected status, stop, start, quiesce, drain, kill, reload, upgrade, metrics)',
    ],
    ['{"id":4,"cmd":"stop"}', 4, '/service: required by "stop"'],
    ['{"id":5,"cmd":"status","extra":true}', 5, '/extra: not allowed for "status"'],
    ['{"id":6,"cmd":"reload","service":"x"}', 6, '/service: not allowed for "reload"'],
    [
      '{"id":7,"cmd":"stop","service":"a b"}',
      7,
      '/service: must be 1 to 255 printable ASCII characters without spaces',
    ],
    [
      '{"id":8,"cmd":"stop","service":""}',
      8,
      '/service: must be 1 to 255 printable ASCII characters without spaces',
    ],
    [
      '{"id":9,"cmd":"kill","service":"x","signal":"TERM"}',
      9,
      '/signal: must be a signal name such as "SIGTERM"',
    ],
    ['{"id":10,"cmd":"drain","service":"x","timeoutSec":-1}', 10, '/timeoutSec: must be >= 0'],
    ['{"id":11,"cmd":"drain","service":"x","timeoutSec":"5"}', 11, '/timeoutSec: must be number'],
  ];
  conn.send(cases.map(([line]) => line + '\n').join('') + '\n  \n');
  const replies = await conn.replies(cases.length);
  for (const [index, [line, id, message]] of cases.entries()) {
    t.same(replies[index], { id, ok: false, error: { code: 'bad-request', message } }, line);
  }
  conn.send('{"id":12,"cmd":"upgrade"}\n');
  t.same(await conn.replies(1), [
    { id: 12, ok: true, result: { echo: { id: 12, cmd: 'upgrade' } } },
  ]);
  t.same(
    log.records.filter((r) => r.level !== 'info'),
    [
      {
        level: 'warn',
        event: 'control-bad-request',
        fields: { code: 'bad-request', message: 'request is not valid JSON' },
      },
    ],
    'one warning per connection, however many bad lines',
  );
});

void t.test(
  'an oversized line gets too-large and its connection closes; others go on',
  async (t) => {
    const path = join(makeDir(), 'control.sock');
    await start(path);
    const conn = open(path);
    conn.send('{"id":1,"cmd":"status"}\n');
    conn.send(Buffer.alloc(1024 * 1024, 'x'));
    const replies = await conn.replies(2);
    t.same(replies, [
      { id: 1, ok: true, result: { echo: { id: 1, cmd: 'status' } } },
      { id: null, ok: false, error: { code: 'too-large', message: 'request exceeds 65536 bytes' } },
    ]);
    await withDeadline(conn.closed, 'the server to close the connection');
    const noise = open(path);
    noise.send(randomBytes(1024 * 1024));
    noise.socket.end();
    await withDeadline(noise.closed, 'the server to close the garbage connection');
    t.same(await sendControlRequest(path, { id: 2, cmd: 'reload' }, { timeoutMs: 5000 }), {
      id: 2,
      ok: true,
      result: { echo: { id: 2, cmd: 'reload' } },
    });
  },
);

void t.test('a half-closed connection still gets its replies, then EOF', async (t) => {
  const path = join(makeDir(), 'control.sock');
  await start(path);
  const conn = open(path);
  conn.socket.end(
    '{"id":1,"cmd":"drain","service":"a","timeoutSec":0.02}\n{"id":2,"cmd":"reload"}',
  );
  t.same(
    (await conn.replies(1)).map((reply) => reply.id),
    [1],
  );
  await withDeadline(conn.closed, 'close');
  t.pass('the unterminated last line is not a request');
});

void t.test('at the limit a newcomer closes the longest-idle connection', async (t) => {
  const path = join(makeDir(), 'control.sock');
  const { log } = await start(path, { maxConnections: 2, idleTimeoutMs: 60000 });
  const ask = async (conn: ReturnType<typeof open>, id: number): Promise<ControlReply[]> => {
    conn.send(`{"id":${id},"cmd":"status"}\n`);
    return conn.replies(1);
  };
  const first = open(path);
  await ask(first, 1);
  const second = open(path);
  await ask(second, 2);
  await ask(first, 3); // now the second has been idle longest
  const third = open(path);
  t.same(await ask(third, 4), [{ id: 4, ok: true, result: { echo: { id: 4, cmd: 'status' } } }]);
  await withDeadline(second.closed, 'the longest-idle connection to be closed');
  t.equal(first.isClosed(), false, 'the other idle one stays');
  t.same(
    (await ask(first, 5)).map((reply) => reply.id),
    [5],
  );
  t.same(
    log.records.filter((r) => r.level !== 'info'),
    [],
    'making room is no refusal',
  );
});

void t.test('busy only when every connection has a request in progress', async (t) => {
  const path = join(makeDir(), 'control.sock');
  const releases: (() => void)[] = [];
  let wake = (): void => undefined;
  const { log } = await start(path, {
    maxConnections: 2,
    handle: async (request) => {
      await new Promise<void>((resolve) => {
        releases.push(resolve);
        wake();
      });
      return request.id;
    },
  });
  const held = [open(path), open(path)];
  held.forEach((conn, index) => conn.send(`{"id":${index + 1},"cmd":"drain","service":"a"}\n`));
  while (releases.length < 2) {
    await withDeadline(new Promise<void>((resolve) => (wake = resolve)), 'two requests running');
  }
  const third = open(path);
  t.same(await third.replies(1), [
    { id: null, ok: false, error: { code: 'busy', message: 'too many control connections (2)' } },
  ]);
  await withDeadline(third.closed, 'the refused connection to close');
  releases.forEach((release) => release());
  for (const [index, conn] of held.entries()) {
    t.same(
      (await conn.replies(1)).map((reply) => reply.id),
      [index + 1],
    );
  }
  t.same(
    log.records.filter((r) => r.event === 'control-refused').map((r) => r.fields.code),
    ['busy'],
  );
});

void t.test('the idle timeout: after the last reply, never during a request', async (t) => {
  const path = join(makeDir(), 'control.sock');
  await start(path, { idleTimeoutMs: 200 });
  const conn = open(path);
  const sentAt = performance.now();
  conn.send('{"id":1,"cmd":"drain","service":"a","timeoutSec":0.6}\n');
  t.same(
    (await conn.replies(1)).map((reply) => reply.id),
    [1],
    'a slow request is answered',
  );
  await withDeadline(conn.closed, 'the idle connection to be closed');
  // no sooner than the request's 600 ms plus the 200 ms idle timeout (a timer may fire 1 ms early)
  t.ok(performance.now() - sentAt >= 790, 'closed once idle for the timeout');
});

void t.test('another uid at the limit is closed and closes nobody', async (t) => {
  const path = join(makeDir(), 'control.sock');
  let uid: number | null = 0;
  const { log } = await start(path, { maxConnections: 1, ownerUid: 0, peerUid: () => uid });
  const owner = open(path);
  owner.send('{"id":1,"cmd":"status"}\n');
  await owner.replies(1);
  uid = 65534;
  const other = open(path);
  await withDeadline(other.closed, 'the other uid to be closed');
  await t.rejects(other.replies(1), { message: 'closed after 0 of 1 replies' });
  owner.send('{"id":2,"cmd":"status"}\n');
  t.same(
    (await owner.replies(1)).map((reply) => reply.id),
    [2],
    'the owner is still served',
  );
  t.match(
    log.records.filter((r) => r.event === 'control-refused'),
    [{ level: 'warn', fields: { code: 'forbidden' } }],
  );
});

void t.test('peer uid check when the daemon runs as root', async (t) => {
  const path = join(makeDir(), 'control.sock');
  let uid: number | null = 65534;
  await start(path, { ownerUid: 0, peerUid: () => uid });
  const conn = open(path);
  conn.send('{"id":1,"cmd":"stop","service":"web"}\n');
  t.same(await conn.replies(1), [
    {
      id: null,
      ok: false,
      error: { code: 'forbidden', message: 'uid 65534 may not control this daemon (uid 0)' },
    },
  ]);
  await withDeadline(conn.closed, 'the refused connection to close');
  for (const allowed of [0, null]) {
    uid = allowed;
    const reply = await sendControlRequest(path, { id: 2, cmd: 'reload' }, { timeoutMs: 5000 });
    t.equal(reply.ok, true, `peer uid ${String(allowed)} is served`);
  }
});

void t.test('binding: mode, stale and live sockets, a non-socket, cleanup', async (t) => {
  const dir = makeDir();
  const path = join(dir, 'run', 'socketeer', 'control.sock');
  const { server } = await start(path);
  t.equal(statSync(path).mode & 0o777, 0o600, 'socket file mode');
  t.equal(statSync(join(dir, 'run')).mode & 0o777, 0o700, 'created parent directory mode');
  t.same(readdirSync(join(dir, 'run', 'socketeer')), ['control.sock'], 'no temporary name left');
  const live = await startControlServer({ path, handle, log: makeLog() }).catch((e: unknown) => e);
  t.ok(live instanceof FatalError);
  t.match(live, {
    exitCode: 111,
    message: `unable to bind control socket ${path}: address already in use (EADDRINUSE)`,
  });
  t.equal((await sendControlRequest(path, { id: 1, cmd: 'reload' }, { timeoutMs: 5000 })).ok, true);
  await server.close();
  t.throws(() => statSync(path), { code: 'ENOENT' }, 'close removes the path');

  const stale = join(dir, 'stale.sock');
  await leaveStaleSocket(t, stale);
  await t.rejects(sendControlRequest(stale, { id: 1, cmd: 'reload' }, { timeoutMs: 5000 }), {
    exitCode: 102,
    message: `daemon not reachable at ${stale}: connection refused (ECONNREFUSED)`,
  });
  await start(stale, { mode: 0o660 });
  t.equal(statSync(stale).mode & 0o777, 0o660, 'mode option');
  t.equal(
    (await sendControlRequest(stale, { id: 1, cmd: 'reload' }, { timeoutMs: 5000 })).ok,
    true,
  );

  const file = join(dir, 'file');
  writeFileSync(file, '');
  await t.rejects(startControlServer({ path: file, handle, log: makeLog() }), {
    exitCode: 111,
    message: `unable to bind control socket ${file}: the path exists and is not a socket`,
  });

  const moved = join(dir, 'moved.sock');
  const { server: mover } = await start(moved);
  rmSync(moved);
  writeFileSync(moved, 'successor');
  await mover.close();
  t.equal(statSync(moved).size, 9, 'close leaves a path that is no longer its own');
});

/** Binds a socket in a child that is then SIGKILLed, so the file stays with nobody behind it. */
async function leaveStaleSocket(t: Test, path: string): Promise<void> {
  const code = `require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`;
  const child = spawn(process.execPath, ['-e', code, path], { stdio: 'ignore' });
  await withDeadline(
    new Promise((resolve) => child.once('exit', resolve)),
    'the socket-binding child to die',
  );
  t.ok(statSync(path).isSocket(), 'stale socket file left behind');
}

void t.test('the client when no daemon is there', async (t) => {
  const path = join(makeDir(), 'control.sock');
  await t.rejects(sendControlRequest(path, { id: 1, cmd: 'status' }, { timeoutMs: 5000 }), {
    name: 'FatalError',
    exitCode: 102,
    message: `daemon not reachable at ${path}: no such file or directory (ENOENT)`,
  });
  const silent = createServer(() => undefined).listen(path);
  t.teardown(() => silent.close());
  await t.rejects(sendControlRequest(path, { id: 1, cmd: 'status' }, { timeoutMs: 100 }), {
    exitCode: 102,
    message: `no reply from the daemon at ${path} within 100 ms`,
  });
});

void t.test(
  'a non-root user cannot use a root daemon socket',
  { skip: !isRoot && 'needs root' },
  async (t) => {
    const dir = makeDir();
    chmodSync(dir, 0o755);
    const path = join(dir, 'control.sock');
    await start(path);
    const script = join(dir, 'client.mjs');
    // the built client: a TypeScript loader takes tens of seconds to start on a loaded machine
    const client = pathToFileURL(
      join(import.meta.dirname, '../../dist/src/control/client.js'),
    ).href;
    writeFileSync(
      script,
      `import { sendControlRequest } from ${JSON.stringify(client)};\n` +
        `try { await sendControlRequest(process.argv[2], { id: 1, cmd: 'status' }, { timeoutMs: 5000 }); console.log('served'); }\n` +
        `catch (e) { console.log(e.exitCode, e.message); }\n`,
    );
    const child = spawn(
      'setpriv',
      [
        ...['--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-i'],
        ...[process.execPath, script, path],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await withDeadline(
      new Promise((resolve) => child.once('close', resolve)),
      'the client run as nobody',
    );
    t.equal(stderr, '');
    t.equal(code, 0);
    t.equal(stdout, `102 daemon not reachable at ${path}: permission denied (EACCES)\n`);
  },
);

void t.test('where the control socket lives', (t) => {
  t.same(resolveControlPath({ isRoot: true, env: { XDG_RUNTIME_DIR: '/run/user/1000' }, uid: 0 }), {
    ok: true,
    path: '/run/socketeer/control.sock',
  });
  t.same(
    resolveControlPath({ isRoot: false, env: { XDG_RUNTIME_DIR: '/run/user/1000' }, uid: 1000 }),
    {
      ok: true,
      path: '/run/user/1000/socketeer/control.sock',
    },
  );
  t.same(resolveControlPath({ isRoot: false, env: {}, override: 'x.sock', uid: 1000 }), {
    ok: true,
    path: 'x.sock',
  });
  t.same(resolveControlPath({ isRoot: true, env: {}, override: '', uid: 0 }), {
    ok: false,
    message: '--control: path must not be empty',
  });
  t.same(resolveControlPath({ isRoot: false, env: { XDG_RUNTIME_DIR: '' }, uid: 1000 }), {
    ok: true,
    path: '/tmp/socketeer-1000/control.sock',
  });
  t.same(resolveControlPath({ isRoot: false, env: {}, uid: 1000 }), {
    ok: true,
    path: '/tmp/socketeer-1000/control.sock',
  });
  t.same(resolveControlPath({ isRoot: false, env: { XDG_RUNTIME_DIR: 'run/user' }, uid: 1000 }), {
    ok: false,
    message: 'XDG_RUNTIME_DIR is not an absolute path; pass --control PATH',
  });
  t.end();
});
