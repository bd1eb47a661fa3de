// socketeer under systemd: the units `install-units` writes pass `systemd-analyze verify`, and
// the daemon's notifications (READY=1, RELOADING=1, STOPPING=1, STATUS=) reach a real
// NOTIFY_SOCKET: a Unix datagram socket this test binds.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DaemonUnderTest, cleanEnv, cli, exchange, makeConfDir, root } from '../helpers/daemon.js';
import { DatagramSink } from '../helpers/dgram-sink.js';

const analyze = '/usr/bin/systemd-analyze';
const skip =
  existsSync(analyze) || process.env.CI === 'true' ? false : 'systemd-analyze is not installed';

function run(
  args: string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env,
    timeout: 30000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * `systemd-analyze [--user] verify` of one file: every warning counts, as stdout or stderr. Its
 * Documentation= pages are looked up in `manDir` (the pages scripts/man.mjs builds).
 */
function verify(
  file: string,
  dirs: { runtime: string; man: string },
  user: boolean,
): { code: number | null; output: string } {
  const result = spawnSync(analyze, [...(user ? ['--user'] : []), 'verify', file], {
    encoding: 'utf8',
    env: cleanEnv({
      XDG_RUNTIME_DIR: dirs.runtime,
      MANPATH: dirs.man,
      SYSTEMD_LOG_LEVEL: 'notice',
    }),
    timeout: 60000,
  });
  return { code: result.status, output: result.stdout + result.stderr };
}

t.test(
  'install-units writes units with this installation paths; they pass verify',
  { skip },
  async (t) => {
    const conf = makeConfDir({});
    t.teardown(conf.cleanup);
    const runtimeDir = join(conf.dir, 'run');
    mkdirSync(runtimeDir, { mode: 0o700 });
    const main = join(root, 'dist/src/main.js');
    const man = join(conf.dir, 'man');
    t.equal(spawnSync(process.execPath, [join(root, 'scripts/man.mjs'), man]).status, 0);
    const dirs = { runtime: runtimeDir, man };
    for (const user of [false, true]) {
      const dir = join(conf.dir, user ? 'user' : 'system');
      const written = run(['install-units', '--dir', dir, ...(user ? ['--user'] : [])]);
      const file = join(dir, 'socketeer.service');
      const systemctl = user ? 'systemctl --user' : 'systemctl';
      t.equal(
        written.stdout,
        `wrote ${file}\nnext: ${systemctl} daemon-reload && ${systemctl} enable --now socketeer.service\n`,
      );
      t.equal(written.stderr, '');
      t.equal(written.code, 0);
      const unit = readFileSync(file, 'utf8');
      t.equal(statSync(file).mode & 0o777, 0o644);
      t.match(unit, `\nExecStart=${process.execPath} ${main} serve\n`);
      t.match(unit, `\nExecReload=${process.execPath} ${main} reload\n`);
      t.match(unit, '\nType=notify\n');
      t.match(unit, '\nKillMode=mixed\n');
      t.notMatch(unit, /@[A-Z]+@/, 'no placeholder left');
      t.same(verify(file, dirs, user), { code: 0, output: '' }, `verify ${file}`);
    }
    // verify does find problems: the same unit with a key it does not know
    const broken = join(conf.dir, 'broken', 'socketeer.service');
    mkdirSync(join(conf.dir, 'broken'));
    writeFileSync(
      broken,
      readFileSync(join(conf.dir, 'system/socketeer.service'), 'utf8').replace(
        'KillMode=mixed',
        'KillMod=mixed',
      ),
    );
    t.match(verify(broken, dirs, false).output, /Unknown key 'KillMod'/);
  },
);

t.test('install-units into a directory it cannot make: exit 111', async (t) => {
  const conf = makeConfDir({});
  t.teardown(conf.cleanup);
  const file = join(conf.dir, 'a-file');
  writeFileSync(file, '');
  const result = run(['install-units', '--dir', join(file, 'units')]);
  t.equal(result.stdout, '');
  t.equal(
    result.stderr,
    `socketeer: fatal: cannot write units in ${file}/units: ${'not a directory'} (ENOTDIR)\n`,
  );
  t.equal(result.code, 111);
});

t.test('READY=1, RELOADING=1, STOPPING=1 and STATUS= reach NOTIFY_SOCKET', async (t) => {
  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const socket = join(conf.dir, 'notify');
  const sink = await DatagramSink.bind(socket);
  t.teardown(() => sink.close());
  const daemon = await DaemonUnderTest.start(conf.confDir, [], cleanEnv({ NOTIFY_SOCKET: socket }));
  const ready = await sink.waitFor((m) => m.startsWith('READY=1'));
  t.equal(
    ready,
    `READY=1\nMAINPID=${daemon.pid}\nSTATUS=1 service, 1 listener; 0 running, 0 accepted, 0 refused`,
  );

  t.equal((await exchange(daemon.tcp('echo'), 'hi\n')).toString(), 'hi\n');
  await daemon.waitForLog((r) => r.event === 'end');
  const control = join(conf.dir, 'control.sock');
  const reload = run(['reload', '--control', control]);
  t.equal(reload.code, 0, reload.stderr);
  const reloading = await sink.waitFor((m) => m.startsWith('RELOADING=1'));
  t.match(reloading, /^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading$/);
  const usec = Number(/MONOTONIC_USEC=(\d+)/.exec(reloading)?.[1]);
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  t.ok(Math.abs(usec / 1e6 - uptime) < 60, `CLOCK_MONOTONIC: ${usec} µs, uptime ${uptime} s`);
  const reloaded = await sink.waitFor((m) => m.startsWith('READY=1') && m !== ready);
  t.equal(reloaded, 'READY=1\nSTATUS=1 service, 1 listener; 0 running, 1 accepted, 0 refused');

  writeFileSync(join(conf.confDir, 'broken.json'), '{');
  daemon.child.kill('SIGHUP');
  const failed = await sink.waitFor((m) => m.includes('reload failed'));
  t.equal(
    failed,
    'READY=1\nSTATUS=reload failed (config); 1 service, 1 listener; 0 running, 1 accepted, 0 refused',
  );

  t.same(await daemon.stop(), { code: 0, signal: null });
  const stopping = await sink.waitFor((m) => m.startsWith('STOPPING=1'));
  t.equal(
    stopping,
    'STOPPING=1\nSTATUS=stopping; 1 service, 1 listener; 0 running, 1 accepted, 0 refused',
  );
  const expected = ['READY=1', 'RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1'];
  t.same(
    sink.messages.filter((m) => m !== 'BARRIER=1').map((m) => m.split('\n')[0]),
    expected,
    'in this order, nothing else (systemd-notify adds BARRIER=1 to wait for each)',
  );
  t.notOk(daemon.records.some((r) => r.event === 'notify-failed'));
});
