import { posix } from 'node:path';

export const rootControlPath = '/run/socketeer/control.sock';

export interface ControlPathInput {
  readonly isRoot: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** `--control PATH`; wins over everything else when given. */
  readonly override?: string | undefined;
  /** The user's uid, for the fallback without XDG_RUNTIME_DIR. */
  readonly uid: number;
}

export type ControlPath =
  { readonly ok: true; readonly path: string } | { readonly ok: false; readonly message: string };

/**
 * Where the control socket lives: `--control` if given, `/run/socketeer/control.sock` as root,
 * otherwise `$XDG_RUNTIME_DIR/socketeer/control.sock`, or `/tmp/socketeer-UID/control.sock`
 * when XDG_RUNTIME_DIR is not set (as tmux does; the server refuses a directory that another
 * user owns). A relative XDG_RUNTIME_DIR is an error (the XDG spec says to ignore it).
 */
export function resolveControlPath(input: ControlPathInput): ControlPath {
  if (input.override !== undefined) {
    return input.override === ''
      ? { ok: false, message: '--control: path must not be empty' }
      : { ok: true, path: input.override };
  }
  if (input.isRoot) return { ok: true, path: rootControlPath };
  const runtime = input.env.XDG_RUNTIME_DIR;
  if (runtime === undefined || runtime === '') {
    return { ok: true, path: posix.join('/tmp', `socketeer-${input.uid}`, 'control.sock') };
  }
  if (!posix.isAbsolute(runtime)) {
    return { ok: false, message: 'XDG_RUNTIME_DIR is not an absolute path; pass --control PATH' };
  }
  return { ok: true, path: posix.join(runtime, 'socketeer', 'control.sock') };
}
