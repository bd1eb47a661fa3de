import t from 'tap';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';
import {
  DaemonUnderTest,
  exchange,
  fdCount,
  isEvent,
  makeConfDir,
  type LogRecord,
} from '../helpers/daemon.js';

// The daemon's handlers' stderr (`stderr: log`, the default), read by the addon with the native
// spawner, by a stream with the portable one: the same records either way. The addon's reader
// reads a handler's pipe at its exit, so there its records all come before its `end`; a stream
// may give its last line (one without a newline) and its last drop report after it.
const spawners = [
  ['native', loadNativeAddon() === null ? 'the native addon is not built' : false],
  ['portable', false],
] as const;

/** The records of one connection, in the daemon's order. */
const recordsOf = (daemon: DaemonUnderTest, conn: unknown): LogRecord[] =>
  daemon.records.filter((r) => r.conn === conn);

/** The bytes that `stderr-dropped` records counted. */
const sum = (reports: LogRecord[]): number => reports.reduce((n, r) => n + Number(r.bytes), 0);

/** Runs `n` connections to `service`, `concurrency` at a time, each to its EOF. */
async function connectMany(
  daemon: DaemonUnderTest,
  service: string,
  options: { n: number; concurrency: number },
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.n) {
      next += 1;
      await exchange(daemon.tcp(service), null);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
}

for (const [spawner, skip] of spawners) {
  t.test(`${spawner} spawner: handler stderr in the log`, { skip }, async (t) => {
    const conf = makeConfDir({
      'lines.json': {
        listen: 'tcp:127.0.0.1:0',
        exec: ['/bin/sh', '-c', "printf 'one\\na\\000b\\001\\377c\\r\\nlast' >&2"],
      },
      'flood.json': {
        listen: 'tcp:127.0.0.1:0',
        exec: ['/bin/sh', '-c', 'yes xxxxxxx | head -c 200000 >&2'],
        stderrRate: { perSecond: 1000, burst: 8192 },
      },
      'quiet.json': { listen: 'tcp:127.0.0.1:0', exec: ['/bin/true'] },
    });
    const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', spawner]);
    t.teardown(async () => {
      await daemon.stop();
      conf.cleanup();
    });

    const isStrict = spawner === 'native';

    await t.test('lines, NUL and binary bytes, the last without newline: before end', async (t) => {
      await connectMany(daemon, 'lines', { n: 40, concurrency: 8 });
      await daemon.waitForCount(isEvent('end', 'lines'), 40);
      await daemon.waitForCount(isEvent('stderr', 'lines'), 120);
      const accepts = daemon.records.filter(isEvent('accept', 'lines'));
      t.equal(accepts.length, 40);
      const order = (r: LogRecord): number =>
        isStrict ? 0 : ['accept', 'stderr', 'end'].indexOf(r.event);
      const wrong = accepts.filter(({ conn, pid }) => {
        const records = recordsOf(daemon, conn).sort((a, b) => order(a) - order(b));
        const events = records.map((r) => [r.event, r.pid, r.line]);
        const expected = [
          ['accept', pid, undefined],
          ['stderr', pid, 'one'],
          ['stderr', pid, 'a\\x00b\\x01\ufffdc'],
          ['stderr', pid, 'last'],
          ['end', pid, undefined],
        ];
        return JSON.stringify(events) !== JSON.stringify(expected);
      });
      t.same(
        wrong.map((a) => recordsOf(daemon, a.conn)),
        [],
        'every handler: its three lines, then its end',
      );
    });

    await t.test('a flood over stderrRate: logged or dropped, counted exactly', async (t) => {
      await exchange(daemon.tcp('flood'), null);
      const end = await daemon.waitForLog(isEvent('end', 'flood'));
      const count = (records: LogRecord[]): { lines: LogRecord[]; dropped: number } => ({
        lines: records.filter((r) => r.event === 'stderr'),
        dropped: sum(records.filter((r) => r.event === 'stderr-dropped')),
      });
      const atEnd = count(recordsOf(daemon, end.conn));
      await daemon.waitForLog(() => {
        const { lines, dropped } = count(recordsOf(daemon, end.conn));
        return lines.length * 8 + dropped === 200_000;
      });
      const records = recordsOf(daemon, end.conn);
      const { lines, dropped } = count(records);
      t.ok(lines.length >= 8192 / (8 + 128) - 1, `${lines.length} lines logged`);
      t.ok(dropped > 0, `${dropped} bytes dropped`);
      t.match(records.filter((r) => r.event === 'stderr-dropped').at(-1), {
        level: 'warn',
        total: dropped,
      });
      if (isStrict) {
        t.same(atEnd, { lines, dropped }, 'every record before end');
        t.equal(end.stderrDropped, dropped, 'end: all that was dropped');
      } else t.ok(Number(end.stderrDropped) <= dropped, 'end: what was dropped until then');
    });

    await t.test('200 handlers that wrote stderr leave no fd behind', async (t) => {
      await connectMany(daemon, 'lines', { n: 1, concurrency: 1 });
      await connectMany(daemon, 'quiet', { n: 1, concurrency: 1 });
      await daemon.waitForCount(isEvent('end'), 43);
      const before = fdCount(daemon.pid);
      await connectMany(daemon, 'lines', { n: 200, concurrency: 8 });
      await connectMany(daemon, 'quiet', { n: 50, concurrency: 8 });
      await daemon.waitForCount(isEvent('end'), 293);
      t.equal(daemon.records.filter(isEvent('stderr', 'lines')).length, 241 * 3);
      t.equal(daemon.records.filter(isEvent('stderr', 'quiet')).length, 0);
      const after = fdCount(daemon.pid);
      if (isStrict) t.equal(after, before, 'the daemon holds as many fds as before');
      // A stream's close can come a tick after its handler's end record, at either count.
      else t.ok(Math.abs(after - before) <= 1, `fds: ${before} before, ${after} after`);
    });
  });
}
