// systemd .socket + .service pairs in socketeer's terms: sections, continuation, drop-in resets,
// ExecStart quoting, prefixes and specifiers, Accept=yes/no, and malformed units giving
// FILE:LINE: Key: message.
import t from 'tap';
import { formatCompatProblem, formatOrigin, toServiceFileValue } from '../../src/compat/model.js';
import { parseExecStart, splitWords } from '../../src/compat/systemd-exec.js';
import { mapSocketUnit, type LoadedUnit } from '../../src/compat/systemd-socket.js';
import { expandUnitSpecifiers } from '../../src/compat/systemd-specifiers.js';
import { parseUnitText } from '../../src/compat/systemd-unit.js';

function unit(name: string, ...texts: string[]): LoadedUnit {
  const parsed = texts.map((text, i) =>
    parseUnitText(i === 0 ? name : `${name}.d/${i}.conf`, text),
  );
  return { unit: name, file: name, entries: parsed.flatMap((p) => p.entries) };
}

function pair(socket: LoadedUnit, ...services: LoadedUnit[]) {
  return mapSocketUnit({
    socket,
    findService: (name) => services.find((s) => s.unit === name) ?? null,
  });
}

t.test('git-daemon.socket + git-daemon@.service (Accept=yes)', async (t) => {
  const result = pair(
    unit(
      'git-daemon.socket',
      '[Unit]\nDescription=Git Activation Socket\n\n[Socket]\nListenStream=9418\nAccept=true\nMaxConnectionsPerSource=4\nNoDelay=yes\n\n[Install]\nWantedBy=sockets.target\n',
    ),
    unit(
      'git-daemon@.service',
      `[Unit]
Description=Git Repositories Server Daemon
Documentation=man:git-daemon(1)

[Service]
User=git
Environment="BASE=/srv/my git" MODE=export
ExecStart=-/usr/bin/git daemon --base-path=\${BASE} --\${MODE}-all \\
          --inetd --verbose "--informative-errors" %p 100%%
StandardInput=socket
StandardError=journal
LimitNOFILE=256:1024
RuntimeMaxSec=5min
`,
    ),
  );
  t.same(result.problems.map(formatCompatProblem), []);
  t.same(result.notes.map(formatCompatProblem), [
    'git-daemon.socket:11: WantedBy: accepted, no effect: socketeer binds every socket at start and needs no enabling',
    'git-daemon@.service:3: Documentation: accepted, no effect: socketeer binds every socket at start and needs no ordering',
    'git-daemon@.service:8: ExecStart: the "-" prefix: accepted; socketeer logs the exit status and nothing else depends on it',
  ]);
  const [service] = result.services;
  t.equal(service?.name, 'git-daemon');
  t.same(toServiceFileValue(service?.json), {
    listen: 'tcp:9418',
    limits: { perSource: 4, instances: 64, runtimeMaxSec: 300 },
    socket: { noDelay: true },
    description: 'Git Repositories Server Daemon',
    env: { BASE: '/srv/my git', MODE: 'export' },
    stderr: 'log',
    user: 'git',
    exec: [
      '/usr/bin/git',
      'daemon',
      '--base-path=/srv/my git',
      '--export-all',
      '--inetd',
      '--verbose',
      '--informative-errors',
      'git-daemon',
      '100%%',
    ],
    rlimits: { nofile: { soft: 256, hard: 1024 } },
  });
  t.equal(
    formatOrigin(service?.sources.get('/limits/instances') ?? { file: '', line: 0, directive: '' }),
    'git-daemon.socket:6 (MaxConnections (systemd default 64))',
  );
  t.equal(
    formatOrigin(service?.sources.get('/exec') ?? { file: '', line: 0, directive: '' }),
    'git-daemon@.service:8 (ExecStart)',
  );
});

