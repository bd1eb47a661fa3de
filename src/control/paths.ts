import { posix } from 'node:path';

export const rootControlPath = '/run/socketeer/control.sock';

export interface ControlPathInput {
  readonly isRoot: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** `--control PATH`; wins over everything else when given. */
  readonly override?: string | undefined;
}

export type ControlPath =
  { readonly ok: true; readonly path: string } | { readonly ok: false; readonly message: string };

/**
 * Where the control socket lives: `--control` if given, `/run/socketeer/control.sock` as root,
 * otherwise `$XDG_RUNTIME_DIR/socketeer/control.sock`. XDG_RUNTIME_DIR must be absolute (the
 * XDG spec says to ignore a relative one).
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
    return { ok: false, message: 'XDG_RUNTIME_DIR is not set; pass --control PATH' };
  }
  if (!posix.isAbsolute(runtime)) {
    return { ok: false, message: 'XDG_RUNTIME_DIR is not an absolute path; pass --control PATH' };
  }
  return { ok: true, path: posix.join(runtime, 'socketeer', 'control.sock') };
}
