/** Read access to live handler counts, as admission decisions need it. */
export interface ConnectionCounts {
  /** Live handlers of the service. */
  countService(service: string): number;
  /** Live handlers of the service for one source key. */
  countSource(service: string, sourceKey: string): number;
  /** Live handlers of every service. */
  countAll(): number;
}

/**
 * Live handlers per service, per (service, source) and in total. The daemon calls `add` when a
 * handler is spawned and `remove` when it has exited (not when the listener hands it over), so
 * the counts are instances, not accepted sockets. Entries that reach zero are dropped.
 */
export interface ConnectionTable extends ConnectionCounts {
  add(service: string, sourceKey: string): void;
  /** Returns false (and changes nothing) when no such handler was counted: a caller bug. */
  remove(service: string, sourceKey: string): boolean;
}

interface ServiceCount {
  count: number;
  readonly sources: Map<string, number>;
}

export function createConnectionTable(): ConnectionTable {
  const services = new Map<string, ServiceCount>();
  let total = 0;
  return {
    countService: (service) => services.get(service)?.count ?? 0,
    countSource: (service, key) => services.get(service)?.sources.get(key) ?? 0,
    countAll: () => total,
    add(service, key) {
      const entry = services.get(service) ?? { count: 0, sources: new Map<string, number>() };
      entry.count += 1;
      entry.sources.set(key, (entry.sources.get(key) ?? 0) + 1);
      services.set(service, entry);
      total += 1;
    },
    remove(service, key) {
      const entry = services.get(service);
      const count = entry?.sources.get(key);
      if (entry === undefined || count === undefined) return false;
      if (count > 1) entry.sources.set(key, count - 1);
      else entry.sources.delete(key);
      entry.count -= 1;
      if (entry.count === 0) services.delete(service);
      total -= 1;
      return true;
    },
  };
}
