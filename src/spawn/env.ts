import type { Peer } from '../model/peer.js';
import type { ServiceSpec } from '../config/types.js';

export interface HandlerEnvInput {
  readonly service: Pick<ServiceSpec, 'name' | 'baseEnv'>;
  readonly peer: Peer;
  readonly connectionId: string;
  /** Live handlers from the same source, this one included (TCPCONNNUM / IPCCONNNUM). */
  readonly sourceConnections: number;
}

/**
 * The handler's whole environment as `KEY=value` strings: the service's fixed part (PATH,
 * HOME, USER, LOGNAME, passEnv, env), then the connection's variables, which always win.
 * Built as strings directly (the per-connection path): the fixed part's entries are made once
 * per service, and a fixed entry is left out when the connection sets the same key.
 */
export function buildHandlerEnv(input: HandlerEnvInput): string[] {
  const { peer } = input;
  const env: string[] = [];
  const isOwn = peer.kind === 'tcp' ? isTcpKey : ipcKeys(peer);
  for (const [key, entry] of baseEntries(input.service.baseEnv)) {
    if (!isOwn(key)) env.push(entry);
  }
  if (peer.kind === 'tcp') {
    const remote = peer.remoteAddress;
    const remotePort = String(peer.remotePort);
    env.push(
      'PROTO=TCP',
      `TCPLOCALIP=${peer.localAddress}`,
      `TCPLOCALPORT=${peer.localPort}`,
      `TCPREMOTEIP=${remote}`,
      `TCPREMOTEPORT=${remotePort}`,
      `TCPCONNNUM=${input.sourceConnections}`,
      `REMOTE_ADDR=${remote}`,
      `REMOTE_PORT=${remotePort}`,
      `REMOTE_HOST=${remote}`,
    );
  } else {
    env.push(
      'PROTO=IPC',
      `IPCLOCALPATH=${peer.localPath}`,
      `IPCCONNNUM=${input.sourceConnections}`,
    );
  }
  env.push(`SOCKETEER_SERVICE=${input.service.name}`, `SOCKETEER_INSTANCE=${input.connectionId}`);
  if (peer.kind === 'unix') {
    if (peer.uid !== null) env.push(`IPCREMOTEEUID=${peer.uid}`);
    if (peer.gid !== null) env.push(`IPCREMOTEEGID=${peer.gid}`);
    if (peer.pid !== null) env.push(`IPCREMOTEPID=${peer.pid}`);
  }
  return env;
}

/** `base` then `own` as `KEY=value` strings; a key of `own` replaces the same key of `base`. */
export function withBaseEnv(
  base: Readonly<Record<string, string>>,
  own: Readonly<Record<string, string>>,
): string[] {
  const env: string[] = [];
  for (const key in base) {
    if (!(key in own)) env.push(`${key}=${base[key]}`);
  }
  for (const key in own) env.push(`${key}=${own[key]}`);
  return env;
}

const commonKeys = ['SOCKETEER_SERVICE', 'SOCKETEER_INSTANCE'];
const tcpKeys = new Set([
  'PROTO',
  'TCPLOCALIP',
  'TCPLOCALPORT',
  'TCPREMOTEIP',
  'TCPREMOTEPORT',
  'TCPCONNNUM',
  'REMOTE_ADDR',
  'REMOTE_PORT',
  'REMOTE_HOST',
  ...commonKeys,
]);
const ipcKeySet = new Set(['PROTO', 'IPCLOCALPATH', 'IPCCONNNUM', ...commonKeys]);

function isTcpKey(key: string): boolean {
  return tcpKeys.has(key);
}

/** The keys a Unix connection sets: the IPCREMOTE* ones only when the kernel told them. */
function ipcKeys(peer: Peer & { kind: 'unix' }): (key: string) => boolean {
  return (key) =>
    ipcKeySet.has(key) ||
    (key === 'IPCREMOTEEUID' && peer.uid !== null) ||
    (key === 'IPCREMOTEEGID' && peer.gid !== null) ||
    (key === 'IPCREMOTEPID' && peer.pid !== null);
}

const baseEntryCache = new WeakMap<Readonly<Record<string, string>>, [string, string][]>();

/** A service's fixed variables as [key, `KEY=value`], made once per baseEnv object. */
function baseEntries(base: Readonly<Record<string, string>>): [string, string][] {
  let entries = baseEntryCache.get(base);
  if (entries === undefined) {
    entries = Object.keys(base).map((key) => [key, `${key}=${base[key]}`]);
    baseEntryCache.set(base, entries);
  }
  return entries;
}