t.test(
  'aptly.socket + aptly.service (Accept=no) with a drop-in that resets ListenStream',
  async (t) => {
    const result = pair(
      unit(
        'aptly.socket',
        '[Socket]\nListenStream=/home/archive/aptly.sock\nSocketMode=0660\nSocketUser=archive\nSocketGroup=archivesocket\nRemoveOnStop=yes\n',
        '[Socket]\nListenStream=\nListenStream=/run/aptly.sock\nListenStream=127.0.0.1:8080\n',
      ),
      unit(
        'aptly.service',
        '[Service]\nExecStart=/usr/bin/aptly api serve\nWorkingDirectory=~\nUser=archive\nRestart=always\nNice=5\nUMask=027\n',
      ),
    );
    t.same(result.problems.map(formatCompatProblem), []);
    t.same(toServiceFileValue(result.services[0]?.json), {
      socket: { mode: '0660', user: 'archive', group: 'archivesocket' },
      listen: ['unix:/run/aptly.sock', 'tcp:127.0.0.1:8080'],
      accept: false,
      fdName: 'aptly.socket',
      stderr: 'log',
      exec: ['/usr/bin/aptly', 'api', 'serve'],
      cwd: '%h',
      user: 'archive',
      restart: 'always',
      nice: 5,
      umask: '0027',
    });
    t.equal(
      formatOrigin(
        result.services[0]?.sources.get('/listen') ?? { file: '', line: 0, directive: '' },
      ),
      'aptly.socket.d/1.conf:3 (ListenStream)',
    );
  },
);

t.test(
  'EnvironmentFile=: its variables override Environment=, each from its FILE:LINE',
  async (t) => {
    const service: LoadedUnit = {
      ...unit(
        'e.service',
        '[Service]\nEnvironment=A=1 B=2\nEnvironmentFile=/etc/default/e\nEnvironmentFile=-/etc/default/missing\nExecStart=/bin/echo $A ${B}\n',
      ),
      environmentFiles: new Map([
        ['/etc/default/e', '# defaults\nA="one two"\n\n; also a comment\nC=3\n'],
        ['/etc/default/missing', null],
      ]),
    };
    const result = pair(unit('e.socket', '[Socket]\nListenStream=80\n'), service);
    t.same(result.problems, []);
    t.same(result.services[0]?.json.env, { A: 'one two', B: '2', C: '3' });
    t.same(result.services[0]?.json.exec, ['/bin/echo', 'one', 'two', '2']);
    t.equal(
      formatOrigin(
        result.services[0]?.sources.get('/env/A') ?? { file: '', line: 0, directive: '' },
      ),
      '/etc/default/e:2 (A)',
    );
    t.match(result.notes.map(formatCompatProblem), [
      'e.service:4: EnvironmentFile: /etc/default/missing could not be read; skipped ("-")',
    ]);
  },
);

t.test('ExecStart: quoting, escapes, prefixes', async (t) => {
  t.same(splitWords(`a "b c" 'd e' f\\x41 --x="y z" \\;`), {
    ok: true,
    value: ['a', 'b c', 'd e', 'fA', '--x=y z', ';'],
  });
  t.same(splitWords('"open'), { ok: false, message: 'unterminated " quote' });
  const none = (w: string) => ({ ok: true as const, value: [`<${w}>`] });
  t.same(parseExecStart(':/bin/echo %n', none), {
    ok: true,
    value: { argv: ['/bin/echo', '%n'], prefixes: ':' },
  });
  t.same(
    parseExecStart('@/bin/echo echo hi', (w) => ({ ok: true, value: [w] })),
    { ok: true, value: { argv: ['/bin/echo', 'hi'], prefixes: '@' } },
  );
  t.same(
    parseExecStart('@/bin/echo other hi', (w) => ({ ok: true, value: [w] })),
    { ok: false, message: '"@": argv[0] "other" other than the program is not supported' },
  );
  t.same(parseExecStart('+/bin/echo', none), {
    ok: false,
    message: 'the "+" prefix (privileges systemd manages) is not supported',
  });
  t.same(parseExecStart('!!/bin/echo', none), {
    ok: false,
    message: 'the "!" prefix (privileges systemd manages) is not supported',
  });
  t.same(
    parseExecStart('/bin/a ; /bin/b', (w) => ({ ok: true, value: [w] })),
    { ok: false, message: 'more than one command (";") is not supported' },
  );
});

