import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { BucketRate } from '../limits/settings.js';
import type { EventLog, LogEvent, LogFields, LogJson, LogLevel } from './events.js';
import type { LogFormat } from './formats.js';
import { formatValue } from './format-value.js';
import {
  admitRecord,
  createRecordLimiter,
  summaryQuietMs,
  takeSummaries,
} from './record-limiter.js';

export type { LogFormat } from './formats.js';

/** The daemon's log: records, and the summaries of what the record limiter suppressed. */
export interface DaemonLog extends EventLog {
  /** Writes every pending `log-suppressed` summary now (before the last record). */
  flush(): void;
}

export interface LoggerOptions {
  readonly format: LogFormat;
  readonly level: LogLevel;
  /** The bucket of each (service, event, reason) of record-limiter.ts; null: no limit. */
  readonly records?: BucketRate | null;
  /** Monotonic ms (default performance.now). */
  readonly clock?: () => number;
  /**
   * Sees every record, whatever the level and the record limiter decide (the metrics count
   * `end` records this way): the event, its fields, and the fields its logger is bound to.
   */
  readonly observe?: RecordObserver;
  /** Where records go and what goes before each; default stderr, no prefix. */
  readonly output?: LogOutput;
}

/** Where the records go (serve's --log-target, journald's priority prefixes). */
export interface LogOutput {
  /** Put before each record: `<N>` for the journal, `<PRI>` for syslog, else nothing. */
  readonly prefix: (level: LogLevel) => string;
  /** Takes each record, newline included; absent: stderr. */
  readonly write?: (line: string) => void;
  /** The records must be JSON whatever `--log-format` says (the writer reads them). */
  readonly needsJson?: boolean;
}

const plain: LogOutput = { prefix: () => '' };

export type RecordObserver = (event: LogEvent, fields: LogFields, bound: LogFields) => void;

/**
 * A winston logger writing one record per line to stderr, as JSON or as text for people.
 * Records a peer can repeat at will are rate-limited; what is suppressed is counted and
 * summed up in `log-suppressed` records, checked every second while anything is pending.
 */
export function createLogger(options: LoggerOptions): DaemonLog {
  const output = options.output ?? plain;
  const logger = winston.createLogger({
    level: options.level,
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: (options.format === 'json' ? jsonFormat : textFormat)(output.prefix),
    transports: [transportFor(output)],
  });
  const clock = options.clock ?? (() => performance.now());
  const limiter = options.records == null ? null : createRecordLimiter(options.records);
  let timer: NodeJS.Timeout | null = null;
  const summarize = (all: boolean): void => {
    if (limiter === null) return;
    for (const { level, service, ...summary } of takeSummaries(limiter, clock(), all))
      root.log(level, 'log-suppressed', { ...(service === null ? {} : { service }), ...summary });
    if (limiter.pending === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
  const gate: Gate | null =
    limiter === null
      ? null
      : (level, service, event, fields) => {
          if (admitRecord(limiter, level, service, event, fields, clock())) return true;
          if (timer === null) {
            timer = setInterval(() => summarize(false), summaryQuietMs);
            timer.unref();
          }
          return false;
        };
  const root = new BoundLog(
    { logger, enabled: enabledLevels(logger), gate, observe: options.observe ?? null },
    {},
  );
  return {
    log: (level, event, fields) => root.log(level, event, fields),
    child: (fields) => root.child(fields),
    flush: () => summarize(true),
  };
}

/** Whether a record at an enabled level may be written (the record limiter's decision). */
type Gate = (
  level: LogLevel,
  service: LogJson | undefined,
  event: LogEvent,
  fields: LogFields,
) => boolean;

/** What every logger of one createLogger shares. */
interface Core {
  readonly logger: winston.Logger;
  /** Whether each level is written (the level is fixed at creation). */
  readonly enabled: Readonly<Record<LogLevel, boolean>>;
  readonly gate: Gate | null;
  readonly observe: RecordObserver | null;
}

function enabledLevels(logger: winston.Logger): Record<LogLevel, boolean> {
  return {
    error: logger.isLevelEnabled('error'),
    warn: logger.isLevelEnabled('warn'),
    info: logger.isLevelEnabled('info'),
    debug: logger.isLevelEnabled('debug'),
  };
}

/**
 * A logger and the fields it is bound to. A child is one small object (no winston child, no
 * closures, the fields copied by a loop: a spread of two objects costs ~1 us, and a connection
 * makes one child); a record below the level costs one look-up, a suppressed one a few map
 * look-ups; the record is merged only when it is written. All of it is per-connection path.
 */
class BoundLog implements EventLog {
  constructor(
    private readonly core: Core,
    private readonly bound: LogFields,
  ) {}

  log(level: LogLevel, event: LogEvent, fields: LogFields = {}): void {
    const { core, bound } = this;
    if (core.observe !== null) core.observe(event, fields, bound);
    if (!core.enabled[level]) return;
    if (core.gate !== null && !core.gate(level, bound.service, event, fields)) return;
    // winston would append a `message` field to the event name: it travels under its own key
    const { message, ...rest } = { ...bound, ...fields };
    const record = message === undefined ? rest : { ...rest, [messageKey]: message };
    core.logger.log(level, event, record);
  }

  child(fields: LogFields): EventLog {
    return new BoundLog(this.core, mergeFields(this.bound, fields));
  }
}

/** `{ ...first, ...second }` as a loop (V8's spread of two objects is ~10 times slower). */
function mergeFields(first: LogFields, second: LogFields): LogFields {
  const merged: Record<string, LogFields[string]> = {};
  for (const key in first) merged[key] = first[key];
  for (const key in second) merged[key] = second[key];
  return merged;
}

function transportFor(output: LogOutput): winston.transport {
  const { write } = output;
  if (write === undefined)
    return new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] });
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      write(chunk.toString());
      done();
    },
  });
  return new winston.transports.Stream({ stream });
}

type Prefix = LogOutput['prefix'];

/** Where a record's own `message` field (config-warning) rides past winston. */
const messageKey = 'socketeer:message';

/** winston's info as the record: `message` is the event; the record's own message put back. */
function splitInfo(info: winston.Logform.TransformableInfo): {
  level: string;
  event: unknown;
  rest: Record<string, unknown>;
} {
  const { level, message: event, [messageKey]: message, ...rest } = info;
  return { level, event, rest: message === undefined ? rest : { ...rest, message } };
}

function jsonFormat(prefix: Prefix): winston.Logform.Format {
  return winston.format.printf((info) => {
    const { level, event, rest } = splitInfo(info);
    const record = { time: new Date().toISOString(), level, event, ...rest };
    return prefix(level as LogLevel) + JSON.stringify(record);
  });
}

function textFormat(prefix: Prefix): winston.Logform.Format {
  return winston.format.printf((info) => {
    const { level, event: message, rest } = splitInfo(info);
    const fields = Object.entries(rest)
      .filter(([key]) => typeof key === 'string')
      .map(([key, value]) => `${key}=${formatValue(value)}`);
    const words = [new Date().toISOString(), level, String(message), ...fields];
    return prefix(level as LogLevel) + words.join(' ');
  });
}

/** A logger that drops everything (for commands that run the daemon's code without a log). */
export const silentLog: EventLog = {
  log() {},
  child() {
    return silentLog;
  },
};
