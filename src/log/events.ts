/**
 * The fixed log vocabulary: every record has `event` set to one of these names, its data in
 * fields. The README's "Log events" table lists the same names (a test holds them equal).
 */
export const logEvents = {
  listen: 'a listener is bound (service, address)',
  ready: 'every listener is bound (addresses)',
  accept:
    'a connection was accepted and its handler started (service, conn, peer, pid; waitedMs when it was queued)',
  refuse:
    'a connection was refused before any fork and closed, or given the banner (service, conn, peer, reason, detail)',
  queue:
    'a connection over a concurrency cap was queued, accepted and unread (service, conn, peer, reason, detail, queueLength)',
  'queue-dropped':
    'a queued connection was closed unserved because its service stopped (service, conn, peer, waitedMs)',
  timeout:
    'a handler ran past limits.runtimeMaxSec: SIGTERM to its tree, SIGKILL after killGraceSec (service, conn, pid, runtimeMaxSec, killGraceSec)',
  end: 'a handler ended (service, conn, pid, exitCode or signal, durationMs, timedOut, forced); for an accept: false service its process, without conn',
  activate:
    'accept: false: the service process started with its listening sockets (service, pid, fds, trigger: demand, start or restart)',
  'restart-scheduled':
    'accept: false: the process exited and will be started again after delayMs (service, delayMs)',
  'process-ready':
    'accept: false: the process sent READY=1 on its NOTIFY_SOCKET (service, pid, status)',
  'process-status': 'accept: false: the process sent STATUS= (level debug; service, pid, status)',
  'process-stopping': 'accept: false: the process sent STOPPING=1 (service, pid, status)',
  'process-mainpid':
    'accept: false: the process named its main pid with MAINPID= (service, pid, mainPid)',
  'notify-refused':
    'accept: false: a NOTIFY_SOCKET message (or part of one) was refused and its fds closed: a sender other than the main process (once per pid), a truncated message, an invalid assignment or MAINPID= (service, pid, uid, reason, detail, fds)',
  'fd-stored':
    'accept: false: fds sent with FDSTORE=1 are kept for the next start (service, name, stored, duplicates, total)',
  'fd-store-refused':
    'accept: false: fds sent on NOTIFY_SOCKET were closed, not stored: fdStoreMax 0 or reached, no FDSTORE=1, an invalid FDNAME, the service stopped (service, name, closed, reason, fdStoreMax)',
  'fd-store-removed':
    'accept: false: FDSTOREREMOVE=1 closed the fds stored under a name (service, name, closed)',
  'fd-store-closed': 'accept: false: `stop` (or shutdown) closed the stored fds (service, closed)',
  'spawn-failed':
    'a handler could not be started; the connection was closed (service, conn, code, error)',
  'proxy-failed':
    'a proxied connection could not reach its target (refused, timed out, no such socket); the client was closed (service, conn, proxy, code, syscall, error)',
  stderr: "one line of a handler's stderr (service, conn, pid, line)",
  'stderr-dropped':
    "stderr lines over the service's stderrRate were read and dropped (service, conn, pid, bytes, total)",
  'log-suppressed':
    'records over the log rate were counted, not written (service, record, reason, suppressed, intervalMs)',
  'accept-failed':
    'accept(2) failed on a listener, e.g. EMFILE; the listener goes on (service, code)',
  'no-services': 'the configuration has no enabled service',
  'config-warning':
    'a service setting is valid but has no effect or a surprising one (service, file, pointer, message)',
  'signal-ignored': 'a signal this build has no action for was received and ignored (signal)',
  shutdown: 'the daemon is stopping (signal, handlers still running)',
  exit: 'the daemon has stopped; last record (code)',
  fatal:
    '`serve --log-format json`: the daemon could not start or go on; written instead of the `socketeer: fatal:` line (error, exitCode, problems, bug)',
  'control-listen': 'the control socket is bound (path)',
  'metrics-listen': '`serve --metrics`: the HTTP server for GET /metrics is listening (url)',
  'control-refused':
    'a control connection was refused: peer uid not allowed, or too many (code, message)',
  'control-bad-request': 'a control request was invalid; once per connection (code, message)',
  'control-error': 'the control socket failed (error)',
  'control-failed': 'a control request failed with an internal error (cmd, error)',
  state: 'SIGUSR1: the whole state, as `status --json` shows it (pid, startedAt, services)',
  reload: 'a new configuration was applied (unchanged, changed, added, removed)',
  'reload-failed':
    'a reload changed nothing: the configuration has problems or a new address failed to bind (problems)',
  'bind-failed':
    'a reload or `start` could not bind one address; the service runs without it (service, address, error)',
  start: '`start`: the service listens again (service, addresses)',
  stop: 'the service stopped listening and its handlers were ended (service, by, handlers)',
  quiesce:
    '`quiesce`: running handlers are being ended; the service keeps listening (service, handlers)',
  drain:
    '`drain`: the service stopped listening; its handlers may finish (service, handlers, timeoutSec)',
  kill: '`kill`: handlers were signalled (service, signal, conns, pids)',
  upgrade:
    'hand-over done: the new process serves every listener; this one exits and leaves its handlers running (pid, handlers)',
  'upgrade-failed': 'a hand-over failed; this process goes on serving (error)',
  takeover:
    'this process took over listeners and running handlers from another (from, listeners, handlers)',
  'inherit-unused':
    'an inherited listening fd matched no service address and was closed (fd, name, reason)',
  'notify-failed': 'a message to systemd (NOTIFY_SOCKET) could not be sent (message, error)',
  'process-tracking':
    "how handlers' descendants are found and ended: at start-up (mechanism cgroup, subreaper or process-group; cgroup; reason), or a problem with it (level warn: error)",
} as const;

export type LogEvent = keyof typeof logEvents;

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const logLevels: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/** A JSON value: the few records that carry structure (`state`) use objects and lists. */
export type LogJson =
  string | number | boolean | null | readonly LogJson[] | { readonly [key: string]: LogJson };

export type LogFields = Readonly<Record<string, LogJson | undefined>>;

/** The only logging surface the daemon sees: events with fields, and children bound to fields. */
export interface EventLog {
  log(level: LogLevel, event: LogEvent, fields?: LogFields): void;
  child(fields: LogFields): EventLog;
}
