// The foreign formats through the built CLI: a malformed file of each format is one problem
// FILE:LINE: Directive: message with exit 100, a FIFO among them never blocks, a name defined
// twice is a problem, resolution problems name the directive, and `convert FILE` reads each
// format by itself.
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { makeConfDir, runCli } from '../helpers/daemon.js';

t.test('a malformed file of each format: FILE:LINE: Directive: message, exit 100', async (t) => {
  const conf = makeConfDir({ 'web.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const d = conf.confDir;
  mkdirSync(join(d, 'xinetd.d'));
  writeFileSync(
    join(d, 'xinetd.d', 'broken'),
    'service broken\n{\n\tsocket_type = stream\n\twait = no\n\tserver = /bin/cat\n\tport = 7001\n\tper_source = lots\n',
  );
  writeFileSync(
    join(d, 'xinetd.d', 'web'),
    'service web\n{\n\tsocket_type = stream\n\twait = no\n\tserver = /bin/cat\n\tport = 7002\n\tuser = no-such-user-here\n}\n',
  );
  execFileSync('mkfifo', [join(d, 'xinetd.d', 'fifo')]);
  writeFileSync(
    join(d, 'inetd.conf'),
    '# ok\n7003 stream tcp nowait root /bin/cat\nfinger stream tcp\n',
  );
  writeFileSync(join(d, 'bad.socket'), '[Socket]\nListenStream=7004\nAccept=yes\nBacklog=-1\n');
  writeFileSync(
    join(d, 'bad@.service'),
    '[Service]\nExecStart=/bin/cat "unterminated\nStandardInput=socket\n',
  );
  symlinkSync('/nonexistent/x.socket', join(d, 'dangling.socket'));
  const result = await runCli(['check', '--config-dir', d]);
  t.equal(result.code, 100);
  t.same(result.stderr.trimEnd().split('\n'), [
    `${d}/bad.socket:4: Backlog: "-1" is not an integer within 1-65535`,
    `${d}/bad@.service:2: ExecStart: unterminated " quote`,
    `${d}/dangling.socket: /: unable to read: no such file or directory (ENOENT)`,
    `${d}/inetd.conf:3: finger: expected "service socktype proto wait|nowait[.max] user[:group] program argv..."`,
    `${d}/xinetd.d/broken:1: service: no closing "}" before the end of the file`,
    `${d}/xinetd.d/fifo: /: is a FIFO, not a regular file; not read`,
    `${d}/xinetd.d/web:1: service: a second service web (also defined by web.json); give one an id or rename it`,
    `socketeer: fatal: 7 problems in ${d}; nothing was started`,
  ]);
});

t.test('a resolution problem names the directive that set the value', async (t) => {
  const conf = makeConfDir({});
  t.teardown(conf.cleanup);
  writeFileSync(
    join(conf.confDir, 'inetd.conf'),
    '7005 stream tcp nowait no-such-user-here /bin/cat cat\n7006 stream tcp nowait root /no/such/program x\n',
  );
  const result = await runCli(['check', '--config-dir', conf.confDir]);
  t.equal(result.code, 100);
  t.match(
    result.stderr,
    `${conf.confDir}/inetd.conf:1: user: unknown user "no-such-user-here" (/user of 7005)\n`,
  );
  t.match(
    result.stderr,
    `${conf.confDir}/inetd.conf:2: program: /no/such/program: no such file (/exec/0 of 7006)\n`,
  );
});

t.test('check --peer explains an xinetd only_from given with --xinetd-conf', async (t) => {
  const conf = makeConfDir({});
  t.teardown(conf.cleanup);
  const file = join(conf.dir, 'xinetd.conf');
  writeFileSync(
    file,
    'service web\n{\n\tport = 7008\n\tsocket_type = stream\n\twait = no\n\tserver = /bin/cat\n\tonly_from = 10.0.0.0\n}\n',
  );
  const args = ['check', '--config-dir', conf.confDir, '--xinetd-conf', file, '--service', 'web'];
  const result = await runCli([...args, '--peer', '192.0.2.1']);
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, `service: web (${file}:1)\n`);
  t.match(result.stdout, /\ndecision: refuse \(denied\)\n$/);
});

t.test('convert FILE: each format read by itself; problems stop it', async (t) => {
  const conf = makeConfDir({});
  t.teardown(conf.cleanup);
  const x = join(conf.dir, 'xinetd-git');
  writeFileSync(
    x,
    'service git\n{\n\tport = 9418\n\tsocket_type = stream\n\twait = no\n\tserver = /bin/cat\n\tserver_args = 50%\n}\n',
  );
  const i = join(conf.dir, 'inetd.conf');
  writeFileSync(i, '127.0.0.1:7007 stream tcp nowait.60 root /bin/cat cat -u\n');
  writeFileSync(join(conf.dir, 'u.socket'), '[Socket]\nListenStream=@u\n');
  writeFileSync(join(conf.dir, 'u.service'), '[Service]\nExecStart=/bin/cat\n');
  const result = await runCli(['convert', x, i, join(conf.dir, 'u.socket')]);
  t.equal(result.code, 0, result.stderr);
  t.same(JSON.parse(result.stdout), {
    'git.json': { listen: 'tcp:9418', exec: ['/bin/cat', '50%%'] },
    '7007.json': {
      listen: 'tcp:127.0.0.1:7007',
      limits: { rate: { perSecond: 1, burst: 60 } },
      user: 'root',
      exec: ['/bin/cat', '-u'],
    },
    'u.json': {
      listen: 'unix:@u',
      accept: false,
      fdName: 'u.socket',
      stderr: 'log',
      exec: ['/bin/cat'],
    },
  });
  writeFileSync(i, 'broken\n');
  const refused = await runCli(['convert', i]);
  t.equal(refused.code, 100);
  t.same(refused.stderr.trimEnd().split('\n'), [
    `${i}:1: broken: expected "service socktype proto wait|nowait[.max] user[:group] program argv..."`,
    'socketeer: fatal: 1 problem; nothing was converted',
  ]);
});
