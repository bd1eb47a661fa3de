import t from 'tap';
import { decideAddress, describeAddressVerdict } from '../../src/access/address-rule.js';
import { formatCidr, parseCidr } from '../../src/access/cidr.js';
import { formatIp, normaliseAddress, parseIp, parsePeerAddress } from '../../src/access/ip.js';
import { decideCredentials, describeCredentialVerdict } from '../../src/access/credential-rule.js';
import {
  checkAccessSettings,
  compileAccessRules,
  type AccessSettings,
} from '../../src/access/rules.js';
import {
  decideTime,
  describeTimeVerdict,
  isWithinWindow,
  minuteOfDayAt,
  parseTimeWindow,
  type TimeWindow,
} from '../../src/access/times.js';

t.test('normaliseAddress turns v4-mapped IPv6 into IPv4 and leaves the rest alone', (t) => {
  const cases: [string, string][] = [
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['::ffff:102:304', '1.2.3.4'],
    ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1'],
    ['1.2.3.4', '1.2.3.4'],
    ['2001:db8::1', '2001:db8::1'],
    ['::1', '::1'],
    ['::1.2.3.4', '::1.2.3.4'],
    ['::fffe:1.2.3.4', '::fffe:1.2.3.4'],
    ['not an address', 'not an address'],
  ];
  for (const [input, expected] of cases) t.equal(normaliseAddress(input), expected, input);
  t.end();
});

t.test('IPv6 addresses format canonically (RFC 5952)', (t) => {
  const cases: [string, string][] = [
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['1::', '1::'],
    ['::1.2.3.4', '::102:304'],
    ['fe80::1%eth0', 'fe80::1'],
    ['255.255.255.255', '255.255.255.255'],
  ];
  for (const [input, expected] of cases) {
    const ip = parseIp(input);
    t.not(ip, null, input);
    if (ip !== null) t.equal(formatIp(ip), expected, input);
  }
  t.equal(parseIp('1.2.3'), null);
  t.equal(parseIp('2001:db8:::1'), null);
  t.strictSame(parsePeerAddress('::ffff:1.2.3.4'), { version: 4, value: 0x01020304n });
  t.strictSame(parseIp('::ffff:1.2.3.4'), { version: 6, value: 0xffff01020304n });
  t.end();
});

t.test('parseCidr: canonical prefixes, v4-mapped entries, strict host bits', (t) => {
  const good: [string, string][] = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['10.1.2.3', '10.1.2.3/32'],
    ['10.1.2.3/32', '10.1.2.3/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['::/0', '::/0'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['2001:db8::1', '2001:db8::1/128'],
    ['::ffff:10.0.0.0/104', '10.0.0.0/8'],
    ['::ffff:0:0/96', '0.0.0.0/0'],
    ['::ffff:10.1.2.3', '10.1.2.3/32'],
    ['::/80', '::/80'],
  ];
  for (const [input, expected] of good) {
    const parsed = parseCidr(input);
    t.equal(parsed.ok ? formatCidr(parsed.cidr) : parsed.message, expected, input);
  }
  const bad: [string, string][] = [
    ['10.1.2.3/8', '"10.1.2.3/8" has host bits set; the network is 10.0.0.0/8'],
    ['2001:db8::1/64', '"2001:db8::1/64" has host bits set; the network is 2001:db8::/64'],
    ['::ffff:10.1.2.3/104', '"::ffff:10.1.2.3/104" has host bits set; the network is 10.0.0.0/8'],
    ['10.0.0.0/33', '"10.0.0.0/33" has a prefix longer than /32'],
    ['::/129', '"::/129" has a prefix longer than /128'],
    ['10.0.0.0/08', '"10.0.0.0/08" has an invalid prefix length'],
    ['10.0.0.0/', '"10.0.0.0/" has an invalid prefix length'],
    ['10.0.0.0/8/8', '"10.0.0.0/8/8" is not an IPv4 or IPv6 address or CIDR prefix'],
    ['fe80::1%eth0', '"fe80::1%eth0" is not an IPv4 or IPv6 address or CIDR prefix'],
    ['example.com', '"example.com" is not an IPv4 or IPv6 address or CIDR prefix'],
  ];
  for (const [input, expected] of bad) {
    const parsed = parseCidr(input);
    t.equal(parsed.ok ? formatCidr(parsed.cidr) : parsed.message, expected, input);
  }
  t.end();
});

