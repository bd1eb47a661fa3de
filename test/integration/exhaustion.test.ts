import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import t from 'tap';
import {
  DaemonUnderTest,
  cleanEnv,
  cli,
  exchange,
  isEvent,
  isRoot,
  makeConfDir,
  spawnClean,
} from '../helpers/daemon.js';

// The native accept's own case (nothing dropped) is in accept.test.ts; this is net.Server's.
t.test(
  'out of fds (EMFILE), portable spawner: logged, nothing crashes, serving resumes',
  async (t) => {
    const conf = makeConfDir({
      'hold.json': { listen: 'tcp:127.0.0.1:0', exec: ['sleep', '30'] },
      'quick.json': { listen: 'tcp:127.0.0.1:0', exec: ['echo', 'still here'] },
    });
    t.teardown(conf.cleanup);
    // a real EMFILE: the daemon runs with RLIMIT_NOFILE 64, and each held handler costs it fds
    const daemon = await DaemonUnderTest.start(
      conf.confDir,
      ['--spawner', 'portable'],
      cleanEnv(),
      ['prlimit', '--nofile=64:64', '--'],
    );
    t.teardown(() => daemon.stop());
    const clients: Socket[] = [];
    t.teardown(() => clients.forEach((c) => c.destroy()));
    const { host, port } = daemon.tcp('hold');
    for (let i = 0; i < 80; i += 1) {
      const c = connect(port, host);
      c.on('error', () => {});
      clients.push(c);
    }
    const exhausted = await daemon.waitForLog(
      (r) => r.code === 'EMFILE' || r.code === 'ENFILE',
      15000,
    );
    t.match(exhausted, { level: 'error' });
    t.ok(
      ['spawn-failed', 'accept-failed'].includes(exhausted.event),
      `recorded as ${exhausted.event}`,
    );
    t.equal(daemon.child.exitCode, null, 'the daemon is still running');
    for (const c of clients) c.destroy();
    spawnSync('pkill', ['-TERM', '-P', String(daemon.pid), 'sleep']);
    await daemon.waitForCount(
      isEvent('end', 'hold'),
      daemon.records.filter(isEvent('accept', 'hold')).length,
      20000,
    );
    t.equal(
      (await exchange(daemon.tcp('quick'), null)).toString(),
      'still here\n',
      'serving again',
    );
  },
);

t.test(
  'a daemon that is not root may not switch users',
  { skip: isRoot ? false : 'needs root to run the check as nobody' },
  async (t) => {
    const conf = makeConfDir({
      'as-root.json': { listen: 'tcp:127.0.0.1:0', exec: ['true'], user: 'root' },
    });
    t.teardown(conf.cleanup);
    chmodSync(conf.dir, 0o755);
    const child = spawnClean([
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      cli,
      'check',
      '--config-dir',
      conf.confDir,
    ]);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise((resolve) => child.on('close', resolve));
    t.equal(
      stderr.split('\n')[0],
      `${conf.confDir}/as-root.json: /user: changing user needs a root daemon (this one runs as uid 65534)`,
    );
    t.equal(code, 100);
  },
);
