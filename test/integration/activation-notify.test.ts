// accept: false with NOTIFY_SOCKET: readiness and status, the fd store that keeps a client's
// connection across a SIGKILL of the process, its cap and FDSTOREREMOVE, `stop` closing what it
// holds, and a sender that is not the service's process being refused.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  fdCount,
  settledFdCount,
  fixtures,
  isEvent,
  isRoot,
  makeConfDir,
  isAlive,
  runCli,
  withDeadline,
  type LogRecord,
} from '../helpers/daemon.js';

const python = '/usr/bin/python3';
const fixture = join(fixtures, 'notify-fdstore.py');

/** A line-oriented client of the fixture: `ask` writes one command and reads one answer. */
class Client {
  private readonly socket: Socket;
  private buffered = '';
  private waiting: ((line: string) => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      this.deliver();
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
  }

  static open(target: { host: string; port: number }): Promise<Client> {
    return withDeadline(
      new Promise((resolve, reject) => {
        const socket = connect(target.port, target.host);
        socket.once('connect', () => resolve(new Client(socket)));
        socket.once('error', reject);
      }),
      20000,
      'a connection to the fixture',
    );
  }

  ask(command: string): Promise<string> {
    const answer = new Promise<string>((resolve) => (this.waiting = resolve));
    this.socket.write(`${command}\n`);
    this.deliver();
    return withDeadline(answer, 30000, `the answer to ${command}`);
  }

  end(): void {
    this.socket.destroy();
  }

  private deliver(): void {
    const nl = this.buffered.indexOf('\n');
    if (nl === -1 || this.waiting === null) return;
    const line = this.buffered.slice(0, nl);
    this.buffered = this.buffered.slice(nl + 1);
    const resolve = this.waiting;
    this.waiting = null;
    resolve(line);
  }
}

type Process = {
  uptimeSec: number | null;
  pid: number | null;
  ready: boolean;
  statusText: string | null;
  stopping: boolean;
  mainPid: number | null;
  storedFds: { count: number; names: string[] };
};

async function processOf(control: string, service: string): Promise<Process> {
  const status = await runCli(['status', service, '--json', '--control', control]);
  const parsed = JSON.parse(status.stdout) as { services: { process: Process }[] };
  const found = parsed.services[0]?.process;
  if (found === undefined) throw new Error(`no process in ${status.stdout}`);
  return found;
}

/** A daemon with the fixture as `accept: false` services; `control` is its control socket. */
async function startDaemon(
  t: Test,
  services: Record<string, Record<string, unknown>>,
): Promise<{ daemon: DaemonUnderTest; control: string; confDir: string }> {
  const conf = makeConfDir(
    Object.fromEntries(
      Object.entries(services).map(([name, extra]) => [
        `${name}.json`,
        { listen: 'tcp:127.0.0.1:0', exec: [python, fixture], accept: false, ...extra },
      ]),
    ),
  );
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  return { daemon, control, confDir: conf.confDir };
}

const recordsOf = (daemon: DaemonUnderTest, event: string, service: string): LogRecord[] =>
  daemon.records.filter(isEvent(event, service));

