// xinetd files in socketeer's terms: blocks, defaults, operators, every mapped attribute, and
// malformed files giving FILE:LINE: Directive: message.
import t from 'tap';
import { formatCompatProblem, formatOrigin, type CompatResult } from '../../src/compat/model.js';
import { parseServicesText } from '../../src/compat/services-db.js';
import { isXinetdIncludedName, parseXinetdText } from '../../src/compat/xinetd.js';
import { mapXinetdFiles } from '../../src/compat/xinetd-map.js';

const services = parseServicesText(
  'rsync\t\t873/tcp\nrsync 873/udp\ntftp 69/udp\necho 7/tcp\necho 7/udp\n',
);

function map(...texts: string[]): CompatResult {
  return mapXinetdFiles(
    texts.map((text, i) => parseXinetdText(`f${i}`, text)),
    services,
  );
}

const rsync = `# rsync
service rsync
{
	disable		= no
	socket_type	= stream
	wait		= no
	user		= root
	server		= /usr/bin/rsync
	server_args	= --daemon
	log_on_failure	+= USERID
	only_from	= 127.0.0.1 10.0.0.0 192.168.{1,2} 2001:db8::/32 localhost
	no_access	= 10.9.0.0
	instances	= 4
	per_source	= 2
	cps		= 5 10
	access_times	= 8:00-17:30
	max_load	= 2.5
	flags		= NODELAY KEEPALIVE IPv4
	env		= A=1 B=x=y
	passenv		= LANG TZ
	umask		= 027
	nice		= 5
	rlimit_files	= 1024
	rlimit_as	= 64M
	groups		= yes
}
`;

t.test('every attribute of a TCP nowait service maps to its key, with its FILE:LINE', async (t) => {
  const result = map(rsync);
  t.same(result.problems, []);
  t.same(result.skipped, []);
  t.same(result.notes.map(formatCompatProblem), [
    'f0:10: log_on_failure: accepted, no effect: socketeer logs every refusal with its reason',
  ]);
  t.equal(result.services.length, 1);
  const [service] = result.services;
  t.equal(service?.name, 'rsync');
  t.same(service?.json, {
    socket: { noDelay: true, keepAlive: true },
    listen: 'tcp:0.0.0.0:873',
    exec: ['/usr/bin/rsync', '--daemon'],
    user: 'root',
    access: {
      allow: [
        '127.0.0.1',
        '10.0.0.0/8',
        '192.168.1.0/24',
        '192.168.2.0/24',
        '2001:db8::/32',
        '127.0.0.1',
        '::1',
      ],
      deny: ['10.9.0.0/16'],
      times: ['08:00-17:30'],
    },
    limits: { instances: 4, perSource: 2, rate: { perSecond: 5, burst: 5 }, maxLoad: 2.5 },
    env: { A: '1', B: 'x=y' },
    passEnv: ['LANG', 'TZ'],
    umask: '0027',
    nice: 5,
    rlimits: { nofile: 1024, as: '64M' },
    groups: true,
  });
  const sources = new Map([...(service?.sources ?? [])].map(([k, v]) => [k, formatOrigin(v)]));
  t.equal(sources.get('/listen'), 'f0:5 (socket_type)');
  t.equal(sources.get('/access/allow'), 'f0:11 (only_from)');
  t.equal(sources.get('/limits/rate'), 'f0:15 (cps)');
  t.equal(sources.get('/exec'), 'f0:9 (server_args)');
});

t.test(
  'defaults apply, += adds to them, -= takes away; disabled in defaults disables',
  async (t) => {
    const conf = `defaults
{
	only_from	= 10.0.0.0 127.0.0.1
	instances	= 60
	log_type	= SYSLOG daemon info
	disabled	= off
}
`;
    const one = `service on
{
	port = 7000
	socket_type = stream
	wait = no
	server = /bin/cat
	only_from += 192.168.0.0
	only_from -= 10.0.0.0
}
service off
{
	port = 7001
	socket_type = stream
	wait = no
	server = /bin/cat
	instances = UNLIMITED
}
`;
    const result = map(conf, one);
    t.same(result.problems, []);
    const [on, off] = result.services;
    t.same(on?.json.access, { allow: ['127.0.0.1', '192.168.0.0/16'] });
    t.same(on?.json.limits, { instances: 60 });
    t.equal(
      formatOrigin(on?.sources.get('/limits/instances') ?? { file: '', line: 0, directive: '' }),
      'f0:4 (instances)',
    );
    t.same(off?.json.limits, undefined, 'UNLIMITED: no cap');
    t.equal(off?.json.disabled, true);
    t.match(result.notes.map(formatCompatProblem), [
      'f0:5: log_type: accepted, no effect: socketeer writes its own log (accept, refuse and end records)',
    ]);
  },
);

