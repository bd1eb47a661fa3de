import { constants } from 'node:os';
import { maxTimeoutSec } from '../control/protocol.js';
import type { ControlReplies } from '../daemon/control-requests.js';
import { ExitCode, FatalError } from '../model/errors.js';
import { askDaemon, noDeadlineMs, type ControlArgs, type Out } from './ask-daemon.js';

export interface ServiceArgs extends ControlArgs {
  readonly service: string;
}

/** The commands that take one service and nothing else. */
export type ServiceCommand = 'stop' | 'start' | 'quiesce';

/** Stop, start and quiesce wait for handlers to end: up to the daemon's kill grace, and more. */
const lifecycleTimeoutMs = 300000;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What each service command prints of the daemon's reply. */
const describeReply: { readonly [C in ServiceCommand]: (r: ControlReplies[C]) => string } = {
  stop: (r) => `stopped ${r.service}: ended ${plural(r.ended, 'handler')}${forced(r.forced)}\n`,
  start: (r) => {
    const where = r.listeners.join(' ');
    return r.wasRunning
      ? `${r.service} is already ${r.state}: ${where}\n`
      : `started ${r.service}: ${where}\n`;
  },
  quiesce: (r) =>
    `quiesced ${r.service}: ended ${plural(r.ended, 'handler')}${forced(r.forced)}; ${r.state}\n`,
};

/**
 * `stop SERVICE`: close its listeners, end its handlers; it stays stopped until `start`.
 * `start SERVICE`: bind its addresses again and serve.
 * `quiesce SERVICE`: end its running handlers, keep listening.
 */
export async function runServiceCommand<C extends ServiceCommand>(
  cmd: C,
  args: ServiceArgs,
  out: Out,
): Promise<number> {
  const reply = await askDaemon(args, { cmd, service: args.service }, lifecycleTimeoutMs);
  out(describeReply[cmd](reply));
  return ExitCode.ok;
}

export interface DrainArgs extends ServiceArgs {
  readonly timeout?: number | undefined;
}

/** `drain SERVICE [--timeout S]`: stop accepting, let handlers finish, end the rest at S; stopped. */
export async function runDrain(args: DrainArgs, out: Out): Promise<number> {
  const { timeout } = args;
  if (timeout !== undefined && !(timeout >= 0 && timeout <= maxTimeoutSec))
    throw new FatalError(`--timeout: must be 0 to ${maxTimeoutSec} seconds`, ExitCode.permanent);
  const body =
    timeout === undefined
      ? { cmd: 'drain' as const, service: args.service }
      : { cmd: 'drain' as const, service: args.service, timeoutSec: timeout };
  const wait = timeout === undefined ? noDeadlineMs : timeout * 1000 + lifecycleTimeoutMs;
  const r = await askDaemon(args, body, wait);
  const ended = r.ended === 0 ? '' : `, ${r.ended} ended at the timeout`;
  out(`drained ${r.service}: ${plural(r.finished, 'handler')} finished${ended}; ${r.state}\n`);
  return ExitCode.ok;
}

export interface KillArgs extends ControlArgs {
  /** `SERVICE` or `SERVICE@INSTANCE`. */
  readonly target: string;
  readonly signal?: string | undefined;
}

/** `kill SERVICE[@INSTANCE] [--signal SIG]`: signal one handler's process group, or all of them. */
export async function runKill(args: KillArgs, out: Out): Promise<number> {
  const signal = parseSignal(args.signal ?? 'SIGTERM');
  if (signal === null)
    throw new FatalError(`--signal: unknown signal ${args.signal ?? ''}`, ExitCode.permanent);
  const { service, instance } = parseKillTarget(args.target);
  const body =
    instance === null
      ? { cmd: 'kill' as const, service, signal }
      : { cmd: 'kill' as const, service, instance, signal };
  const r = await askDaemon(args, body, 10000);
  if (r.signalled.length === 0) out(`${r.service}: no running handlers\n`);
  for (const s of r.signalled)
    if (s.pid === null) out(`${r.service}@${s.instance} closed (a proxied connection)\n`);
    else out(`${r.signal} sent to ${r.service}@${s.instance} (pid ${s.pid})\n`);
  return ExitCode.ok;
}

/**
 * `echo@3-127.0.0.1:7-127.0.0.1:5` → service `echo`, instance `3-…`. A connection instance id
 * starts with its number and a dash; anything else after an `@` is part of the service name
 * (a template instance such as `web@8080`).
 */
export function parseKillTarget(target: string): { service: string; instance: string | null } {
  const at = target.lastIndexOf('@');
  const instance = at === -1 ? '' : target.slice(at + 1);
  return /^\d+-./.test(instance)
    ? { service: target.slice(0, at), instance }
    : { service: target, instance: null };
}

/** `TERM`, `sigterm`, `SIGTERM` or `15` → `SIGTERM`; null when there is no such signal. */
export function parseSignal(text: string): NodeJS.Signals | null {
  const names = Object.keys(constants.signals) as NodeJS.Signals[];
  if (/^\d+$/.test(text)) return names.find((n) => constants.signals[n] === Number(text)) ?? null;
  const upper = text.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return names.find((n) => n === name) ?? null;
}

function forced(n: number): string {
  return n === 0 ? '' : ` (${n} after SIGKILL)`;
}
