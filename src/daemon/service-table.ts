import type { ServiceRunner } from './service-runner.js';
import type { ServiceState } from './state.js';
import { isListening, nextState, type LifecycleEvent } from './transitions.js';

/**
 * The daemon's services: one runner and one lifecycle state each, in the order they were added.
 * States change only by the transitions of transitions.ts.
 */
export class ServiceTable {
  private readonly runners = new Map<string, ServiceRunner>();
  private readonly states = new Map<string, ServiceState>();
  /** Quiesces in flight per service: the state goes back to running when the last one is done. */
  private readonly quiescing = new Map<string, number>();

  /** A service that starts in `state` (at start-up, or added by a reload). */
  add(runner: ServiceRunner, state: ServiceState): void {
    this.runners.set(runner.spec.name, runner);
    this.states.set(runner.spec.name, state);
  }

  /** Takes a service out (a reload removed it); its runner. */
  remove(name: string): ServiceRunner | undefined {
    const runner = this.runners.get(name);
    this.runners.delete(name);
    this.states.delete(name);
    return runner;
  }

  get(name: string): ServiceRunner | undefined {
    return this.runners.get(name);
  }

  /** Every runner, in the order the services were added. */
  all(): ServiceRunner[] {
    return [...this.runners.values()];
  }

  /** A service's state (`stopped` for a name not in the table). */
  stateOf(name: string): ServiceState {
    return this.states.get(name) ?? 'stopped';
  }

  /** Services whose addresses are not bound: stopped, or draining. */
  unbound(): string[] {
    return [...this.states].flatMap(([name, state]) => (isListening(state) ? [] : [name]));
  }

  /** Where `event` would take the service; null: it would stay where it is. */
  next(name: string, event: LifecycleEvent): ServiceState | null {
    return nextState(this.stateOf(name), event);
  }

  /**
   * Moves the service on by `event`; the state it moved to, or null when it stays (or is no
   * longer in the table).
   */
  apply(name: string, event: LifecycleEvent): ServiceState | null {
    const next = this.states.has(name) ? this.next(name, event) : null;
    if (next !== null) this.states.set(name, next);
    return next;
  }

  /** One more quiesce of the service in flight: a running service is quiesced until it ends. */
  beginQuiesce(name: string): void {
    this.quiescing.set(name, (this.quiescing.get(name) ?? 0) + 1);
    this.apply(name, 'quiesce');
  }

  /** A quiesce has ended its handlers: with none left in flight, the service runs again. */
  endQuiesce(name: string): void {
    const left = (this.quiescing.get(name) ?? 1) - 1;
    this.quiescing.set(name, left);
    if (left === 0) this.apply(name, 'quiesce-done');
  }

  /** Handlers running across every service. */
  get activeHandlers(): number {
    let n = 0;
    for (const runner of this.runners.values()) n += runner.handlers.size;
    return n;
  }
}
