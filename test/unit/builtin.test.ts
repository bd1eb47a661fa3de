// The built-ins' bytes (pure, with a fixed clock) and the UDP answerer's guard, on a fake socket.
import t from 'tap';
import {
  chargenCycle,
  chargenDatagram,
  chargenLine,
  daytimeLine,
  timeBytes,
} from '../../src/connection/builtin-protocols.js';
import {
  createDatagramAnswerer,
  maxPendingAnswers,
} from '../../src/connection/builtin-datagrams.js';
import type { Refusal } from '../../src/connection/admit.js';
import type { DatagramFrom, DatagramServer } from '../../src/listen/udp-serve.js';
import type { EventLog } from '../../src/log/events.js';
import type { BuiltinName } from '../../src/config/types.js';
import { validateServiceFile } from '../../src/config/validate.js';
import { resolveActivation } from '../../src/config/resolve-activation.js';

const at = Date.UTC(2026, 11, 4, 22, 40, 0);

t.test('daytime: RFC 867 format in UTC', async (t) => {
  t.equal(daytimeLine(at), 'Friday, December 4, 2026 22:40:00-UTC\r\n');
  t.equal(daytimeLine(Date.UTC(2000, 0, 1, 3, 4, 5)), 'Saturday, January 1, 2000 03:04:05-UTC\r\n');
});

t.test('time: RFC 868 seconds since 1900, big-endian', async (t) => {
  t.equal(timeBytes(0).toString('hex'), '83aa7e80');
  t.equal(timeBytes(at).readUInt32BE(0), at / 1000 + 2208988800);
});

t.test('chargen: RFC 864 lines', async (t) => {
  t.equal(
    chargenLine(0),
    ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg',
  );
  t.equal(
    chargenLine(1),
    '!"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh',
  );
  t.equal(
    chargenLine(94),
    '~ !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdef',
  );
  t.equal(chargenLine(95), chargenLine(0));
  t.equal(chargenCycle.length, 95 * 74);
  t.equal(
    chargenDatagram(2, 80).toString('latin1'),
    `${chargenLine(2)}\r\n${chargenLine(3).slice(0, 6)}`,
  );
  t.equal(chargenDatagram(0, 0).length, 0);
});

interface Sent {
  readonly answer: string;
  readonly to: number;
}

function setup(builtin: BuiltinName, admit: Refusal | null = null, pending = 0) {
  const sent: Sent[] = [];
  const refused: string[] = [];
  const records: Record<string, unknown>[] = [];
  const log = {
    log: (_level: string, _event: string, fields: Record<string, unknown>) =>
      void records.push(fields),
  } as unknown as EventLog;
  const answerer = createDatagramAnswerer({
    builtin: () => builtin,
    admit: () => admit,
    countRefused: (reason) => void refused.push(reason),
    log,
    now: () => at,
    random: () => 0.5,
  });
  const server: DatagramServer = {
    bound: 'udp:127.0.0.1:7',
    port: 7,
    fd: null,
    send: (answer, to) => void sent.push({ answer: answer.toString('latin1'), to: to.remotePort }),
    pendingSends: () => pending,
    close: () => Promise.resolve(),
  };
  const from = (port: number): DatagramFrom => ({
    remoteAddress: '::ffff:127.0.0.1',
    remotePort: port,
    localAddress: '::',
    localPort: 7,
  });
  const receive = (data: string, port = 40000): void =>
    answerer.receive(server, Buffer.from(data), from(port));
  return { sent, refused, records, receive };
}

t.test('UDP: one answer per datagram; discard none; chargen 0..512', async (t) => {
  const echo = setup('echo');
  echo.receive('a');
  echo.receive('bb');
  t.same(echo.sent, [
    { answer: 'a', to: 40000 },
    { answer: 'bb', to: 40000 },
  ]);
  const discard = setup('discard');
  discard.receive('x');
  t.same(discard.sent, []);
  const chargen = setup('chargen');
  chargen.receive('');
  chargen.receive('');
  t.equal(chargen.sent[0]?.answer, chargenDatagram(0, 256).toString('latin1'));
  t.equal(chargen.sent[1]?.answer, chargenDatagram(1, 256).toString('latin1'));
  const time = setup('time');
  time.receive('');
  t.equal(
    Buffer.from(time.sent[0]?.answer ?? '', 'latin1').readUInt32BE(0),
    at / 1000 + 2208988800,
  );
});

t.test('UDP reflection guard: source ports 0 and below 1024, admission, send queue', async (t) => {
  const echo = setup('echo');
  echo.receive('x', 0);
  echo.receive('x', 1023);
  echo.receive('x', 1024);
  t.same(echo.sent, [{ answer: 'x', to: 1024 }]);
  t.same(echo.refused, ['source-port', 'source-port']);
  t.same(echo.records[1], {
    peer: '127.0.0.1:1023',
    reason: 'source-port',
    detail: 'source port 1023 is below 1024: no answer (reflection guard)',
  });
  const limited = setup('echo', {
    reason: 'rate',
    detail: 'limits.rate: 0 of 5 tokens',
    banner: null,
  });
  limited.receive('x');
  t.same(limited.sent, []);
  t.same(limited.records, [
    { peer: '127.0.0.1:40000', reason: 'rate', detail: 'limits.rate: 0 of 5 tokens' },
  ]);
  const full = setup('echo', null, maxPendingAnswers);
  full.receive('x');
  t.same(full.sent, []);
  t.same(full.refused, ['send-queue']);
});

t.test('udp: accepted for a builtin; without a rate, a warning at /limits', async (t) => {
  const problems = (json: Record<string, unknown>) => {
    const result = validateServiceFile('b.json', json);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    return resolveActivation('b', result.value, []).problems;
  };
  t.same(problems({ listen: 'udp:7', builtin: 'echo' }), [
    {
      pointer: '/limits',
      message:
        'a builtin on udp answers every datagram it admits: without limits.rate or limits.perSourceRate nothing bounds what it sends (reflection)',
      severity: 'warning',
    },
  ]);
  const rate = { perSecond: 10, burst: 20 };
  t.same(problems({ listen: 'udp:7', builtin: 'echo', limits: { perSourceRate: rate } }), []);
  t.same(problems({ listen: 'tcp:7', builtin: 'echo' }), []);
  t.equal(problems({ listen: 'udp:7', exec: ['/bin/cat'] })[0]?.severity, 'error');
});
