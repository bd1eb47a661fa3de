import type { ListenAddress, ServiceSpec, SocketSpec } from '../config/types.js';
import { formatListenAddress, isSameBinding } from '../config/listen-address.js';

/** A listener bound now: its service, its position in that service's list, what it was bound as. */
export interface CurrentListener {
  readonly service: string;
  readonly index: number;
  readonly address: ListenAddress;
  readonly socket: SocketSpec;
}

export interface ReloadInput {
  /** The definitions running now (enabled services only). */
  readonly current: readonly ServiceSpec[];
  /** Every listener bound now. */
  readonly listeners: readonly CurrentListener[];
  /** The new configuration's enabled services. */
  readonly next: readonly ServiceSpec[];
  /** Services that stay unbound whatever their definition (stopped, draining). */
  readonly unbound: ReadonlySet<string>;
}

/** What becomes of one address of a new definition. */
export type ListenerStep =
  | { readonly kind: 'keep'; readonly service: string; readonly listener: CurrentListener }
  /**
   * A Unix path listener kept whose socket file takes a new owner or mode in place (nothing
   * else changed): no re-bind, no connection lost.
   */
  | {
      readonly kind: 'retune';
      readonly service: string;
      readonly listener: CurrentListener;
      readonly socket: SocketSpec;
    }
  /** A fresh bind that collides with nothing bound now: done before anything changes. */
  | { readonly kind: 'bind'; readonly service: string; readonly address: ListenAddress }
  /**
   * A bind on an address held by a listener that is going away (changed socket options, or an
   * address moved between services): done after it closes, or for a Unix path by replacing it.
   */
  | {
      readonly kind: 'rebind';
      readonly service: string;
      readonly address: ListenAddress;
      readonly replaces: readonly CurrentListener[];
    };

export interface ReloadPlan {
  readonly unchanged: readonly string[];
  readonly changed: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly steps: readonly ListenerStep[];
  /** Listeners no new definition keeps. */
  readonly close: readonly CurrentListener[];
}

/**
 * The difference between the running definitions and a new configuration (pure). A listener
 * stays bound when the same service still lists the same address with the same socket options
 * that matter for its kind; everything else is bound afresh or closed.
 */
export function planReload(input: ReloadInput): ReloadPlan {
  const currentByName = new Map(input.current.map((spec) => [spec.name, spec]));
  const nextNames = new Set(input.next.map((spec) => spec.name));
  const { steps, taken, wanted } = matchKept(input);
  const close = input.listeners.filter((l) => !taken.has(l));
  for (const { service, address } of wanted) {
    const replaces = close.filter((l) => isSameBinding(l.address, address));
    steps.push(
      replaces.length === 0
        ? { kind: 'bind', service, address }
        : { kind: 'rebind', service, address, replaces },
    );
  }
  const unchanged: string[] = [];
  const changed: string[] = [];
  const added: string[] = [];
  for (const spec of input.next) {
    const before = currentByName.get(spec.name);
    if (before === undefined) added.push(spec.name);
    else (isSameDefinition(before, spec) ? unchanged : changed).push(spec.name);
  }
  const removed = input.current.filter((s) => !nextNames.has(s.name)).map((s) => s.name);
  return { unchanged, changed, added, removed, steps, close };
}

/** The listeners each new definition keeps, and the addresses it wants bound afresh. */
function matchKept(input: ReloadInput): {
  steps: ListenerStep[];
  taken: Set<CurrentListener>;
  wanted: { service: string; address: ListenAddress }[];
} {
  const taken = new Set<CurrentListener>();
  const wanted: { service: string; address: ListenAddress }[] = [];
  const steps: ListenerStep[] = [];
  const byService = new Map<string, CurrentListener[]>();
  for (const l of input.listeners)
    byService.set(l.service, [...(byService.get(l.service) ?? []), l]);
  for (const spec of input.next) {
    if (input.unbound.has(spec.name)) continue;
    const own = byService.get(spec.name) ?? [];
    for (const address of spec.listen) {
      const free = own.filter((l) => !taken.has(l));
      const want = { address, socket: spec.socket };
      const kept = free.find((l) => isSameListener(l, want));
      const retuned = kept ?? free.find((l) => isRetunable(l, want));
      if (retuned === undefined) wanted.push({ service: spec.name, address });
      else {
        taken.add(retuned);
        steps.push(
          kept === undefined
            ? { kind: 'retune', service: spec.name, listener: retuned, socket: spec.socket }
            : { kind: 'keep', service: spec.name, listener: retuned },
        );
      }
    }
  }
  return { steps, taken, wanted };
}

/** An address with the socket options it is (or is to be) bound with. */
interface SocketAt {
  readonly address: ListenAddress;
  readonly socket: SocketSpec;
}

/** Same address, and the same options that matter for its kind. */
export function isSameListener(x: SocketAt, y: SocketAt): boolean {
  const [a, aSocket, b, bSocket] = [x.address, x.socket, y.address, y.socket];
  if (formatListenAddress(a) !== formatListenAddress(b)) return false;
  if (aSocket.backlog !== bSocket.backlog) return false;
  if (a.kind === 'tcp')
    return aSocket.noDelay === bSocket.noDelay && aSocket.keepAlive === bSocket.keepAlive;
  if (a.kind === 'udp' || a.abstract) return true;
  return (
    aSocket.mode === bSocket.mode && aSocket.uid === bSocket.uid && aSocket.gid === bSocket.gid
  );
}

/** The same Unix path listener but for the socket file's owner and mode (changed in place). */
export function isRetunable(x: SocketAt, y: SocketAt): boolean {
  if (x.address.kind !== 'unix' || x.address.abstract) return false;
  const owned = { mode: y.socket.mode, uid: y.socket.uid, gid: y.socket.gid };
  return isSameListener({ address: x.address, socket: { ...x.socket, ...owned } }, y);
}

/** Whether two definitions are identical (every resolved field, files included). */
export function isSameDefinition(a: ServiceSpec | undefined, b: ServiceSpec): boolean {
  return a !== undefined && isSameValue(a, b);
}

/**
 * Deep equality as JSON sees it (pure): object keys in any order, a key whose value is undefined
 * or a function counts as absent; the compiled parts of a spec (bigint, Set, Map) compare by
 * value, a Set or Map in its order. Stops at the first difference and builds nothing.
 */
export function isSameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return !isFinite(a) && !isFinite(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b))
    return Array.isArray(a) && Array.isArray(b) && isSameList(a, b);
  if (a instanceof Set || b instanceof Set)
    return a instanceof Set && b instanceof Set && isSameList([...a], [...b]);
  if (a instanceof Map || b instanceof Map)
    return a instanceof Map && b instanceof Map && isSameList([...a], [...b]);
  return isSameRecord(a as Record<string, unknown>, b as Record<string, unknown>);
}

/** The same present keys with the same values, counted without building a list. */
function isSameRecord(x: Record<string, unknown>, y: Record<string, unknown>): boolean {
  let present = 0;
  for (const key in x) {
    if (!Object.hasOwn(x, key) || !isPresent(x[key])) continue;
    if (!Object.hasOwn(y, key) || !isSameValue(x[key], y[key])) return false;
    present++;
  }
  for (const key in y) if (Object.hasOwn(y, key) && isPresent(y[key])) present--;
  return present === 0;
}

function isSameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => isSameValue(v, b[i]));
}

/** A value JSON.stringify keeps as an object's property. */
function isPresent(value: unknown): boolean {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
}
