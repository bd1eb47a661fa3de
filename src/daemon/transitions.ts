import type { ServiceState } from './state.js';

/**
 * What moves a service from one lifecycle state to another: the control verbs, and the ends of
 * the two that take time (`quiesce` is done when the last quiesce in flight has ended its
 * handlers, `drain` when its handlers have ended or its deadline has passed).
 */
export type LifecycleEvent = 'stop' | 'start' | 'quiesce' | 'quiesce-done' | 'drain' | 'drain-done';

/**
 * The lifecycle, state x event -> next state. An event missing from a row leaves the state as it
 * is, and the work bound to the change is not done (`start` binds nothing for a service that is
 * listening; `drain-done` logs no `stop` for a service started again meanwhile).
 */
const transitions: Readonly<
  Record<ServiceState, Readonly<Partial<Record<LifecycleEvent, ServiceState>>>>
> = {
  running: { stop: 'stopped', quiesce: 'quiesced', drain: 'draining' },
  quiesced: { stop: 'stopped', 'quiesce-done': 'running', drain: 'draining' },
  draining: { stop: 'stopped', start: 'running', 'drain-done': 'stopped' },
  stopped: { start: 'running' },
};

/** Where `event` takes a service in `state`; null: it stays where it is. */
export function nextState(state: ServiceState, event: LifecycleEvent): ServiceState | null {
  return transitions[state][event] ?? null;
}

/** Whether a service in `state` has its addresses bound. */
export function isListening(state: ServiceState): boolean {
  return state === 'running' || state === 'quiesced';
}
