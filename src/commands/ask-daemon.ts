import { sendControlRequest } from '../control/client.js';
import { resolveControlPath } from '../control/paths.js';
import type { CommandRequest, ControlCommand, ControlErrorCode } from '../control/protocol.js';
import type { ControlReplies } from '../daemon/control-requests.js';
import { ExitCode, FatalError, type ExitCodeValue } from '../model/errors.js';

/** The option every command that talks to the daemon takes. */
export interface ControlArgs {
  /** `--control PATH`; default /run/socketeer/control.sock or $XDG_RUNTIME_DIR/socketeer/. */
  readonly control?: string | undefined;
}

/** Where a command writes what it has to say (stdout in main). */
export type Out = (text: string) => void;

/** Waits for as long as a reply may take when there is no bound (a drain without timeout). */
export const noDeadlineMs = 2 ** 31 - 1;

const exitCodes: Record<ControlErrorCode, ExitCodeValue> = {
  'bad-request': ExitCode.permanent,
  'unknown-service': ExitCode.permanent,
  'unknown-instance': ExitCode.permanent,
  forbidden: ExitCode.unreachable,
  busy: ExitCode.temporary,
  timeout: ExitCode.temporary,
  failed: ExitCode.temporary,
  'too-large': ExitCode.bug,
  internal: ExitCode.bug,
};

/**
 * Sends one request to the daemon and returns the reply's result, typed for its command.
 * Throws FatalError: 102 when the daemon cannot be reached or refuses this user, 100 for an
 * unknown service or instance, 111 when the daemon could not do it, 101 for what can only be
 * a bug.
 */
export async function askDaemon<C extends ControlCommand>(
  args: ControlArgs,
  body: CommandRequest<C>,
  timeoutMs: number,
): Promise<ControlReplies[C]> {
  const path = resolveControlPath({
    isRoot: process.getuid?.() === 0,
    env: process.env,
    override: args.control,
    uid: process.getuid?.() ?? 0,
  });
  if (!path.ok) throw new FatalError(path.message, ExitCode.permanent);
  const reply = await sendControlRequest(path.path, { ...body, id: 1 }, { timeoutMs });
  // the daemon answers each command with that command's reply (daemon/control-requests.ts)
  if (reply.ok) return reply.result as ControlReplies[C];
  const { code, message } = reply.error;
  const text = code === 'forbidden' || code === 'busy' ? `${path.path}: ${message}` : message;
  throw new FatalError(text, exitCodes[code] ?? ExitCode.bug);
}
