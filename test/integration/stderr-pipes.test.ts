import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

import type { EventLog, LogFields, LogLevel } from '../../src/log/events.js';
import { lineRecordCost } from '../../src/log/line-splitter.js';
import { StderrPipes, type StderrPipeAddon } from '../../src/log/stderr-pipes.js';
import type { SpawnPlan } from '../../src/model/spawn.js';
import { isNativeSpawnError, loadNativeAddon } from '../../src/spawn/native-addon.js';
import { buildNativeOptions } from '../../src/spawn/native-spawner.js';
import { basePlan } from '../helpers/spawn-plan.js';
import { within } from '../helpers/wait.js';

const addon = loadNativeAddon();

/** This process's fds and what they are, once the addon has closed a last exit's pidfd. */
async function listFds(): Promise<string[]> {
  await new Promise((resolve) => setImmediate(resolve));
  return fs.readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [`${fd} ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`];
    } catch {
      return []; // the directory handle readdirSync used
    }
  });
}

type Logged = [LogLevel, string, LogFields];

/** An EventLog that keeps its records. */
function recordingLog(records: Logged[]): EventLog {
  const log: EventLog = {
    log: (level, event, fields = {}) => void records.push([level, event, fields]),
    child: () => log,
  };
  return log;
}

const sh = (script: string): SpawnPlan => ({
  ...basePlan,
  file: '/bin/sh',
  argv: ['sh', '-c', script],
  stderr: 'log',
});

