import winston from 'winston';
import type { EventLog, LogFields, LogLevel } from './events.js';

export const logFormats = ['json', 'text'] as const;
export type LogFormat = (typeof logFormats)[number];

/** A winston logger writing one record per line to stderr, as JSON or as text for people. */
export function createLogger(options: { format: LogFormat; level: LogLevel }): EventLog {
  const logger = winston.createLogger({
    level: options.level,
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: options.format === 'json' ? jsonFormat() : textFormat(),
    transports: [
      new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }),
    ],
  });
  return wrap(logger, {});
}

/**
 * Children only remember their bound fields (no winston child per connection), and a record
 * below the level costs one comparison: both sit on the per-connection path.
 */
function wrap(logger: winston.Logger, bound: LogFields): EventLog {
  return {
    log(level: LogLevel, event, fields: LogFields = {}) {
      if (logger.isLevelEnabled(level)) logger.log(level, event, { ...bound, ...fields });
    },
    child(fields) {
      return wrap(logger, { ...bound, ...fields });
    },
  };
}

function jsonFormat(): winston.Logform.Format {
  return winston.format.printf((info) => {
    const { level, message, ...rest } = info;
    return JSON.stringify({ time: new Date().toISOString(), level, event: message, ...rest });
  });
}

function textFormat(): winston.Logform.Format {
  return winston.format.printf((info) => {
    const { level, message, ...rest } = info;
    const fields = Object.entries(rest)
      .filter(([key]) => typeof key === 'string')
      .map(([key, value]) => `${key}=${formatValue(value)}`);
    return [new Date().toISOString(), level, String(message), ...fields].join(' ');
  });
}

function formatValue(value: unknown): string {
  if (value !== null && typeof value === 'object') {
    const isFlat = Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object');
    if (!isFlat) return JSON.stringify(value);
  }
  const text = Array.isArray(value) ? value.join(',') : String(value);
  return /[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text;
}

/** A logger that drops everything (for commands that run the daemon's code without a log). */
export const silentLog: EventLog = {
  log() {},
  child() {
    return silentLog;
  },
};
