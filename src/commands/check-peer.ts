import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createAdmissionGate } from '../connection/admission-gate.js';
import { explainDecision } from '../connection/explain.js';
import type { Peer } from '../model/peer.js';
import { normaliseAddress } from '../access/ip.js';
import type { ServiceSpec } from '../config/types.js';
import { createLoadSampler } from '../connection/load-average.js';
import { ExitCode, FatalError } from '../model/errors.js';
import { createConnectionTable } from '../limits/connection-table.js';
import { configDirFrom, loadOrFail } from './load-or-fail.js';

export interface CheckPeerArgs {
  readonly configDir?: string | undefined;
  readonly xinetdConf?: string | undefined;
  readonly inetdConf?: string | undefined;
  readonly service?: string | undefined;
  /** `ADDR[:PORT]`: a TCP peer (`[V6]:PORT` with a port). */
  readonly peer?: string | undefined;
  /** A Unix peer's credentials (without `peer`). */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
}

/**
 * `socketeer check --service S --peer ADDR[:PORT]` (or `--uid N --gid N` for a Unix peer):
 * prints how the daemon would decide such a connection, from the functions the daemon runs,
 * with no handler running, nothing queued and every rate bucket full, at the current local
 * time and load. The last line is `decision: ...`. Exit 0 whenever the check ran (admit or not);
 * 100 for a usage or configuration error.
 */
export function runCheckPeer(args: CheckPeerArgs, out: (text: string) => void): number {
  const peer = peerFromArgs(args);
  const dir = configDirFrom(args.configDir);
  const config = loadOrFail({
    dir,
    foreign: { xinetdConf: args.xinetdConf, inetdConf: args.inetdConf },
  });
  const spec = config.services.find((s) => s.name === args.service);
  if (spec === undefined) {
    const names = config.services.map((s) => s.name).join(', ');
    const what = args.service === undefined ? 'no --service given' : `no service "${args.service}"`;
    throw new FatalError(`${what} in ${dir} (services: ${names || 'none'})`, ExitCode.permanent);
  }
  const clock = (): number => performance.now();
  const gate = createAdmissionGate({
    service: spec.name,
    policy: () => spec.admitPolicy,
    connections: createConnectionTable(),
    globalMax: null,
    loadAverage1: createLoadSampler({ clock }),
    clock,
    wallNow: Date.now,
    queueLength: () => 0,
  });
  const lines = [
    `service: ${spec.name} (${spec.file})${spec.disabled ? ', disabled' : ''}`,
    ...describeReach(spec, peer),
    'assumed: no handler running, nothing queued, every rate bucket full',
    ...explainDecision(gate.inputFor(peer)),
  ];
  out(lines.map((line) => `${line}\n`).join(''));
  return ExitCode.ok;
}

function describeReach(spec: ServiceSpec, peer: Peer): string[] {
  if (spec.listen.some((address) => address.kind === peer.kind)) return [];
  return [`note: ${spec.name} has no ${peer.kind === 'tcp' ? 'TCP' : 'Unix'} listener`];
}

function peerFromArgs(args: CheckPeerArgs): Peer {
  const hasCredentials = args.uid !== undefined || args.gid !== undefined;
  if (args.peer !== undefined && hasCredentials) {
    throw usage('--peer is a TCP peer, --uid/--gid a Unix peer: give one or the other');
  }
  if (args.peer === undefined) {
    if (!hasCredentials) throw usage('give --peer ADDR[:PORT] (TCP) or --uid/--gid (Unix)');
    for (const [name, id] of [
      ['--uid', args.uid],
      ['--gid', args.gid],
    ] as const) {
      if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id <= 4294967294))
        throw usage(`${name} ${id}: must be an integer from 0 to 4294967294`);
    }
    return { kind: 'unix', localPath: '', pid: null, uid: args.uid ?? null, gid: args.gid ?? null };
  }
  const parsed = parsePeerArgument(args.peer);
  if (parsed === null) {
    throw usage(`--peer "${args.peer}": not an IPv4 or IPv6 address with an optional :PORT`);
  }
  return {
    kind: 'tcp',
    localAddress: '',
    localPort: 0,
    remoteAddress: normaliseAddress(parsed.address),
    remotePort: parsed.port ?? 0,
  };
}

/** `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`; null when it is none of those. */
export function parsePeerArgument(text: string): { address: string; port: number | null } | null {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const v4 = /^([0-9.]+)(?::(\d+))?$/.exec(text);
  const [address, portText] = bracketed
    ? [bracketed[1] ?? '', bracketed[2]]
    : v4
      ? [v4[1] ?? '', v4[2]]
      : [text, undefined];
  const version = isIP(address);
  if (version === 0 || (bracketed !== null && version !== 6)) return null;
  if (portText === undefined) return { address, port: null };
  const port = Number(portText);
  return /^[1-9][0-9]{0,4}$/.test(portText) && port <= 65535 ? { address, port } : null;
}

function usage(message: string): FatalError {
  return new FatalError(`${message} (see socketeer check --help)`, ExitCode.permanent);
}