t.test('READY=1, STATUS= and STOPPING=1 show in status', async (t) => {
  const { daemon, control } = await startDaemon(t, { app: { start: 'at-start' } });
  const started = await daemon.waitForLog(isEvent('activate', 'app'));
  const pid = started.pid as number;
  const ready = await daemon.waitForLog(isEvent('process-ready', 'app'));
  t.match(ready, { level: 'info', pid, status: `started pid ${pid}` });
  t.match(await processOf(control, 'app'), {
    pid,
    ready: true,
    statusText: `started pid ${pid}`,
    stopping: false,
    mainPid: pid,
    storedFds: { count: 0, names: [] },
  });
  const client = await Client.open(daemon.tcp('app'));
  t.teardown(() => client.end());
  const who = await client.ask('who');
  t.match(
    who,
    new RegExp(
      `^pid=${pid} fds=1 names=app notify=@socketeer-notify/${daemon.pid}/[0-9a-f]{16}/app$`,
    ),
  );

  t.equal(
    await client.ask('status serving 1 client\u0007'),
    `pid=${pid} status serving 1 client\u0007`,
  );
  await daemon.waitForLog(
    (r) => isEvent('process-status', 'app')(r) && r.status === 'serving 1 client\\x07',
  );
  t.equal(await client.ask('stopping'), `pid=${pid} stopping`);
  await daemon.waitForLog(isEvent('process-stopping', 'app'));
  t.match(await processOf(control, 'app'), {
    ready: true,
    statusText: 'serving 1 client\\x07',
    stopping: true,
  });
  const text = await runCli(['status', 'app', '--control', control]);
  t.match(text.stdout, `app: process pid ${pid}, up `);
  t.match(
    text.stdout,
    /, 0 restarts, last exit: none, ready, stopping, status "serving 1 client\\\\x07"\n/,
  );

  // MAINPID= naming a process that is not its descendant is refused; itself is fine
  t.equal(await client.ask('mainpid 1'), `pid=${pid} mainpid 1`);
  const refused = await daemon.waitForLog(isEvent('notify-refused', 'app'));
  t.match(refused, {
    level: 'warn',
    pid,
    reason: 'mainpid',
    detail: `MAINPID=1 is not the process ${pid} nor one of its descendants`,
  });
  t.equal((await processOf(control, 'app')).mainPid, pid);

  // MAINPID= naming its child: the child may send, and status shows it as the main pid
  const forked = await client.ask('forkmain from the child');
  const childPid = Number(/^pid=\d+ child (\d+)$/.exec(forked)?.[1]);
  t.match(await daemon.waitForLog(isEvent('process-mainpid', 'app')), { pid, mainPid: childPid });
  t.match(
    await daemon.waitForLog(
      (r) => isEvent('process-status', 'app')(r) && r.status === 'from the child',
    ),
    { pid: childPid },
  );
  t.match(await processOf(control, 'app'), {
    pid,
    mainPid: childPid,
    statusText: 'from the child',
  });
  t.equal(await client.ask('reap'), `pid=${pid} reaped ${childPid}`);
  // the process socketeer started may still send
  t.equal(await client.ask('status parent again'), `pid=${pid} status parent again`);
  await daemon.waitForLog(
    (r) => isEvent('process-status', 'app')(r) && r.status === 'parent again',
  );
  t.equal(recordsOf(daemon, 'notify-refused', 'app').length, 1, 'only MAINPID=1 was refused');
});

