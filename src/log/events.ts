/**
 * The fixed log vocabulary: every record has `event` set to one of these names, its data in
 * fields. The README's "Log events" table lists the same names (a test holds them equal).
 */
export const logEvents = {
  listen: 'a listener is bound (service, address)',
  ready: 'every listener is bound (addresses)',
  accept: 'a connection was accepted and its handler started (service, conn, peer, pid)',
  end: 'a handler ended (service, conn, pid, exitCode or signal, durationMs)',
  'spawn-failed':
    'a handler could not be started; the connection was closed (service, conn, code, error)',
  stderr: "one line of a handler's stderr (service, conn, pid, line)",
  'accept-failed':
    'accept(2) failed on a listener, e.g. EMFILE; the listener goes on (service, code)',
  'no-services': 'the configuration has no enabled service',
  'signal-ignored': 'a signal this build has no action for was received and ignored (signal)',
  shutdown: 'the daemon is stopping (signal, handlers still running)',
  exit: 'the daemon has stopped; last record (code)',
} as const;

export type LogEvent = keyof typeof logEvents;

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const logLevels: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export type LogFields = Readonly<
  Record<string, string | number | boolean | null | undefined | readonly string[]>
>;

/** The only logging surface the daemon sees: events with fields, and children bound to fields. */
export interface EventLog {
  log(level: LogLevel, event: LogEvent, fields?: LogFields): void;
  child(fields: LogFields): EventLog;
}
