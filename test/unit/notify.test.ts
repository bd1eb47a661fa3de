import { execFileSync } from 'node:child_process';
import { fstatSync, readdirSync } from 'node:fs';
import t from 'tap';
import { isSelfOrDescendant } from '../../src/connection/activation-notify.js';
import { FdStore } from '../../src/connection/fd-store.js';
import { applyNotifyMessage, type NotifyRun } from '../../src/connection/notify-apply.js';
import { isValidFdName, parseNotifyMessage } from '../../src/connection/notify-message.js';
import type { EventLog, LogFields, LogLevel } from '../../src/log/events.js';
import { parseListenAddress } from '../../src/config/listen-address.js';
import { resolveActivation } from '../../src/config/resolve-activation.js';
import { validateServiceFile } from '../../src/config/validate.js';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';

const empty = {
  ready: false,
  stopping: false,
  status: null,
  mainPid: null,
  fdStore: false,
  fdStoreRemove: false,
  fdName: 'stored',
  ignored: [],
  invalid: [],
};

t.test('the message parser: KEY=VALUE lines as systemd reads them', async (t) => {
  t.same(parseNotifyMessage(''), empty);
  t.same(parseNotifyMessage('READY=1\nSTATUS=Serving 3 clients: a=b\n'), {
    ...empty,
    ready: true,
    status: 'Serving 3 clients: a=b',
  });
  t.same(parseNotifyMessage('STOPPING=1\nMAINPID=4242'), {
    ...empty,
    stopping: true,
    mainPid: 4242,
  });
  t.same(parseNotifyMessage('FDSTORE=1\nFDNAME=conn'), { ...empty, fdStore: true, fdName: 'conn' });
  t.same(parseNotifyMessage('FDSTORE=1'), { ...empty, fdStore: true }, 'FDNAME defaults to stored');
  t.same(parseNotifyMessage('FDSTOREREMOVE=1\nFDNAME=conn'), {
    ...empty,
    fdStoreRemove: true,
    fdName: 'conn',
  });
  t.same(parseNotifyMessage('STATUS=a\nSTATUS=b\nSTATUS='), { ...empty, status: '' }, 'the last');
  t.same(
    parseNotifyMessage('WATCHDOG=1\nRELOADING=1\nERRNO=2\nWATCHDOG=trigger\nREADY=1'),
    { ...empty, ready: true, ignored: ['WATCHDOG', 'RELOADING', 'ERRNO'] },
    'unknown keys are ignored, listed once',
  );
  t.same(parseNotifyMessage('READY=2\nSTOPPING=yes\nFDSTORE=0'), {
    ...empty,
    invalid: ['READY=2', 'STOPPING=yes', 'FDSTORE=0'],
  });
  for (const bad of ['0', '-1', 'x', '12a', '99999999999', '2147483648'])
    t.same(
      parseNotifyMessage(`MAINPID=${bad}`),
      { ...empty, invalid: [`MAINPID=${bad}`] },
      `MAINPID=${bad}`,
    );
  t.same(parseNotifyMessage('no equals\n=value\nREADY=1'), {
    ...empty,
    ready: true,
    invalid: ['no equals', '=value'],
  });
  t.same(parseNotifyMessage('FDSTORE=1\nFDNAME=a:b'), {
    ...empty,
    fdStore: true,
    fdName: null,
    invalid: ['FDNAME=a:b'],
  });
  t.same(
    parseNotifyMessage('READY=1\u0000\nSTATUS=x'),
    { ...empty, invalid: ['a NUL byte in the message'] },
    'a NUL voids the whole message',
  );
  t.ok(isValidFdName('x'.repeat(255)));
  t.notOk(isValidFdName('x'.repeat(256)));
  t.notOk(isValidFdName(''));
  t.notOk(isValidFdName('a\nb'));
});

/** An fd store over fake fds: `ids` says what each fd is open on; `closed` what it closed. */
function fakeStore(ids: Record<number, string>): { store: FdStore; closed: number[] } {
  const closed: number[] = [];
  const store = new FdStore({ close: (fd) => closed.push(fd), identify: (fd) => ids[fd] ?? null });
  return { store, closed };
}

