/** Exit codes of every socketeer command (README: "Exit codes"). */
export const ExitCode = {
  ok: 0,
  permanent: 100,
  bug: 101,
  unreachable: 102,
  temporary: 111,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An expected failure that ends a command: carries its exit code and the one line the user
 * reads after `socketeer: fatal: `. Anything else that escapes a command is a bug (101).
 */
export class FatalError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly detail: readonly string[];

  constructor(message: string, exitCode: ExitCodeValue, detail: readonly string[] = []) {
    super(message);
    this.name = 'FatalError';
    this.exitCode = exitCode;
    this.detail = detail;
  }
}

/** Formats a system error the way every message does: `what: description (CODE)`. */
export function describeSystemError(error: unknown): string {
  const err = error as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const text = code !== undefined ? (errnoText[code] ?? err.message) : String(err?.message ?? err);
  return code !== undefined ? `${text} (${code})` : text;
}

const errnoText: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in system',
  ENOEXEC: 'exec format error',
  EAGAIN: 'resource temporarily unavailable',
  ECONNREFUSED: 'connection refused',
  EINVAL: 'invalid argument',
  ENAMETOOLONG: 'file name too long',
};
