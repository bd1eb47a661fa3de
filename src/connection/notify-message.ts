/**
 * What an `accept: false` service's process says on its NOTIFY_SOCKET (sd_notify(3)), parsed
 * (pure): newline-separated `KEY=VALUE` assignments, as systemd reads them.
 */
export interface NotifyMessage {
  /** `READY=1`. */
  readonly ready: boolean;
  /** `STOPPING=1`. */
  readonly stopping: boolean;
  /** `STATUS=text` (the last one when repeated); null when absent. */
  readonly status: string | null;
  /** `MAINPID=N` (a positive integer); null when absent or not one (then in `invalid`). */
  readonly mainPid: number | null;
  /** `FDSTORE=1`: the message's fds go to the fd store under `fdName`. */
  readonly fdStore: boolean;
  /** `FDSTOREREMOVE=1`: the fds stored under `fdName` are closed. */
  readonly fdStoreRemove: boolean;
  /** `FDNAME=` when valid; `stored` when absent (as systemd); null when invalid. */
  readonly fdName: string | null;
  /** Keys read and not acted on (WATCHDOG, RELOADING, ERRNO, …), each once, in order. */
  readonly ignored: readonly string[];
  /** Assignments that are not valid (`MAINPID=x`, `READY=2`, a line without `=`, …). */
  readonly invalid: readonly string[];
}

/** systemd's FDNAME= when the message has none. */
export const defaultFdName = 'stored';

/** Keys acted on: everything else is ignored (and listed in `ignored`). */
const honoured = new Set([
  'READY',
  'STOPPING',
  'STATUS',
  'MAINPID',
  'FDSTORE',
  'FDSTOREREMOVE',
  'FDNAME',
]);

/** An fd name as systemd takes it: 1 to 255 characters, no `:` and no control character. */
export function isValidFdName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !/[:\u0000-\u001f\u007f]/.test(name);
}

/**
 * Parses one message (pure). A NUL anywhere makes the whole message invalid (as systemd: it
 * cannot be a string), with every field at its default and `invalid` saying why. Boolean keys
 * count only with the value `1`, as systemd.
 */
export function parseNotifyMessage(text: string): NotifyMessage {
  const values = new Map<string, string>();
  const ignored: string[] = [];
  const invalid: string[] = [];
  const lines = text.includes('\u0000') ? [] : text.split('\n');
  if (lines.length === 0) invalid.push('a NUL byte in the message');
  for (const line of lines) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) {
      invalid.push(line);
      continue;
    }
    const key = line.slice(0, eq);
    if (honoured.has(key)) values.set(key, line.slice(eq + 1));
    else if (!ignored.includes(key)) ignored.push(key);
  }
  const flag = (key: string): boolean => {
    const value = values.get(key);
    if (value !== undefined && value !== '1') invalid.push(`${key}=${value}`);
    return value === '1';
  };
  const mainPid = parseMainPid(values.get('MAINPID'), invalid);
  const name = values.get('FDNAME') ?? defaultFdName;
  if (!isValidFdName(name)) invalid.push(`FDNAME=${name}`);
  return {
    ready: flag('READY'),
    stopping: flag('STOPPING'),
    status: values.get('STATUS') ?? null,
    mainPid,
    fdStore: flag('FDSTORE'),
    fdStoreRemove: flag('FDSTOREREMOVE'),
    fdName: isValidFdName(name) ? name : null,
    ignored,
    invalid,
  };
}

function parseMainPid(value: string | undefined, invalid: string[]): number | null {
  if (value === undefined) return null;
  const pid = /^[1-9][0-9]{0,9}$/.test(value) ? Number(value) : NaN;
  if (Number.isSafeInteger(pid) && pid <= 0x7fffffff) return pid;
  invalid.push(`MAINPID=${value}`);
  return null;
}