t.test(
  "the addon's stderr reader",
  { skip: addon === null ? 'the native addon is not built' : false },
  async (t) => {
    const native = addon!;
    const chunks: [number, string | null, boolean][] = [];
    const waiters: (() => void)[] = [];
    // the addon's callback seen from here: each call, then StderrPipes' own handling
    const counting: StderrPipeAddon = {
      stderrStart: (onChunk) =>
        (native as unknown as StderrPipeAddon).stderrStart((id, chunk, isEnded) => {
          chunks.push([id, chunk === null ? null : chunk.toString('latin1'), isEnded]);
          onChunk(id, chunk, isEnded);
          for (const wake of waiters.splice(0)) wake();
        }),
      stderrWatch: (fd) => (native as unknown as StderrPipeAddon).stderrWatch(fd),
      stderrRead: (id) => (native as unknown as StderrPipeAddon).stderrRead(id),
    };
    // the clock stands still: a flood gets the burst only, and drops are reported at the end
    const pipes = new StderrPipes(counting, () => 0);
    const devNull = fs.openSync('/dev/null', 'r+');
    t.teardown(() => fs.closeSync(devNull));
    const nextChunk = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));

    /** Spawns `plan`, its stderr logged as `pid`; resolves at its exit with its pipe's id. */
    function start(plan: SpawnPlan, rate = { perSecond: 65536, burst: 131072 }) {
      const records: Logged[] = [];
      let exited: () => void = () => {};
      const exit = new Promise<void>((resolve) => (exited = resolve));
      const result = native.spawn(buildNativeOptions(plan, devNull), () => exited());
      if (isNativeSpawnError(result)) throw new Error(result.message);
      const context = { service: { stderrRate: rate }, log: recordingLog(records), pid: 1 };
      const id = pipes.watch(result.stderrFd, context);
      if (id === null) throw new Error('not watched');
      return { id, records, exit };
    }
    const lines = (records: Logged[]) =>
      records.filter(([, e]) => e === 'stderr').map(([, , f]) => [f.line, f.truncated]);

    await t.test('a handler that writes nothing costs no call', async (t) => {
      const warm = start(sh('exit 0')); // the addon's own fds (its reserve) opened once
      await within(warm.exit, 10_000, 'exit');
      pipes.finish(warm.id);
      const fdsBefore = await listFds();
      const quiet = Array.from({ length: 100 }, () => start(sh('exit 0')));
      // finished at each exit, as the spawn server does: often before the pipe's hang-up is seen
      const finished = quiet.map((q) => q.exit.then(() => pipes.finish(q.id)));
      t.same(await within(Promise.all(finished), 20_000, 'exits'), Array(100).fill(0));
      t.same(chunks, [], 'no callback');
      t.same(
        quiet.flatMap((q) => q.records),
        [],
      );
      t.equal(pipes.size, 0, 'nothing kept');
      t.same(await listFds(), fdsBefore, 'every pipe closed');
    });

    await t.test(
      'a line split across writes, NUL and binary bytes, no newline at EOF',
      async (t) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stderr-pipes-'));
        t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
        const fifo = path.join(dir, 'go');
        execFileSync('mkfifo', [fifo]);
        const script = `printf 'spl' >&2; read x < ${fifo}; printf 'it\\na\\000b\\001\\377c\\r\\nlast' >&2`;
        chunks.length = 0;
        const first = nextChunk();
        const h = start(sh(script));
        await within(first, 10_000, 'the first chunk');
        t.same(chunks, [[h.id, 'spl', false]], 'the partial line handed over as written');
        t.same(lines(h.records), [], 'not a line yet');
        fs.writeFileSync(fifo, 'go\n');
        await within(h.exit, 10_000, 'exit');
        t.equal(pipes.finish(h.id), 0);
        t.same(lines(h.records), [
          ['split', undefined],
          ['a\\x00b\\x01\ufffdc', undefined],
          ['last', undefined],
        ]);
        t.same(chunks.at(-1)?.slice(0, 1), [h.id]);
        t.equal(chunks.filter((c) => c[2]).length, 1, 'the end told once');
        t.equal(pipes.size, 0);
      },
    );

    await t.test('a line over 4096 bytes: cut once, the rest counted', async (t) => {
      const h = start(sh("head -c 100000 /dev/zero | tr '\\0' x >&2; printf '\\nshort\\n' >&2"));
      await within(h.exit, 10_000, 'exit');
      pipes.finish(h.id);
      t.same(lines(h.records), [
        ['x'.repeat(4096), 100_000 - 4096],
        ['short', undefined],
      ]);
    });

    await t.test('a flood over stderrRate: every byte logged or counted, exactly', async (t) => {
      const rate = { perSecond: 1000, burst: 8192 };
      const total = 300_000;
      const h = start(sh(`yes xxxxxxx | head -c ${total} >&2`), rate);
      await within(h.exit, 20_000, 'exit');
      const dropped = pipes.finish(h.id);
      const logged = lines(h.records).length;
      t.equal(logged, Math.floor(8192 / (8 + lineRecordCost)), 'the burst');
      t.equal(dropped, total - logged * 8, 'the rest dropped, counted');
      const reports = h.records.filter(([, e]) => e === 'stderr-dropped');
      t.same(
        reports.map(([level, , f]) => [level, f.bytes, f.total]),
        [['warn', dropped, dropped]],
        'one report, at the end',
      );
      t.equal(pipes.size, 0);
    });

    await t.test('a pipe closed before its handler exits: kept until the exit', async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stderr-pipes-'));
      t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
      const [go1, go2] = [path.join(dir, 'go1'), path.join(dir, 'go2')];
      execFileSync('mkfifo', [go1, go2]);
      chunks.length = 0;
      const ended = new Promise<void>((resolve) => {
        const check = (): void => void (chunks.some((c) => c[2]) ? resolve() : waiters.push(check));
        waiters.push(check);
      });
      const wrote = start(sh(`printf 'bye' >&2; exec 2>&-; read x < ${go1}`));
      const silent = start(sh(`exec 2>&-; read x < ${go2}`));
      await within(ended, 10_000, 'the end of the pipe');
      t.equal(chunks.map((c) => c[1] ?? '').join(''), 'bye');
      t.same(
        chunks.map((c) => [c[0], c[2]]).at(-1),
        [wrote.id, true],
        'the end told: JS had a chunk',
      );
      t.same(lines(wrote.records), [['bye', undefined]], 'its last line, at its end');
      const told = chunks.length;
      fs.writeFileSync(go1, 'go\n');
      fs.writeFileSync(go2, 'go\n');
      await within(Promise.all([wrote.exit, silent.exit]), 10_000, 'exits');
      t.equal(pipes.finish(wrote.id), 0);
      t.equal(pipes.finish(silent.id), 0);
      t.equal(chunks.length, told, 'nothing more, nothing for the silent one');
      t.same(
        chunks.filter((c) => c[0] !== wrote.id),
        [],
      );
      t.equal(pipes.size, 0);
      const next = start(sh('exit 0'));
      t.ok([wrote.id, silent.id].includes(next.id), 'their ids are free again');
      await within(next.exit, 10_000, 'exit');
      pipes.finish(next.id);
    });

    await t.test('a pipe that outlives its handler is logged to its end', async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stderr-pipes-'));
      t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
      const fifo = path.join(dir, 'go');
      execFileSync('mkfifo', [fifo]);
      const h = start(sh(`(read x < ${fifo}; echo late >&2) & echo early >&2`));
      await within(h.exit, 10_000, 'exit');
      pipes.finish(h.id);
      t.same(lines(h.records), [['early', undefined]]);
      t.equal(pipes.size, 1, 'still watched');
      const ended = new Promise<void>((resolve) => {
        const check = () => (chunks.at(-1)?.[2] === true ? resolve() : waiters.push(check));
        waiters.push(check);
      });
      fs.writeFileSync(fifo, 'go\n');
      await within(ended, 10_000, 'its end');
      t.same(lines(h.records), [
        ['early', undefined],
        ['late', undefined],
      ]);
      t.equal(pipes.size, 0, 'forgotten at its end');
    });
  },
);
