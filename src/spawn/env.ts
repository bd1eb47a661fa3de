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
 */
export function buildHandlerEnv(input: HandlerEnvInput): string[] {
  return withBaseEnv(input.service.baseEnv, connectionVars(input));
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

function connectionVars(input: HandlerEnvInput): Record<string, string> {
  const { peer } = input;
  const common = { SOCKETEER_SERVICE: input.service.name, SOCKETEER_INSTANCE: input.connectionId };
  if (peer.kind === 'tcp') {
    return {
      PROTO: 'TCP',
      TCPLOCALIP: peer.localAddress,
      TCPLOCALPORT: String(peer.localPort),
      TCPREMOTEIP: peer.remoteAddress,
      TCPREMOTEPORT: String(peer.remotePort),
      TCPCONNNUM: String(input.sourceConnections),
      REMOTE_ADDR: peer.remoteAddress,
      REMOTE_PORT: String(peer.remotePort),
      REMOTE_HOST: peer.remoteAddress,
      ...common,
    };
  }
  const vars: Record<string, string> = {
    PROTO: 'IPC',
    IPCLOCALPATH: peer.localPath,
    IPCCONNNUM: String(input.sourceConnections),
    ...common,
  };
  if (peer.uid !== null) vars.IPCREMOTEEUID = String(peer.uid);
  if (peer.gid !== null) vars.IPCREMOTEEGID = String(peer.gid);
  if (peer.pid !== null) vars.IPCREMOTEPID = String(peer.pid);
  return vars;
}
