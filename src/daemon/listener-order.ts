import { formatListenAddress } from '../config/listen-address.js';
import type { BoundListener } from '../listen/bound-listener.js';
import type { ServiceRunner } from './service-runner.js';

/**
 * The addresses a service has bound, as bound (`tcp:127.0.0.1:40123`), in its `listen` order.
 * Each address is formatted once: status and the ready line ask this of every service.
 */
export function boundInListenOrder(runner: ServiceRunner): string[] {
  const listeners = runner.boundListeners;
  if (listeners.length < 2) return listeners.map((l) => l.bound);
  const position = new Map(runner.spec.listen.map((a, i) => [formatListenAddress(a), i]));
  const keyed = listeners.map((l: BoundListener) => ({
    bound: l.bound,
    at: position.get(formatListenAddress(l.address)) ?? -1,
  }));
  return keyed.sort((a, b) => a.at - b.at).map((l) => l.bound);
}