t.test('the fd store: cap, duplicates by name and inode, remove, clear, take, adopt', async (t) => {
  const { store, closed } = fakeStore({ 10: 'a', 11: 'a', 12: 'b', 13: 'c', 14: 'd', 15: 'a' });
  t.same(store.add('conn', [10, 11, 12], 3), { stored: 2, duplicates: 1, overCap: 0 });
  t.same(closed, [11], 'the same open file under the same name: closed');
  t.same(store.add('other', [15], 3), { stored: 1, duplicates: 0, overCap: 0 }, 'another name');
  t.same(store.add('conn', [13, 14], 3), { stored: 0, duplicates: 0, overCap: 2 });
  t.same(closed, [11, 13, 14]);
  t.same(store.entries, [
    { name: 'conn', fd: 10 },
    { name: 'conn', fd: 12 },
    { name: 'other', fd: 15 },
  ]);
  t.equal(store.remove('conn'), 2);
  t.equal(store.remove('nothing'), 0);
  t.same(closed, [11, 13, 14, 10, 12]);
  t.same(store.take(), [{ name: 'other', fd: 15 }]);
  t.equal(store.size, 0);
  store.adopt([
    { name: 'x', fd: 20 },
    { name: 'y', fd: 21 },
  ]);
  t.equal(store.clear(), 2);
  t.same(closed, [11, 13, 14, 10, 12, 20, 21], 'taken fds are not closed; adopted ones are owned');
  t.same(fakeStore({}).store.add('x', [1], 0), { stored: 0, duplicates: 0, overCap: 1 });
});

t.test('MAINPID: the process itself or a descendant, by the PPid chain', async (t) => {
  const parents: Record<number, number> = { 50: 40, 40: 30, 30: 1, 60: 1 };
  const parentOf = (pid: number): number | null => parents[pid] ?? null;
  t.ok(isSelfOrDescendant(30, 30, parentOf));
  t.ok(isSelfOrDescendant(50, 30, parentOf));
  t.notOk(isSelfOrDescendant(30, 50, parentOf), 'an ancestor is not a descendant');
  t.notOk(isSelfOrDescendant(60, 30, parentOf));
  t.notOk(isSelfOrDescendant(99, 30, parentOf), 'a pid that is gone');
  t.ok(isSelfOrDescendant(process.pid, process.ppid), 'from /proc');
  t.notOk(isSelfOrDescendant(process.ppid, process.pid));
});

/** An EventLog that keeps its records. */
function memoryLog(): EventLog & { records: (LogFields & { event: string; level: LogLevel })[] } {
  const records: (LogFields & { event: string; level: LogLevel })[] = [];
  const log = {
    records,
    log: (level: LogLevel, event: string, fields: LogFields = {}) =>
      void records.push({ level, event, ...fields }),
    child: () => log,
  };
  return log;
}

t.test('a message acts in order and every fd is stored or closed', async (t) => {
  const run: NotifyRun = { pid: 30, mainPid: 30, ready: false, stopping: false };
  const { store, closed } = fakeStore({ 7: 'x', 8: 'y' });
  const log = memoryLog();
  const base = {
    run,
    sender: 30,
    store,
    fdStoreMax: 4,
    isMainCandidate: (pid: number) => pid === 30 || pid === 50,
    close: (fd: number) => void closed.push(fd),
    log,
  };
  const first = applyNotifyMessage({
    ...base,
    text: 'MAINPID=50\nREADY=1\nSTATUS=up\u001b[0m\nFDSTORE=1\nFDNAME=conn',
    fds: [7, 8],
  });
  t.same(first, {
    run: { pid: 30, mainPid: 50, ready: true, stopping: false },
    status: 'up\\x1b[0m',
  });
  t.same(store.entries, [
    { name: 'conn', fd: 7 },
    { name: 'conn', fd: 8 },
  ]);
  t.same(
    log.records.map((r) => r.event),
    ['process-mainpid', 'fd-stored', 'process-status', 'process-ready'],
  );
  const second = applyNotifyMessage({
    ...base,
    run: first.run,
    sender: 50,
    text: 'MAINPID=99\nREADY=1\nSTOPPING=1',
    fds: [9],
  });
  t.same(second.run, { pid: 30, mainPid: 50, ready: true, stopping: true }, 'MAINPID=99 refused');
  t.same(closed, [9], 'fds without FDSTORE=1 closed');
  t.match(log.records.slice(4), [
    { event: 'notify-refused', reason: 'mainpid', pid: 50 },
    { event: 'fd-store-refused', reason: 'no-fdstore', closed: 1 },
    { event: 'process-stopping', pid: 50 },
  ]);
  applyNotifyMessage({ ...base, store: null, text: 'FDSTORE=1', fds: [10] });
  applyNotifyMessage({ ...base, fdStoreMax: 0, text: 'FDSTORE=1', fds: [11] });
  applyNotifyMessage({ ...base, text: 'FDSTORE=1\nFDNAME=a:b', fds: [12] });
  t.same(closed, [9, 10, 11, 12]);
  t.same(
    log.records.slice(7).map((r) => r.reason),
    ['stopped', 'off', 'invalid', 'invalid-fdname'],
  );
});

