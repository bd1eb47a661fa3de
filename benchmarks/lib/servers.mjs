// The servers under test: how to configure and start each one on 127.0.0.1 with the bench
// handler (and, for the refuse90 scenario, its refusal rules), and how to learn its port once it
// is ready.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { findFreePort, startDaemon, waitForLine, waitForReply } from './processes.mjs';
import { socketeerRefusalKeys, writeTcpRules, xinetdRefusalLines } from './refusal.mjs';

export const expectedReply = 'hello\n';

/**
 * Writes DIR/bench.json in socketeer's service format, with `extra` keys (access, limits) merged
 * in; returns { dir, config } (its text).
 */
function writeServiceDir(dir, handler, extra = {}) {
  mkdirSync(dir, { recursive: true });
  const service = { listen: 'tcp:127.0.0.1:0', exec: [handler], ...extra };
  const config = `${JSON.stringify(service, null, 2)}\n`;
  writeFileSync(join(dir, 'bench.json'), config);
  return { dir, config };
}

function xinetdConfig({ port, handler, refusal }) {
  const user = process.getuid?.() === 0 ? 'root' : os.userInfo().username;
  const limits = ['instances = UNLIMITED', 'per_source = UNLIMITED', 'cps = 100000 1'];
  const quiet = ['log_type = FILE /dev/null', 'log_on_success =', 'log_on_failure ='];
  const service = [
    'type = UNLISTED',
    'id = bench',
    `port = ${port}`,
    'bind = 127.0.0.1',
    'socket_type = stream',
    'protocol = tcp',
    'wait = no',
    `user = ${user}`,
    `server = ${handler}`,
    'flags = NOLIBWRAP IPv4',
    ...limits,
    ...xinetdRefusalLines(refusal),
  ];
  const block = (lines) => lines.map((line) => `  ${line}\n`).join('');
  return `defaults\n{\n${block([...limits, ...quiet])}}\n\nservice bench\n{\n${block(service)}}\n`;
}

/**
 * How to run each server. `plan(ctx)` returns { argv, env?, ready, config? } where ready is 'line'
 * (socketeer's `ready: NAME=tcp:HOST:PORT` line), 'port-line' (a bare port number on stdout)
 * or { port } (poll that port until the handler's reply comes back), and config is the text of
 * the config file written for it; or { skip: reason }.
 * ctx: { handler, programs, peers, workDir, logDir, repoRoot, spawner, slug, refusal }: slug names
 * the run's files (unique per run), refusal is null (spawn scenario) or the refuse90 variant
 * ({ by: 'access' } or { by: 'rate', rate: {perSecond, burst} }, see refusal.mjs).
 */
export const serverTable = {
  'null-server': {
    label: () => 'loadgen ceiling (null-server, no spawn)',
    plan: (ctx) => ({ argv: [ctx.programs['null-server']], ready: 'line' }),
  },
  vfork: {
    label: () => 'C vfork floor (posix_spawn)',
    plan: (ctx) => ({ argv: [ctx.programs['vfork-server'], '0', ctx.handler], ready: 'line' }),
  },
  'node-spawn': {
    label: () => 'node-spawn (reference)',
    plan: (ctx) => {
      const { dir, config } = writeServiceDir(join(ctx.workDir, 'node-spawn.d'), ctx.handler);
      const script = join(ctx.repoRoot, 'benchmarks', 'node-spawn-server.mjs');
      const argv = [process.execPath, script, 'serve', '--config-dir', dir];
      return { argv, ready: 'line', config };
    },
  },
  socketeer: {
    label: (ctx) => (ctx.spawner === null ? 'socketeer' : `socketeer (${ctx.spawner})`),
    plan: (ctx) => {
      const main = join(ctx.repoRoot, 'dist', 'src', 'main.js');
      if (!existsSync(main)) return { skip: `${main} does not exist (daemon not built yet)` };
      const extra = socketeerRefusalKeys(ctx.refusal);
      const { dir, config } = writeServiceDir(
        join(ctx.workDir, `${ctx.slug}.d`),
        ctx.handler,
        extra,
      );
      const argv = [process.execPath, main, 'serve', '--config-dir', dir];
      // warn: no per-connection records, as xinetd here logs nothing per connection either
      argv.push('--log-format', 'json', '--log-level', 'warn');
      argv.push('--control', join(ctx.workDir, `${ctx.slug}.control.sock`));
      if (ctx.spawner !== null) argv.push('--spawner', ctx.spawner);
      return { argv, ready: 'line', config };
    },
  },
  xinetd: {
    label: () => 'xinetd',
    plan: async (ctx) => {
      const port = await findFreePort();
      const conf = join(ctx.workDir, `${ctx.slug}.conf`);
      const config = xinetdConfig({ port, handler: ctx.handler, refusal: ctx.refusal });
      writeFileSync(conf, config);
      const pidfile = join(ctx.workDir, `${ctx.slug}.pid`);
      const filelog = join(ctx.logDir, `${ctx.slug}.own.log`);
      const argv = [ctx.peers.xinetd, '-dontfork', '-f', conf, '-pidfile', pidfile];
      return { argv: [...argv, '-filelog', filelog], ready: { port }, config };
    },
  },
  tcpserver: {
    label: () => 'tcpserver',
    // -1 prints the bound port; -b raises the SYN backlog from its default of 20, which would
    // drop SYNs at concurrency 64 and measure TCP's 1 s retransmit instead of the server.
    plan: (ctx) => {
      const argv = [ctx.peers.tcpserver, '-1', '-c', '1000', '-b', '1024', '-HRl0'];
      if (ctx.refusal === null) {
        return { argv: [...argv, '127.0.0.1', '0', ctx.handler], ready: 'port-line' };
      }
      const rules = writeTcpRules(ctx.workDir, ctx.slug);
      if (rules.skip !== undefined) return rules;
      const tail = ['-x', rules.cdb, '127.0.0.1', '0', ctx.handler];
      return { argv: [...argv, ...tail], ready: 'port-line', config: rules.config };
    },
  },
  'systemd-socket-activate': {
    label: () => 'systemd-socket-activate',
    plan: async (ctx) => {
      const port = await findFreePort();
      const argv = [ctx.peers['systemd-socket-activate'], '--accept', '--inetd'];
      return {
        argv: [...argv, '-l', `127.0.0.1:${port}`, ctx.handler],
        // it logs every connection at info level; keep only warnings and errors
        env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' },
        ready: { port },
      };
    },
  },
};

/** The port of the first `NAME=tcp:HOST:PORT` pair of a ready line, or null. */
export function parseReadyLine(line) {
  const match = /^ready:.*?=tcp:[^ ]*:(\d+)(?: |$)/.exec(line);
  return match === null ? null : Number(match[1]);
}

/**
 * Starts the planned server, waits until it is ready and its handler answers, and resolves with
 * { child, port }. On failure the child (if any) is returned with the error so it can be stopped.
 */
export async function startServer(plan, { logPath }) {
  const child = startDaemon({ argv: plan.argv, env: plan.env, logPath });
  try {
    let port;
    if (plan.ready === 'line') {
      const line = await waitForLine(child, /^ready: /, 20_000);
      port = parseReadyLine(line);
      if (port === null) throw new Error(`unexpected ready line: ${line}`);
    } else if (plan.ready === 'port-line') {
      port = Number(await waitForLine(child, /^\d+$/, 20_000));
    } else {
      port = plan.ready.port;
      child.stdout.resume();
    }
    await waitForReply(port, expectedReply, { timeoutMs: 10_000, child });
    return { child, port };
  } catch (error) {
    return { child, error };
  }
}
