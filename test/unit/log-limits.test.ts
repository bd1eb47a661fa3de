import t from 'tap';
import { createMeter, isMeterFull, refillMeter, spendMeter } from '../../src/limits/meter.js';
import { lineRecordCost, StderrLines } from '../../src/log/line-splitter.js';
import {
  admitRecord,
  createRecordLimiter,
  summaryMaxMs,
  takeSummaries,
  type RecordLimiter,
} from '../../src/log/record-limiter.js';

t.test('a meter refills at its rate up to its burst, in place', async (t) => {
  const rate = { perSecond: 2, burst: 3 };
  const meter = createMeter(rate, 1000);
  t.ok(spendMeter(meter, rate, 3, 1000));
  t.notOk(spendMeter(meter, rate, 1, 1000), 'empty');
  t.notOk(spendMeter(meter, rate, 1, 1499), '0.998 of a token');
  t.ok(spendMeter(meter, rate, 1, 1500), 'one token after 500 ms');
  t.equal(refillMeter(meter, rate, 1000), 0, 'a clock that went backwards refills nothing');
  t.notOk(isMeterFull(meter, rate, 2400));
  t.ok(isMeterFull(meter, rate, 2500));
  t.equal(refillMeter(meter, rate, 60_000), 3, 'never above the burst');
  t.notOk(spendMeter(meter, rate, 4, 60_000), 'more than the meter holds: nothing taken');
  t.equal(meter.tokens, 3);
});

/** Offers `count` records at `now`; returns how many were admitted. */
function offer(
  limiter: RecordLimiter,
  count: number,
  now: number,
  record: { service?: string; event?: 'refuse' | 'spawn-failed' | 'accept'; reason?: string } = {},
): number {
  const { service = 'web', event = 'refuse', reason = 'denied' } = record;
  let admitted = 0;
  for (let i = 0; i < count; i += 1) {
    const fields = event === 'spawn-failed' ? { code: reason } : { reason };
    if (admitRecord(limiter, 'info', service, event, fields, now)) admitted += 1;
  }
  return admitted;
}

t.test('records over their bucket are counted and summed up once the flood pauses', async (t) => {
  const limiter = createRecordLimiter({ perSecond: 2, burst: 3 });
  t.equal(offer(limiter, 10, 0), 3, 'the burst passes');
  t.equal(offer(limiter, 5, 400), 0, 'less than a token refilled');
  t.equal(offer(limiter, 1, 500), 1, 'one token after 500 ms');
  t.equal(offer(limiter, 5, 500), 0);
  t.same(takeSummaries(limiter, 1499), [], 'not quiet for 1 s yet');
  t.same(takeSummaries(limiter, 1500), [
    {
      level: 'info',
      service: 'web',
      record: 'refuse',
      reason: 'denied',
      suppressed: 7 + 5 + 5,
      intervalMs: 500,
    },
  ]);
  t.equal(limiter.pending, 0);
  t.same(takeSummaries(limiter, 5000), [], 'summed up once');
  t.equal(limiter.tallies.size, 0, 'a full bucket with nothing counted is dropped');
  t.equal(offer(limiter, 4, 5000), 3, 'a new burst after the pause');
});

t.test('each service, event and reason has a bucket of its own', async (t) => {
  const limiter = createRecordLimiter({ perSecond: 1, burst: 2 });
  t.equal(offer(limiter, 5, 0), 2);
  t.equal(offer(limiter, 5, 0, { reason: 'rate' }), 2, 'another reason');
  t.equal(offer(limiter, 5, 0, { service: 'ftp' }), 2, 'another service');
  t.equal(offer(limiter, 5, 0, { event: 'spawn-failed', reason: 'EMFILE' }), 2, 'another event');
  t.equal(offer(limiter, 100, 0, { event: 'accept' }), 100, 'accept records are not limited');
  t.equal(offer(limiter, 3, 0, { service: '' }), 2, 'daemon-wide records share one bucket');
  const summaries = takeSummaries(limiter, 0, true);
  t.same(
    summaries.map((s) => [s.service, s.record, s.reason, s.suppressed]),
    [
      ['web', 'refuse', 'denied', 3],
      ['web', 'refuse', 'rate', 3],
      ['web', 'spawn-failed', 'EMFILE', 3],
      ['ftp', 'refuse', 'denied', 3],
      [null, 'refuse', 'denied', 1],
    ],
  );
});

