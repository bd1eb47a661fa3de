import type { EventLog } from '../log/events.js';

export interface SignalActions {
  readonly shutdown: (signal: NodeJS.Signals) => void;
  readonly reload?: () => void;
  readonly dumpState?: () => void;
  readonly upgrade?: () => void;
}

/** Every signal the daemon handles (README: "Signals"). */
export const handledSignals: readonly NodeJS.Signals[] = [
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGUSR1',
  'SIGUSR2',
];

/**
 * The daemon's signal table (README: "Signals"): SIGTERM and SIGINT shut down, SIGHUP reloads,
 * SIGUSR1 logs the state, SIGUSR2 hands over to a new process. A signal without an action is
 * logged and ignored rather than left to its default, which would kill the daemon.
 */
export function installSignalHandlers(actions: SignalActions, log: EventLog): () => void {
  const table: [NodeJS.Signals, (() => void) | undefined][] = [
    ['SIGTERM', () => actions.shutdown('SIGTERM')],
    ['SIGINT', () => actions.shutdown('SIGINT')],
    ['SIGHUP', actions.reload],
    ['SIGUSR1', actions.dumpState],
    ['SIGUSR2', actions.upgrade],
  ];
  const installed = table.map(([signal, action]) => {
    const listener = (): void => {
      if (action !== undefined) action();
      else log.log('warn', 'signal-ignored', { signal });
    };
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of installed) process.off(signal, listener);
  };
}