const resolveFile = (json: Record<string, unknown>) => {
  const result = validateServiceFile('web.json', { exec: ['/bin/true'], ...json });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  const listen = [json.listen as string].map((a) => {
    const parsed = parseListenAddress(a);
    if (!parsed.ok) throw new Error(a);
    return parsed.address;
  });
  return resolveActivation('web', result.value, listen);
};

t.test('fdStoreMax: accept: false with fd3 only, refused otherwise with its pointer', async (t) => {
  t.equal(
    resolveFile({ listen: 'tcp:80', accept: false, fdStoreMax: 8 }).activation?.fdStoreMax,
    8,
  );
  t.same(resolveFile({ listen: 'tcp:80', accept: false, fdStoreMax: 8 }).problems, []);
  t.same(resolveFile({ listen: 'tcp:80', fdStoreMax: 8 }).problems, [
    {
      pointer: '/fdStoreMax',
      message:
        'needs accept: false: the fd store keeps fds for the one process of a service that takes its sockets, and handlers per connection have none',
      severity: 'error',
    },
  ]);
  t.same(resolveFile({ listen: 'tcp:80', fdStoreMax: 0 }).problems, []);
  t.same(
    resolveFile({ listen: 'tcp:80', accept: false, listenerOn: 'stdin', fdStoreMax: 1 }).problems,
    [
      {
        pointer: '/fdStoreMax',
        message:
          'cannot work with accept: false (listenerOn stdin passes no LISTEN_FDS to give stored fds back in; use fd3 or fdStoreMax 0)',
        severity: 'error',
      },
    ],
  );
  const tooMany = validateServiceFile('web.json', {
    listen: 'tcp:80',
    exec: ['/bin/true'],
    fdStoreMax: -1,
  });
  t.equal(tooMany.ok, false);
});

const addon = loadNativeAddon();

/** Runs python3 with `script` and `args`; its stdout. */
function python(script: string, ...args: string[]): string {
  return execFileSync('/usr/bin/python3', ['-c', script, ...args], { encoding: 'utf8' });
}

t.test(
  'the native notify socket: sender, fds, a message too big dropped with its fds closed',
  { skip: addon === null ? 'the native addon is not built' : false },
  async (t) => {
    if (addon === null) return;
    const name = `socketeer-notify-unit/${process.pid}`;
    const fd = addon.notifyOpen(name);
    t.teardown(() => addon.closeFd(fd));
    t.equal(addon.notifyReceive(fd), null, 'nothing waiting: null, not a block');
    t.throws(() => addon.notifyOpen(name), { code: 'EADDRINUSE' });
    const send =
      'import os,socket,sys\n' +
      's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n' +
      's.connect(b"\\0"+sys.argv[1].encode())\n' +
      'f=os.open("/dev/null",os.O_RDONLY)\n' +
      'socket.send_fds(s,[b"READY=1\\nFDSTORE=1"],[f,f])\n' +
      'socket.send_fds(s,[b"x"*70000],[f,f])\n' +
      's.send(b"STATUS=after")\n' +
      'print(os.getpid())\n';
    const before = readdirSync('/proc/self/fd').length;
    const sender = Number(python(send, name).trim());
    const first = addon.notifyReceive(fd);
    t.match(first, {
      pid: sender,
      uid: process.getuid?.(),
      gid: process.getgid?.(),
      truncated: false,
    });
    t.equal(first?.data.toString(), 'READY=1\nFDSTORE=1');
    t.equal(first?.fds.length, 2);
    for (const received of first?.fds ?? []) {
      t.equal(fstatSync(received).isCharacterDevice(), true, 'the /dev/null it sent');
      addon.closeFd(received);
    }
    const big = addon.notifyReceive(fd);
    t.match(big, { pid: sender, truncated: true, fds: [] });
    t.equal(big?.data.length, 0);
    t.equal(readdirSync('/proc/self/fd').length, before, 'the fds of the dropped message closed');
    t.equal(addon.notifyReceive(fd)?.data.toString(), 'STATUS=after', 'the next one is whole');
    t.equal(addon.notifyReceive(fd), null);
  },
);
