/** Minutes in a day. */
export const minutesPerDay = 1440;

/**
 * A daily window in local time, `HH:MM-HH:MM`: from `start` (inclusive) to `end` (exclusive), in
 * minutes since local midnight. `end` may be 1440 (`24:00`). A window whose end is before its
 * start wraps past midnight: `22:00-06:00` holds from 22:00 to 05:59.
 */
export interface TimeWindow {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

export type TimeWindowParse =
  | { readonly ok: true; readonly window: TimeWindow }
  | { readonly ok: false; readonly message: string };

const windowPattern = /^([01][0-9]|2[0-3]):([0-5][0-9])-(?:([01][0-9]|2[0-3]):([0-5][0-9])|24:00)$/;

/** Parses `HH:MM-HH:MM` (00:00 to 23:59, and `24:00` as an end). An empty window is an error. */
export function parseTimeWindow(text: string): TimeWindowParse {
  const match = windowPattern.exec(text);
  if (match === null) return { ok: false, message: `"${text}" is not a HH:MM-HH:MM window` };
  const [, startH, startM, endH, endM] = match;
  const start = Number(startH) * 60 + Number(startM);
  const end = endH === undefined ? minutesPerDay : Number(endH) * 60 + Number(endM);
  if (start === end) return { ok: false, message: `"${text}" is an empty window` };
  return { ok: true, window: { start, end, text } };
}

/** Whether the window holds at `minute` (0..1439). */
export function isWithinWindow(window: TimeWindow, minute: number): boolean {
  return window.start < window.end
    ? minute >= window.start && minute < window.end
    : minute >= window.start || minute < window.end;
}

/** The first window that holds at `minute`, or null. */
export function findTimeWindow(windows: readonly TimeWindow[], minute: number): TimeWindow | null {
  return windows.find((window) => isWithinWindow(window, minute)) ?? null;
}

/**
 * Minutes since local midnight at `now` (ms since the epoch) for a local time that is
 * `utcOffsetMinutes` ahead of UTC (the edge passes `-new Date(now).getTimezoneOffset()`).
 */
export function minuteOfDayAt(now: number, utcOffsetMinutes: number): number {
  const minutes = Math.floor(now / 60_000) + utcOffsetMinutes;
  return ((minutes % minutesPerDay) + minutesPerDay) % minutesPerDay;
}

/** `HH:MM` for a minute of the day. */
export function formatMinute(minute: number): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(minute / 60))}:${pad(minute % 60)}`;
}

export interface TimeVerdict {
  readonly isAllowed: boolean;
  /** The window that holds (null: none holds, or `access.times` is not set). */
  readonly window: TimeWindow | null;
  readonly minute: number;
}

/** Decides `access.times` (null: not set, any time) at local `minute`. */
export function decideTime(windows: readonly TimeWindow[] | null, minute: number): TimeVerdict {
  if (windows === null) return { isAllowed: true, window: null, minute };
  const window = findTimeWindow(windows, minute);
  return { isAllowed: window !== null, window, minute };
}

/** The decision in words, e.g. `outside 09:00-17:00 at 18:05`. */
export function describeTimeVerdict(v: TimeVerdict, windows: readonly TimeWindow[] | null): string {
  const at = formatMinute(v.minute);
  if (windows === null) return `not set (any time)`;
  if (v.window !== null) return `inside ${v.window.text} at ${at}`;
  return `outside ${windows.map((w) => w.text).join(', ')} at ${at}`;
}
