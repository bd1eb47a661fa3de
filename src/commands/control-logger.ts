import type { ControlLogger } from '../control/server.js';
import type { EventLog, LogEvent, LogFields, LogLevel } from '../log/events.js';

/**
 * The control channel's records go to the daemon's log under their own event names; its
 * `message` field is logged as `detail` (winston would append a `message` to the event name).
 */
export function controlLogger(log: EventLog): ControlLogger {
  const at =
    (level: LogLevel) =>
    (event: string, { message, ...fields }: Record<string, unknown>): void =>
      log.log(
        level,
        event as LogEvent,
        {
          ...fields,
          ...(message === undefined ? {} : { detail: message }),
        } as LogFields,
      );
  return { info: at('info'), warn: at('warn'), error: at('error') };
}
