/**
 * /etc/services: `name port/proto [aliases...] [# comment]`. Parsed from its text (the caller
 * reads the file, so tests inject their own); a name or an alias finds its port per protocol.
 */

export interface ServicesDb {
  /** The port of a service name (or alias) for `tcp` or `udp`; null when not listed. */
  port(name: string, protocol: 'tcp' | 'udp'): number | null;
}

export function parseServicesText(text: string): ServicesDb {
  const ports = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const words = (raw.split('#')[0] ?? '').trim().split(/\s+/);
    const [name, portProto, ...aliases] = words;
    const match = /^(\d+)\/([a-z0-9]+)$/.exec(portProto ?? '');
    if (name === undefined || name === '' || match === null) continue;
    const port = Number(match[1]);
    for (const each of [name, ...aliases]) {
      const key = `${each}/${match[2] ?? ''}`;
      if (!ports.has(key)) ports.set(key, port); // the first line wins, as getservbyname(3)
    }
  }
  return { port: (name, protocol) => ports.get(`${name}/${protocol}`) ?? null };
}

/** No /etc/services: only numeric ports resolve. */
export const emptyServicesDb: ServicesDb = { port: () => null };

/** A port written as a number (1-65535) or a service name looked up in `db`. */
export function resolvePort(
  text: string,
  protocol: 'tcp' | 'udp',
  db: ServicesDb,
): number | string {
  if (/^\d+$/.test(text)) {
    const port = Number(text);
    return port >= 1 && port <= 65535 ? port : `port ${text} is not within 1-65535`;
  }
  return db.port(text, protocol) ?? `no ${protocol} port for "${text}" in /etc/services`;
}
