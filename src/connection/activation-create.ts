import type { ServiceSpec } from '../config/types.js';
import type { SocketHolder } from '../listen/hold.js';
import { ActivationServer, type ActivationServerOptions } from './activation-server.js';

/**
 * The activation server of an `accept: false` service (`service.spec` read at each start);
 * null for `accept: true`, or without the addon that holds sockets.
 */
export function createActivation(
  service: { readonly spec: ServiceSpec },
  deps: Omit<ActivationServerOptions, 'spec' | 'holder' | 'clock'> & {
    readonly accept?: { readonly holder: SocketHolder | null } | undefined;
    readonly clock?: (() => number) | undefined;
  },
): ActivationServer | null {
  const holder = deps.accept?.holder ?? null;
  const activation = service.spec.activation;
  if (activation === null || holder === null) return null;
  const clock = deps.clock ?? (() => performance.now());
  const { spawner, now, log } = deps;
  const options = { spec: () => service.spec, spawner, holder, log, now, clock };
  return new ActivationServer(options, activation);
}