t.test('a stored connection survives SIGKILL: the next process answers on it', async (t) => {
  const { daemon, control } = await startDaemon(t, { keep: { fdStoreMax: 4 } });
  const client = await Client.open(daemon.tcp('keep'));
  t.teardown(() => client.end());
  const first = await daemon.waitForLog(isEvent('activate', 'keep'));
  const oldPid = first.pid as number;
  t.equal(await client.ask('echo before'), `pid=${oldPid} before`);
  t.equal(await client.ask('store conn'), `pid=${oldPid} stored conn`);
  const stored = await daemon.waitForLog(isEvent('fd-stored', 'keep'));
  t.match(stored, { name: 'conn', stored: 1, duplicates: 0, total: 1 });
  t.match(await processOf(control, 'keep'), { storedFds: { count: 1, names: ['conn'] } });

  const killed = await runCli(['kill', 'keep', '--signal', 'SIGKILL', '--control', control]);
  t.equal(killed.code, 0, killed.stderr);
  await daemon.waitForLog((r) => isEvent('end', 'keep')(r) && r.signal === 'SIGKILL');
  await daemon.waitForLog(isEvent('restart-scheduled', 'keep'));
  const second = await daemon
    .waitForCount(isEvent('activate', 'keep'), 2)
    .then(() => recordsOf(daemon, 'activate', 'keep')[1] as LogRecord);
  const newPid = second.pid as number;
  t.not(newPid, oldPid);
  t.match(second, { trigger: 'restart', fds: [/^3=tcp:127\.0\.0\.1:\d+$/, '4=stored:conn'] });

  // the client's connection, opened before the kill, is answered by the new process
  t.equal(await client.ask('echo after the kill'), `pid=${newPid} after the kill`);
  t.match(
    await client.ask('who'),
    new RegExp(`^pid=${newPid} fds=2 names=keep:conn notify=@socketeer-notify/${daemon.pid}/`),
  );
  // storing it again is a duplicate (same st_dev and st_ino under the same name): one kept
  t.equal(await client.ask('storetwice conn'), `pid=${newPid} stored conn`);
  await daemon.waitForCount(isEvent('fd-stored', 'keep'), 2);
  t.match(recordsOf(daemon, 'fd-stored', 'keep')[1], { stored: 0, duplicates: 2, total: 1 });

  // quiesce keeps the store: the next connection's start gets it back too
  const quiesced = await runCli(['quiesce', 'keep', '--control', control]);
  t.equal(quiesced.code, 0, quiesced.stderr);
  t.equal((await processOf(control, 'keep')).storedFds.count, 1);
  const other = await Client.open(daemon.tcp('keep'));
  t.teardown(() => other.end());
  const third = await other.ask('echo hi');
  const thirdPid = Number(/^pid=(\d+) hi$/.exec(third)?.[1]);
  t.not(thirdPid, newPid);
  t.equal(await client.ask('echo after quiesce'), `pid=${thirdPid} after quiesce`);
});

t.test('upgrade carries the notify socket and the fd store with the process', async (t) => {
  const { daemon, control } = await startDaemon(t, { keep: { fdStoreMax: 4, restart: 'always' } });
  let successor: number | null = null;
  t.teardown(() => {
    if (successor !== null && isAlive(successor)) process.kill(successor, 'SIGKILL');
  });
  const client = await Client.open(daemon.tcp('keep'));
  t.teardown(() => client.end());
  const oldPid = (await daemon.waitForLog(isEvent('activate', 'keep'))).pid as number;
  t.equal(await client.ask('store conn'), `pid=${oldPid} stored conn`);
  await daemon.waitForLog(isEvent('fd-stored', 'keep'));

  const upgrade = await runCli(['upgrade', '--control', control]);
  t.equal(upgrade.code, 0, upgrade.stderr);
  successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
  t.not(successor, daemon.pid);
  await withDeadline(daemon.exited, 20000, 'the old daemon exit');

  // the process goes on sending to the same name: the new daemon hears it
  t.equal(await client.ask('status after the upgrade'), `pid=${oldPid} status after the upgrade`);
  t.match(await processOf(control, 'keep'), {
    pid: oldPid,
    statusText: 'after the upgrade',
    storedFds: { count: 1, names: ['conn'] },
  });

  // killed under the new daemon: restarted (always), with the stored client connection
  process.kill(oldPid, 'SIGKILL');
  // nobody reads the connection until the new process serves the stored fd: then it answers
  const restarted = await client.ask('echo after the kill');
  const newPid = Number(/^pid=(\d+) after the kill$/.exec(restarted)?.[1]);
  t.ok(newPid > 0 && newPid !== oldPid, `a new process (${restarted}) answers the old client`);
  t.match(
    await client.ask('who'),
    new RegExp(`^pid=${newPid} fds=2 names=keep:conn notify=@socketeer-notify/${daemon.pid}/`),
    'the same notify name, the stored fd after the listener',
  );
  process.kill(successor, 'SIGTERM');
  await daemon.waitForCount(isEvent('exit'), 2, 20000);
});