t.test('address precedence: longest prefix across both lists, ties deny', (t) => {
  type Case = [AccessSettings, string, string];
  const cases: Case[] = [
    [{}, '10.1.2.3', 'allow: no access.allow or access.deny list'],
    [{ allow: ['10.0.0.0/8'] }, '10.1.2.3', 'allow 10.0.0.0/8 in access.allow'],
    [{ allow: ['10.0.0.0/8'] }, '11.0.0.1', 'deny: no match in access.allow'],
    [{ deny: ['10.0.0.0/8'] }, '10.1.2.3', 'deny 10.0.0.0/8 in access.deny'],
    [{ deny: ['10.0.0.0/8'] }, '11.0.0.1', 'allow: no match in access.deny'],
    [
      { allow: ['10.0.0.0/8'], deny: ['192.168.0.0/16'] },
      '11.0.0.1',
      'deny: no match in access.allow or access.deny',
    ],
    [
      { allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'] },
      '10.1.2.3',
      'deny 10.1.0.0/16 in access.deny, longer than 10.0.0.0/8 in access.allow',
    ],
    [
      { allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'] },
      '10.2.0.1',
      'allow 10.0.0.0/8 in access.allow',
    ],
    [
      { allow: ['10.1.2.0/24'], deny: ['10.1.0.0/16'] },
      '10.1.2.3',
      'allow 10.1.2.0/24 in access.allow, longer than 10.1.0.0/16 in access.deny',
    ],
    [
      { allow: ['10.0.0.0/8'], deny: ['10.0.0.0/8'] },
      '10.1.2.3',
      'deny 10.0.0.0/8 in access.deny, as long as 10.0.0.0/8 in access.allow',
    ],
    [
      { allow: ['0.0.0.0/0'], deny: ['192.168.1.7'] },
      '192.168.1.7',
      'deny 192.168.1.7/32 in access.deny, longer than 0.0.0.0/0 in access.allow',
    ],
    [
      { allow: ['0.0.0.0/0'], deny: ['192.168.1.7'] },
      '192.168.1.8',
      'allow 0.0.0.0/0 in access.allow',
    ],
    [
      { allow: ['192.168.1.7/32'], deny: ['0.0.0.0/0'] },
      '192.168.1.7',
      'allow 192.168.1.7/32 in access.allow, longer than 0.0.0.0/0 in access.deny',
    ],
    [
      { allow: ['192.168.1.7/32'], deny: ['0.0.0.0/0'] },
      '192.168.1.8',
      'deny 0.0.0.0/0 in access.deny',
    ],
    [
      { allow: ['2001:db8::/32'], deny: ['::/0'] },
      '2001:db8:5::1',
      'allow 2001:db8::/32 in access.allow, longer than ::/0 in access.deny',
    ],
    [{ allow: ['2001:db8::/32'], deny: ['::/0'] }, '2001:db9::1', 'deny ::/0 in access.deny'],
    [
      { allow: ['2001:db8::1/128'], deny: ['2001:db8::/32'] },
      '2001:db8::1',
      'allow 2001:db8::1/128 in access.allow, longer than 2001:db8::/32 in access.deny',
    ],
    [
      { allow: ['2001:db8::1/128'], deny: ['2001:db8::/32'] },
      '2001:db8::2',
      'deny 2001:db8::/32 in access.deny',
    ],
    [{ deny: ['10.0.0.0/8'] }, '::ffff:10.1.2.3', 'deny 10.0.0.0/8 in access.deny'],
    [{ deny: ['::ffff:10.0.0.0/104'] }, '10.1.2.3', 'deny 10.0.0.0/8 in access.deny'],
    [{ allow: ['::/0'] }, '10.0.0.1', 'deny: no match in access.allow'],
    [{ allow: ['0.0.0.0/0'] }, '::1', 'deny: no match in access.allow'],
    [{ allow: ['0.0.0.0/0', '::/0'] }, '::1', 'allow ::/0 in access.allow'],
    [{ allow: [] }, '127.0.0.1', 'deny: no match in access.allow'],
    [{ deny: [] }, '127.0.0.1', 'allow: no match in access.deny'],
    [{ allow: [], deny: [] }, '127.0.0.1', 'deny: no match in access.allow or access.deny'],
    [{ deny: ['10.0.0.0/8'] }, 'garbage', 'deny: not an IP address'],
    [{ times: ['09:00-17:00'] }, 'garbage', 'allow: no access.allow or access.deny list'],
  ];
  for (const [settings, address, expected] of cases) {
    const { rules, problems } = compileAccessRules(settings);
    const errors = problems.filter((p) => p.severity === 'error');
    t.strictSame(errors, [], JSON.stringify(settings));
    const verdict = decideAddress(rules, address);
    t.equal(describeAddressVerdict(verdict), expected, `${JSON.stringify(settings)} ${address}`);
    t.equal(verdict.isAllowed, expected.startsWith('allow'), `${address} allowed`);
  }
  t.end();
});

t.test('the rule names and matches of a verdict', (t) => {
  const { rules } = compileAccessRules({
    allow: ['10.0.0.0/8', '10.1.0.0/16'],
    deny: ['10.1.2.0/24'],
  });
  const verdict = decideAddress(rules, '10.1.2.3');
  t.equal(verdict.rule, 'longest-deny');
  t.equal(verdict.allowMatch?.prefix, 16);
  t.equal(verdict.denyMatch?.prefix, 24);
  const rulesOf = (s: AccessSettings, address: string): string =>
    decideAddress(compileAccessRules(s).rules, address).rule;
  t.equal(rulesOf({}, '1.1.1.1'), 'no-lists');
  t.equal(rulesOf({ allow: ['1.1.1.1'] }, '1.1.1.2'), 'no-allow-match');
  t.equal(rulesOf({ deny: ['1.1.1.1'] }, '1.1.1.2'), 'no-deny-match');
  t.equal(rulesOf({ allow: ['1.1.1.1'], deny: ['2.2.2.2'] }, '3.3.3.3'), 'no-match');
  t.equal(rulesOf({ allow: ['1.1.1.1'], deny: ['1.1.1.1'] }, '1.1.1.1'), 'tie-deny');
  t.end();
});

t.test('access settings problems carry JSON pointers', (t) => {
  t.strictSame(
    checkAccessSettings({
      allow: ['10.0.0.0/8', '10.1.2.3/8', '10.0.0.0/8'],
      deny: ['bogus', '10.0.0.0/8'],
      times: ['09:00-17:00', '12:00-12:00', '25:00-01:00'],
    }),
    [
      {
        pointer: '/access/allow/1',
        message: '"10.1.2.3/8" has host bits set; the network is 10.0.0.0/8',
        severity: 'error',
      },
      {
        pointer: '/access/deny/0',
        message: '"bogus" is not an IPv4 or IPv6 address or CIDR prefix',
        severity: 'error',
      },
      {
        pointer: '/access/deny/1',
        message: '10.0.0.0/8 is also in access.allow: deny wins',
        severity: 'warning',
      },
      {
        pointer: '/access/times/1',
        message: '"12:00-12:00" is an empty window',
        severity: 'error',
      },
      {
        pointer: '/access/times/2',
        message: '"25:00-01:00" is not a HH:MM-HH:MM window',
        severity: 'error',
      },
    ],
  );
  t.strictSame(checkAccessSettings(undefined), []);
  t.end();
});

t.test('Unix peers: uids or gids, unknown credentials denied', (t) => {
  type Case = [AccessSettings, number | null, number | null, string];
  const cases: Case[] = [
    [{}, 1000, 1000, 'allow: no access.uids or access.gids list'],
    [{}, null, null, 'allow: no access.uids or access.gids list'],
    [{ uids: [0, 1000] }, 1000, 50, 'allow uid 1000 in access.uids'],
    [{ uids: [0], gids: [50] }, 1000, 50, 'allow gid 50 in access.gids'],
    [{ uids: [0] }, 1000, 50, 'deny uid 1000 gid 50: no match in access.uids'],
    [
      { uids: [0], gids: [7] },
      1000,
      50,
      'deny uid 1000 gid 50: no match in access.uids or access.gids',
    ],
    [{ gids: [7] }, 1000, null, 'deny uid 1000 gid ?: no match in access.gids'],
    [{ uids: [0] }, null, null, 'deny: peer credentials unknown'],
    [{ uids: [] }, 0, 0, 'deny uid 0 gid 0: no match in access.uids'],
    [{ allow: ['10.0.0.0/8'] }, 1000, 1000, 'allow: no access.uids or access.gids list'],
  ];
  for (const [settings, uid, gid, expected] of cases) {
    const { rules } = compileAccessRules(settings);
    const verdict = decideCredentials(rules, { uid, gid });
    const label = `${JSON.stringify(settings)} ${uid} ${gid}`;
    t.equal(describeCredentialVerdict(verdict, { uid, gid }, rules), expected, label);
    t.equal(verdict.isAllowed, expected.startsWith('allow'), label);
  }
  t.end();
});

t.test('time windows: parsing, boundaries, wrapping past midnight', (t) => {
  const window = (text: string): TimeWindow => {
    const parsed = parseTimeWindow(text);
    if (!parsed.ok) throw new Error(parsed.message);
    return parsed.window;
  };
  t.strictSame(window('09:00-17:00'), { start: 540, end: 1020, text: '09:00-17:00' });
  t.strictSame(window('22:00-06:00'), { start: 1320, end: 360, text: '22:00-06:00' });
  t.strictSame(window('00:00-24:00'), { start: 0, end: 1440, text: '00:00-24:00' });
  for (const text of ['9:00-17:00', '24:00-01:00', '09:60-10:00', '09:00-24:01', '09:00 - 17:00']) {
    t.strictSame(parseTimeWindow(text), {
      ok: false,
      message: `"${text}" is not a HH:MM-HH:MM window`,
    });
  }
  t.strictSame(parseTimeWindow('00:00-00:00'), {
    ok: false,
    message: '"00:00-00:00" is an empty window',
  });

  const day = window('09:00-17:00');
  t.strictSame(
    [539, 540, 1019, 1020].map((m) => isWithinWindow(day, m)),
    [false, true, true, false],
  );
  const night = window('22:00-06:00');
  t.strictSame(
    [1319, 1320, 1439, 0, 359, 360].map((m) => isWithinWindow(night, m)),
    [false, true, true, true, true, false],
  );
  const all = window('00:00-24:00');
  t.strictSame(
    [0, 720, 1439].map((m) => isWithinWindow(all, m)),
    [true, true, true],
  );
  const late = window('23:00-24:00');
  t.strictSame(
    [1379, 1380, 1439, 0].map((m) => isWithinWindow(late, m)),
    [false, true, true, false],
  );

  const windows = [day, night];
  t.equal(describeTimeVerdict(decideTime(windows, 600), windows), 'inside 09:00-17:00 at 10:00');
  t.equal(describeTimeVerdict(decideTime(windows, 30), windows), 'inside 22:00-06:00 at 00:30');
  const evening = decideTime(windows, 1085);
  t.equal(evening.isAllowed, false);
  t.equal(describeTimeVerdict(evening, windows), 'outside 09:00-17:00, 22:00-06:00 at 18:05');
  t.equal(describeTimeVerdict(decideTime(null, 1085), null), 'not set (any time)');
  t.equal(decideTime(null, 1085).isAllowed, true);
  t.end();
});

t.test('minuteOfDayAt applies the UTC offset and wraps', (t) => {
  const at = Date.UTC(2024, 0, 1, 23, 30, 59, 999);
  t.equal(minuteOfDayAt(at, 0), 1410);
  t.equal(minuteOfDayAt(at, 60), 30);
  t.equal(minuteOfDayAt(at, -300), 1110);
  t.equal(minuteOfDayAt(Date.UTC(2024, 0, 1, 0, 10), -30), 1420);
  t.equal(minuteOfDayAt(-60_000, 0), 1439);
  t.end();
});