t.test('a flood that never pauses is summed up every summaryMaxMs', async (t) => {
  const limiter = createRecordLimiter({ perSecond: 1, burst: 1 });
  let admitted = 0;
  let suppressed = 0;
  const summaryTimes: number[] = [];
  for (let now = 0; now <= 25_000; now += 100) {
    admitted += offer(limiter, 3, now);
    for (const s of takeSummaries(limiter, now)) {
      suppressed += s.suppressed;
      summaryTimes.push(now);
    }
  }
  for (const s of takeSummaries(limiter, 25_000, true)) suppressed += s.suppressed;
  t.equal(admitted, 26, 'the burst, then one per second');
  t.equal(admitted + suppressed, 251 * 3, 'every record written or counted');
  t.same(summaryTimes, [summaryMaxMs, 2 * summaryMaxMs + 100]);
});

t.test('stderr lines are metered in bytes; what is over is dropped and counted', async (t) => {
  const rate = { perSecond: 1000, burst: 8192 };
  const logged: [string, number][] = [];
  const reports: [number, number][] = [];
  const lines = new StderrLines(rate, 0, {
    line: (text, truncated) => logged.push([text, truncated]),
    dropped: (bytes, total) => reports.push([bytes, total]),
  });
  const line = `${'x'.repeat(99)}\n`;
  const perLine = 100 + lineRecordCost;
  lines.push(Buffer.from(line.repeat(100)), 0);
  const fit = Math.floor(8192 / perLine);
  t.equal(logged.length, fit, 'the burst');
  t.same(reports, [], 'no report before 10 s');
  let dropped = (100 - fit) * 100;
  t.equal(lines.droppedTotal, dropped);
  lines.push(Buffer.from('short\n'), 0);
  t.same(logged.at(-1), ['short', 0], 'a shorter line still fits');
  // less than an empty line's cost left: a partial line is dropped with the chunk that
  // completes it, and the tail after the chunk's last newline starts the next line
  lines.push(Buffer.from('abc'), 0);
  lines.push(Buffer.from('def\nghi'), 0);
  t.equal(lines.droppedTotal, (dropped += 7));
  lines.push(Buffer.from('\n'), 10_000);
  t.same(logged.at(-1), ['ghi', 0], 'the bucket refilled');
  t.same(reports, [[dropped, dropped]], 'a report 10 s after the first dropped line');
  lines.push(Buffer.from('y'.repeat(5000)), 20_000);
  lines.push(Buffer.from(`${'y'.repeat(5000)}\r\nlast`), 20_000);
  t.same(logged.at(-1), ['y'.repeat(4096), 10_001 - 4096], 'cut at 4096 bytes');
  const before = logged.length;
  lines.push(Buffer.from('\n'.repeat(100)), 20_000);
  const left = 8192 - (4096 + 1 + lineRecordCost) - (4 + 1 + lineRecordCost);
  const empties = Math.floor(left / (1 + lineRecordCost));
  t.same(
    logged.slice(before).map(([text]) => text),
    ['last', ...Array<string>(empties).fill('')],
    'an empty line costs its record',
  );
  lines.end(20_000);
  lines.end(30_000);
  const last = 100 - 1 - empties;
  t.same(
    reports,
    [
      [dropped, dropped],
      [last, dropped + last],
    ],
    'the last report at close, once',
  );
});

t.test('a stderr line costs the bytes it adds to the log, at most the burst', async (t) => {
  const rate = { perSecond: 1, burst: 8192 };
  const logged: string[] = [];
  const lines = new StderrLines(rate, 0, {
    line: (text) => logged.push(text),
    dropped: () => undefined,
  });
  const control = `${'\u0001'.repeat(100)}\n`;
  lines.push(Buffer.from(control.repeat(20)), 0);
  const cost = 400 + 1 + lineRecordCost;
  t.equal(logged.length, Math.floor(8192 / cost), 'a control byte costs 4, as \\x01');
  t.equal(logged[0], '\\x01'.repeat(100));
  t.equal(lines.droppedTotal, (20 - logged.length) * 101);
  const huge = `${'\u0001'.repeat(5000)}\n`;
  lines.push(Buffer.from(huge.repeat(2)), 10_000_000);
  t.equal(logged.at(-1), '\\x01'.repeat(4096), 'a line costlier than the burst costs the burst');
  t.equal(lines.droppedTotal, (20 - Math.floor(8192 / cost)) * 101 + 5001, 'and empties it');
});
