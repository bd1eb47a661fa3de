import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  DaemonUnderTest,
  exchange,
  isEvent,
  makeConfDir,
  runCli,
  writeServices,
} from '../helpers/daemon.js';

const count = 60;
const names = Array.from({ length: count }, (_, i) => `s${String(i).padStart(2, '0')}`);
const echoing = (word: string) => ({ listen: 'tcp:127.0.0.1:0', exec: ['/bin/echo', word] });

/** The daemon's listening TCP sockets: port → `fd inode` (the fd holding it, its socket inode). */
function listenersOf(pid: number): Map<number, string> {
  const fdOf = new Map<string, string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1] !== undefined) fdOf.set(m[1], fd);
    } catch {
      // closed meanwhile
    }
  }
  const out = new Map<number, string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
    const fd = inode === undefined ? undefined : fdOf.get(inode);
    if (state === '0A' && fd !== undefined && local !== undefined)
      out.set(parseInt(local.split(':')[1] ?? '', 16), `${fd} ${inode}`);
  }
  return out;
}

t.test('a reload that changes one of many services touches no other listener', async (t) => {
  const files = Object.fromEntries(names.map((n) => [`${n}.json`, echoing(n)]));
  const conf = makeConfDir(files);
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const before = listenersOf(daemon.pid);
  t.equal(before.size, count, 'one listening socket per service');
  const ports = new Map(names.map((n) => [n, daemon.tcp(n).port]));
  t.same([...before.keys()].sort(), [...ports.values()].sort());
  const listens = daemon.records.filter(isEvent('listen')).length;
  t.equal(listens, count);

  writeServices(conf.confDir, { 's07.json': echoing('seven') });
  const reload = await runCli(['reload', '--control', control]);
  t.same(reload, {
    code: 0,
    stdout: `reloaded: ${count - 1} unchanged, 1 changed (s07), 0 added, 0 removed\n`,
    stderr: '',
  });
  await daemon.waitForLog(isEvent('reload'));
  t.same(listenersOf(daemon.pid), before, 'every listener kept: same fd, same socket');
  t.equal(daemon.records.filter(isEvent('listen')).length, listens, 'nothing bound again');
  t.equal((await exchange(daemon.tcp('s07'), null)).toString(), 'seven\n', 'the new definition');
  t.equal((await exchange(daemon.tcp('s31'), null)).toString(), 's31\n');

  // a socket option that needs a new socket: that service's listener alone is replaced (its
  // address is port 0, so the new socket gets a port of its own)
  writeServices(conf.confDir, { 's42.json': { ...echoing('s42'), socket: { backlog: 64 } } });
  const rebind = await runCli(['reload', '--control', control]);
  t.equal(rebind.stdout, `reloaded: ${count - 1} unchanged, 1 changed (s42), 0 added, 0 removed\n`);
  await daemon.waitForCount(isEvent('reload'), 2);
  const fresh = daemon.records.filter(isEvent('listen')).slice(listens);
  t.same(
    fresh.map((r) => r.service),
    ['s42'],
    'one listen record: the rebound service',
  );
  const port = Number(/:(\d+)$/.exec(String(fresh[0]?.address))?.[1]);
  const after = listenersOf(daemon.pid);
  const old = ports.get('s42') ?? -1;
  t.same(
    [...after].filter(([p]) => p !== port),
    [...before].filter(([p]) => p !== old),
    'the other services keep theirs; the old s42 socket is closed',
  );
  t.ok(after.has(port), 's42 listens on its new socket');
  t.equal((await exchange({ host: '127.0.0.1', port }, null)).toString(), 's42\n');
});