t.test(
  'wait = yes: accept false on stdin; dgram is udp; the port from /etc/services',
  async (t) => {
    const result = map(`service tftp
{
	socket_type = dgram
	protocol = udp
	wait = yes
	user = root
	server = /usr/sbin/in.tftpd
	server_args = -s /srv/tftp
	id = tftp-udp
}
service git
{
	type = UNLISTED
	port = 9418
	socket_type = stream
	wait = yes
	server = /usr/bin/git
	server_args = git daemon --inetd
	flags = NAMEINARGS IPv6
	bind = 127.0.0.1
}
`);
    t.same(result.problems, []);
    t.same(
      result.services.map((s) => [
        s.name,
        s.json.listen,
        s.json.accept,
        s.json.listenerOn,
        s.json.exec,
      ]),
      [
        ['tftp-udp', 'udp:69', false, 'stdin', ['/usr/sbin/in.tftpd', '-s', '/srv/tftp']],
        ['git', 'tcp:127.0.0.1:9418', false, 'stdin', ['/usr/bin/git', 'daemon', '--inetd']],
      ],
    );
  },
);

t.test(
  'INTERNAL echo is a builtin, other INTERNAL names skipped and listed; limits on wait = yes and unknowns are problems',
  async (t) => {
    const result = map(`service echo
{
	type = INTERNAL
	id = echo-stream
	socket_type = stream
	wait = no
}
service x
{
	port = 7000
	socket_type = stream
	wait = yes
	server = /bin/cat
	instances = 3
	redirect = 10.0.0.1 80
	rlimit_rss = 10
	flags = SENSOR
	frobnicate = 1
}
service servers
{
	type = INTERNAL UNLISTED
	port = 9099
	socket_type = stream
	wait = no
}
service echo
{
	type = INTERNAL
	id = echo-dgram
	socket_type = dgram
	protocol = udp
	user = root
	wait = yes
	only_from = 127.0.0.1
}
`);
    t.same(result.skipped.map(formatCompatProblem), [
      "f0:22: type: INTERNAL service servers is not one of socketeer's built-ins (echo, discard, chargen, daytime, time); service servers skipped",
    ]);
    t.same(
      result.services.map((s) => [s.name, s.json]),
      [
        ['echo-stream', { listen: 'tcp:7', builtin: 'echo' }],
        ['echo-dgram', { listen: 'udp:7', builtin: 'echo', access: { allow: ['127.0.0.1'] } }],
      ],
    );
    t.same(
      result.notes.map(formatCompatProblem).filter((n) => n.includes('built-in')),
      [
        'f0:6: wait: accepted, no effect: a built-in is served by the daemon itself, no process',
        'f0:33: user: accepted, no effect: a built-in is served by the daemon itself, no process',
        'f0:34: wait: accepted, no effect: a built-in is served by the daemon itself, no process',
      ],
    );
    t.same(result.problems.map(formatCompatProblem), [
      'f0:14: instances: not honoured: with wait = yes the process accepts by itself: socketeer has no connection to admit',
      'f0:15: redirect: not supported: socketeer does not proxy yet',
      'f0:16: rlimit_rss: not supported (rlimit_as, rlimit_cpu, rlimit_data, rlimit_files, rlimit_stack are)',
      'f0:17: flags: flag SENSOR is not supported',
      'f0:18: frobnicate: not supported',
    ]);
  },
);

t.test('malformed files: every problem names FILE:LINE and the directive', async (t) => {
  const cases: [string, string[]][] = [
    ['service a\nport = 1\n', ['f0:2: service: expected "{" on the line after']],
    [
      'service a\n{\n\tport 7\n}\n',
      [
        'f0:3: port: expected "attribute = value", "+=" or "-="',
        'f0:1: socket_type: missing: xinetd requires it',
        'f0:1: wait: missing: xinetd requires it',
        'f0:1: server: missing: xinetd requires it',
      ],
    ],
    ['service a\n{\n\tport = 7\n', ['f0:1: service: no closing "}" before the end of the file']],
    [
      'bogus line\n',
      [
        'f0:1: bogus: expected "service NAME", "defaults", "include" or "includedir" outside a block',
      ],
    ],
    [
      'service a\n{\nsocket_type = stream\nwait = maybe\nserver = cat\nport = 99999\n}\n',
      ['f0:4: wait: "maybe" is not yes or no', 'f0:5: server: "cat" is not an absolute path'],
    ],
    [
      'service nope\n{\nsocket_type = stream\nwait = no\nserver = /bin/cat\nonly_from = example.org\n}\n',
      [
        'f0:1: port: no port, and no tcp port for "nope" in /etc/services',
        'f0:6: only_from: "example.org" is not an address or a CIDR prefix (names are not resolved)',
      ],
    ],
  ];
  for (const [text, expected] of cases)
    t.same(map(text).problems.map(formatCompatProblem), expected, text);
});

t.test("xinetd's includedir skips names with a dot or ending in ~", async (t) => {
  t.same(['git', 'rsync~', 'rsync.dpkg-old', '.hidden', 'tftp'].filter(isXinetdIncludedName), [
    'git',
    'tftp',
  ]);
});