t.test('fdStoreMax caps the store, FDSTOREREMOVE closes, 0 refuses', async (t) => {
  const { daemon, control, confDir } = await startDaemon(t, {
    capped: { fdStoreMax: 2 },
    off: { start: 'at-start' },
  });
  const clients = await Promise.all([1, 2, 3].map(() => Client.open(daemon.tcp('capped'))));
  t.teardown(() => clients.forEach((c) => c.end()));
  const [a, b, c] = clients as [Client, Client, Client];
  t.match(await a.ask('store a'), /^pid=\d+ stored a$/);
  t.match(await b.ask('store b'), /^pid=\d+ stored b$/);
  t.match(await c.ask('store c'), /^pid=\d+ stored c$/);
  const over = await daemon.waitForLog(isEvent('fd-store-refused', 'capped'));
  t.match(over, { level: 'warn', name: 'c', closed: 1, reason: 'over-cap', fdStoreMax: 2 });
  t.match(await processOf(control, 'capped'), { storedFds: { count: 2, names: ['a', 'b'] } });
  t.match(await a.ask('storemany files 3'), /^pid=\d+ stored 3 files$/);
  await daemon.waitForCount(isEvent('fd-store-refused', 'capped'), 2);
  t.match(recordsOf(daemon, 'fd-store-refused', 'capped')[1], { closed: 3, reason: 'over-cap' });

  t.match(await a.ask('remove a'), /^pid=\d+ removed a$/);
  t.match(await daemon.waitForLog(isEvent('fd-store-removed', 'capped')), { name: 'a', closed: 1 });
  t.match(await processOf(control, 'capped'), { storedFds: { count: 1, names: ['b'] } });
  // fds without FDSTORE=1 are closed, not stored
  t.match(await a.ask('storenone 2'), /^pid=\d+ sent 2$/);
  await daemon.waitForCount(isEvent('fd-store-refused', 'capped'), 3);
  t.match(recordsOf(daemon, 'fd-store-refused', 'capped')[2], { closed: 2, reason: 'no-fdstore' });

  // a reload (a changed definition) keeps the store
  const file = join(confDir, 'capped.json');
  const changed = { ...(JSON.parse(readFileSync(file, 'utf8')) as object), env: { X: '1' } };
  writeFileSync(file, JSON.stringify(changed));
  const reload = await runCli(['reload', '--control', control]);
  t.equal(reload.code, 0, reload.stderr);
  t.match(await processOf(control, 'capped'), { storedFds: { count: 1, names: ['b'] } });

  // the next start gets b only, after the listener
  const killed = await runCli(['kill', 'capped', '--signal', 'SIGKILL', '--control', control]);
  t.equal(killed.code, 0, killed.stderr);
  await daemon.waitForCount(isEvent('activate', 'capped'), 2);
  t.match(recordsOf(daemon, 'activate', 'capped')[1], { fds: [/^3=tcp:/, '4=stored:b'] });
  t.match(await b.ask('who'), /^pid=\d+ fds=2 names=capped:b notify=@socketeer-notify\//);

  // fdStoreMax 0 (the default): the fds are closed with a warning
  await daemon.waitForLog(isEvent('process-ready', 'off'));
  const off = await Client.open(daemon.tcp('off'));
  t.teardown(() => off.end());
  t.match(await off.ask('store conn'), /^pid=\d+ stored conn$/);
  t.match(await daemon.waitForLog(isEvent('fd-store-refused', 'off')), {
    name: 'conn',
    closed: 1,
    reason: 'off',
    fdStoreMax: 0,
  });
  t.match(await processOf(control, 'off'), { storedFds: { count: 0, names: [] } });
});

t.test(
  'stop closes the stored fds: the client sees EOF, the daemon holds no fd more',
  async (t) => {
    const { daemon, control } = await startDaemon(t, { held: { fdStoreMax: 8 } });
    const baseline = fdCount(daemon.pid); // bound, nothing started
    const clients = await Promise.all([1, 2].map(() => Client.open(daemon.tcp('held'))));
    t.teardown(() => clients.forEach((c) => c.end()));
    for (const client of clients) t.match(await client.ask('echo up'), /^pid=\d+ up$/);
    const running = fdCount(daemon.pid); // the process runs, its notify socket is open
    for (const [i, client] of clients.entries())
      t.match(await client.ask(`store c${i}`), new RegExp(`^pid=\\d+ stored c${i}$`));
    await daemon.waitForCount(isEvent('fd-stored', 'held'), 2);
    t.equal(fdCount(daemon.pid), running + 2, 'the two stored fds');

    const stopped = await runCli(['stop', 'held', '--control', control]);
    t.equal(stopped.code, 0, stopped.stderr);
    t.match(await daemon.waitForLog(isEvent('fd-store-closed', 'held')), { closed: 2 });
    // the process is gone and the daemon's copies are closed: each client's connection ends
    await withDeadline(
      Promise.all(clients.map((c) => c.closed)),
      30000,
      'EOF on the stored connections',
    );
    t.match(await processOf(control, 'held'), { pid: null, storedFds: { count: 0, names: [] } });
    const started = await runCli(['start', 'held', '--control', control]);
    t.equal(started.code, 0, started.stderr);
    // Seen in about one fresh-clone CI run in three, never alone: one fd more for a moment
    // after the process ended (which one is not known yet), so the count is awaited.
    t.equal(
      await settledFdCount(daemon.pid, baseline),
      baseline,
      'back to the fds of a bound service with nothing started',
    );
  },
);

t.test('a sender that is not the service process is refused and its fds closed', async (t) => {
  const { daemon, control } = await startDaemon(t, {
    target: { fdStoreMax: 4, start: 'at-start' },
  });
  const started = await daemon.waitForLog(isEvent('process-ready', 'target'));
  const client = await Client.open(daemon.tcp('target'));
  t.teardown(() => client.end());
  const notify = /notify=(\S+)$/.exec(await client.ask('who'))?.[1] ?? '';
  t.match(notify, /^@socketeer-notify\//);
  const before = await processOf(control, 'target');
  const fdsBefore = fdCount(daemon.pid);

  // another process (not a descendant of the service's) sends twice: READY, STATUS, STOPPING,
  // MAINPID naming itself, FDSTORE with two fds
  const attack =
    'import os,socket,sys\n' +
    's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n' +
    's.connect(b"\\0"+sys.argv[1][1:].encode())\n' +
    'msg=("READY=1\\nSTATUS=owned\\nSTOPPING=1\\nMAINPID=%d\\nFDSTORE=1\\nFDNAME=evil" % os.getpid()).encode()\n' +
    'k=socket.socket()\n' +
    'fds=[os.open("/dev/null",os.O_RDONLY),k.fileno()]\n' +
    'socket.send_fds(s,[msg],fds)\n' +
    'socket.send_fds(s,[msg],fds)\n' +
    'print(os.getpid())\n';
  // as root: as another user, who can reach an abstract name as well
  const asOther = isRoot
    ? ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
    : [];
  const argv = [...asOther, python, '-c', attack, notify];
  const attacker = await new Promise<number>((resolve, reject) =>
    execFile(argv[0] ?? '', argv.slice(1), { timeout: 20000 }, (error, stdout) =>
      error === null ? resolve(Number(stdout.trim())) : reject(new Error(error.message)),
    ),
  );
  const refused = await daemon.waitForLog(isEvent('notify-refused', 'target'));
  t.match(refused, {
    level: 'warn',
    pid: attacker,
    uid: isRoot ? 65534 : process.getuid?.(),
    reason: 'not-main',
    detail: `pid ${attacker} is not the main process (${started.pid as number})`,
    fds: 2,
  });
  // a message of the service's own after them: once it is read, both of the attacker's were
  t.equal(await client.ask('status still mine'), `pid=${started.pid as number} status still mine`);
  await daemon.waitForLog(
    (r) => isEvent('process-status', 'target')(r) && r.status === 'still mine',
  );
  t.equal(recordsOf(daemon, 'notify-refused', 'target').length, 1, 'logged once per sender pid');
  const after = await processOf(control, 'target');
  t.same(after, { ...before, statusText: 'still mine', uptimeSec: after.uptimeSec });
  t.equal(fdCount(daemon.pid), fdsBefore, 'none of the four fds is kept');
  t.same(recordsOf(daemon, 'fd-stored', 'target'), []);
});
