// inetd.conf lines in socketeer's terms, /etc/services lookups, and malformed lines giving
// FILE:LINE: field: message.
import t from 'tap';
import { parseInetdConf } from '../../src/compat/inetd-conf.js';
import { formatCompatProblem, formatOrigin } from '../../src/compat/model.js';
import { parseServicesText, resolvePort } from '../../src/compat/services-db.js';

const services = parseServicesText(`# /etc/services
finger		79/tcp
tftp		69/udp
ftp		21/tcp		fsp fspd	# an alias
ftp		2121/tcp	# a second line: the first wins
echo		7/tcp
echo		7/udp
tcpmux		1/tcp
`);

t.test('/etc/services: names, aliases, per protocol; the first line wins', async (t) => {
  t.equal(services.port('finger', 'tcp'), 79);
  t.equal(services.port('finger', 'udp'), null);
  t.equal(services.port('fspd', 'tcp'), 21);
  t.equal(services.port('ftp', 'tcp'), 21);
  t.equal(resolvePort('8080', 'tcp', services), 8080);
  t.equal(resolvePort('0', 'tcp', services), 'port 0 is not within 1-65535');
  t.equal(resolvePort('gopher', 'tcp', services), 'no tcp port for "gopher" in /etc/services');
});

t.test(
  'tcp nowait, nowait.max, udp wait, tcp6, an address, a unix path, internal built-ins',
  async (t) => {
    const result = parseInetdConf(
      'inetd.conf',
      `# finger
finger	stream	tcp	nowait.120	nobody	/usr/sbin/in.fingerd	in.fingerd -w
tftp	dgram	udp	wait	root:nogroup	/usr/sbin/in.tftpd	in.tftpd -s /srv/tftp

finger	stream	tcp6	nowait	nobody.nogroup	/usr/sbin/in.fingerd	in.fingerd
127.0.0.1:8080	stream	tcp	wait	www-data	/usr/sbin/httpd	httpd --inetd
/run/x.sock	stream	unix	nowait	1000	/bin/cat	mycat
echo	stream	tcp	nowait	root	internal
echo	dgram	udp	wait	root	internal
tcpmux	stream	tcp	nowait	root	internal
`,
      services,
    );
    t.same(result.problems, []);
    t.same(result.skipped.map(formatCompatProblem), [
      "inetd.conf:10: internal: internal tcpmux is not one of socketeer's built-ins over tcp or udp (echo, discard, chargen, daytime, time); service tcpmux skipped",
    ]);
    t.same(result.notes.map(formatCompatProblem), [
      'inetd.conf:7: argv: argv[0] "mycat" is not passed: the program gets its path as argv[0]',
      'inetd.conf:8: user: accepted, no effect: a built-in is served by the daemon itself, no process',
      'inetd.conf:9: user: accepted, no effect: a built-in is served by the daemon itself, no process',
    ]);
    t.same(
      result.services.map((s) => [s.name, s.json]),
      [
        [
          'finger',
          {
            listen: 'tcp:0.0.0.0:79',
            limits: { rate: { perSecond: 2, burst: 120 } },
            user: 'nobody',
            exec: ['/usr/sbin/in.fingerd', '-w'],
          },
        ],
        [
          'tftp',
          {
            listen: 'udp:0.0.0.0:69',
            accept: false,
            listenerOn: 'stdin',
            user: 'root',
            group: 'nogroup',
            exec: ['/usr/sbin/in.tftpd', '-s', '/srv/tftp'],
          },
        ],
        [
          'finger-tcp6',
          {
            listen: 'tcp:[::]:79',
            user: 'nobody',
            group: 'nogroup',
            exec: ['/usr/sbin/in.fingerd'],
          },
        ],
        [
          '8080',
          {
            listen: 'tcp:127.0.0.1:8080',
            accept: false,
            listenerOn: 'stdin',
            user: 'www-data',
            exec: ['/usr/sbin/httpd', '--inetd'],
          },
        ],
        ['x.sock', { listen: 'unix:/run/x.sock', user: 1000, exec: ['/bin/cat'] }],
        ['echo', { listen: 'tcp:0.0.0.0:7', builtin: 'echo' }],
        ['echo-udp', { listen: 'udp:0.0.0.0:7', builtin: 'echo' }],
      ],
    );
    const tftp = result.services[1];
    t.equal(
      formatOrigin(tftp?.sources.get('/accept') ?? { file: '', line: 0, directive: '' }),
      'inetd.conf:3 (wait)',
    );
  },
);

t.test('malformed lines: each names FILE:LINE and the field', async (t) => {
  const result = parseInetdConf(
    '/etc/inetd.conf',
    `finger stream tcp nowait
finger stream udp nowait nobody /bin/cat cat
tftp dgram udp nowait nobody /bin/cat cat
finger stream sctp nowait nobody /bin/cat cat
finger stream tcp sometimes nobody /bin/cat cat
gopher stream tcp nowait nobody /bin/cat cat
finger stream tcp nowait nobody cat cat
finger stream tcp nowait root /usr/sbin/tcpd in.fingerd
example.org:finger stream tcp nowait root /bin/cat cat
echo stream udp wait root internal
`,
    services,
  );
  t.same(result.problems.map(formatCompatProblem), [
    '/etc/inetd.conf:1: finger: expected "service socktype proto wait|nowait[.max] user[:group] program argv..."',
    '/etc/inetd.conf:2: socktype: "stream" with udp: expected dgram',
    '/etc/inetd.conf:3: nowait: dgram nowait (a process per datagram) is not supported; use wait',
    '/etc/inetd.conf:4: proto: "sctp" is not supported (tcp, tcp6, udp, udp6, unix)',
    '/etc/inetd.conf:5: wait: "sometimes" is not wait, nowait or nowait.MAX',
    '/etc/inetd.conf:6: service: no tcp port for "gopher" in /etc/services',
    '/etc/inetd.conf:7: program: "cat" is not an absolute path',
    '/etc/inetd.conf:8: program: tcpd (TCP wrappers) is not supported: name the server itself and use access.allow/deny',
    '/etc/inetd.conf:9: service: "example.org" is not an IP address (names are not resolved)',
    '/etc/inetd.conf:10: socktype: "stream" with udp: expected dgram',
  ]);
  t.same(result.services, []);
});