t.test('specifiers', async (t) => {
  const plain = { unit: 'web\\x2dapp.service', perConnection: false };
  t.same(expandUnitSpecifiers('%n %N %p %P %i %t %S %% %h', plain), {
    ok: true,
    value: 'web\\x2dapp.service web\\x2dapp web\\x2dapp web-app  /run /var/lib % \uE000h',
  });
  t.same(expandUnitSpecifiers('%i', { unit: 'git@.service', perConnection: true }), {
    ok: false,
    message: '%i: the instance of an Accept=yes service is per connection in systemd',
  });
  t.same(expandUnitSpecifiers('%H', plain), {
    ok: false,
    message: 'specifier %H is not supported',
  });
  t.same(expandUnitSpecifiers('50%', plain), { ok: false, message: 'a lone "%" at the end' });
});

t.test('malformed units: each names FILE:LINE and the key', async (t) => {
  t.same(
    parseUnitText(
      'x.socket',
      'ListenStream=1\n[Socket]\nnot an assignment\nAccept=yes \\',
    ).problems.map(formatCompatProblem),
    [
      'x.socket:1: ListenStream: an assignment before any [Section]',
      'x.socket:3: not: expected "Key=Value"',
      'x.socket:4: Accept: continued with "\\" past the end of the file',
    ],
  );
  const result = pair(
    unit(
      'bad.socket',
      '[Socket]\nListenStream=example.org:80\nListenDatagram=/run/x\nAccept=maybe\nFreeBind=yes\n',
    ),
    unit(
      'bad.service',
      '[Service]\nExecStart=/bin/a\nExecStart=/bin/b\nType=forking\nPrivateTmp=yes\nEnvironmentFile=/etc/default/x\nDynamicUser=yes\nStandardInput=socket\n[Unit]\nConditionPathExists=/x\n',
    ),
  );
  t.same(result.problems.map(formatCompatProblem), [
    'bad.socket:4: Accept: "maybe" is not a boolean (yes or no)',
    'bad.socket:2: ListenStream: "example.org:80" is not PORT, ADDRESS:PORT, [IPV6]:PORT or an absolute path',
    'bad.socket:3: ListenDatagram: Unix datagram sockets are not supported',
    'bad.socket:5: FreeBind: not supported',
    'bad.service:10: ConditionPathExists: not supported in [Unit]',
    'bad.service:6: EnvironmentFile: /etc/default/x could not be read',
    'bad.service:3: ExecStart: more than one command is not supported',
    'bad.service:8: StandardInput: StandardInput=socket is not supported with Accept=no',
    'bad.service:4: Type: Type=forking is not supported (simple, exec, notify)',
    'bad.service:5: PrivateTmp: not supported: socketeer makes no namespaces or sandbox; remove it only if the service is safe without',
    'bad.service:7: DynamicUser: not supported: name an account with User=',
  ]);
  const lonely = pair(unit('lonely.socket', '[Socket]\nListenStream=80\nAccept=yes\n'));
  t.same(lonely.problems.map(formatCompatProblem), [
    'lonely.socket:3: Accept: no lonely@.service beside it',
  ]);
  const noStdin = pair(
    unit('a.socket', '[Socket]\nListenStream=80\nAccept=yes\n'),
    unit('a@.service', '[Service]\nExecStart=/bin/cat\n'),
  );
  t.same(noStdin.problems.map(formatCompatProblem), [
    'a@.service:1: StandardInput: Accept=yes needs StandardInput=socket: socketeer passes the connection on fd 0 and 1, not as fd 3',
  ]);
});
