import { formatCidr, type Cidr, type PrefixList } from '../access/cidr.js';
import { normaliseAddress } from '../access/ip.js';
import {
  describeCheckLine,
  traceAdmission,
  type AdmitCheck,
  type AdmitDecision,
  type AdmitInput,
} from './admit.js';

/**
 * The decision path of one connection as lines, for `socketeer check --peer`: the peer and its
 * source key, each check that ran (the refusing one last), what `limits.onLimit` did, and the
 * decision. Built from `traceAdmission`, the function behind `admitConnection`.
 */
export function explainDecision(input: AdmitInput): string[] {
  const trace = traceAdmission(input);
  return [
    `peer: ${describePeer(input)} (source ${trace.sourceKey})`,
    ...trace.checks.flatMap((check) => explainCheck(check, input)),
    ...explainOnLimit(trace.decision, input),
    `decision: ${describeDecision(trace.decision)}`,
  ];
}

function describePeer(input: AdmitInput): string {
  const { peer } = input;
  if (peer.family === 'tcp') return `tcp ${normaliseAddress(peer.address)}`;
  if (peer.uid === null && peer.gid === null) return 'unix, credentials unknown';
  return `unix uid ${peer.uid ?? '?'} gid ${peer.gid ?? '?'}`;
}

function explainCheck(check: AdmitCheck, input: AdmitInput): string[] {
  const line = describeCheckLine(check, input);
  const { access } = input.policy;
  if (check.check === 'address' && input.peer.family === 'tcp') {
    const address = normaliseAddress(input.peer.address);
    return [
      explainList('access.allow', access.allow, check.verdict.allowMatch, address),
      explainList('access.deny', access.deny, check.verdict.denyMatch, address),
      line,
    ];
  }
  if (check.check === 'credentials' && input.peer.family === 'unix') {
    const { uid, gid } = input.peer;
    return [
      explainIds('access.uids', 'uid', access.uids, uid),
      explainIds('access.gids', 'gid', access.gids, gid),
      line,
    ];
  }
  return [line];
}

function explainList(
  key: string,
  list: PrefixList | null,
  match: Cidr | null,
  address: string,
): string {
  if (list === null) return `${key}: not set`;
  if (match === null) return `${key}: no match`;
  return `${key}: ${formatCidr(match)} matches ${address} (prefix /${match.prefix})`;
}

function explainIds(
  key: string,
  name: 'uid' | 'gid',
  ids: ReadonlySet<number> | null,
  id: number | null,
): string {
  if (ids === null) return `${key}: not set`;
  if (id === null) return `${key}: ${name} unknown`;
  return ids.has(id) ? `${key}: ${name} ${id} matches` : `${key}: no match for ${name} ${id}`;
}

function explainOnLimit(decision: AdmitDecision, input: AdmitInput): string[] {
  const { onLimit, queueSize } = input.policy.limits;
  if (decision.kind === 'admit') return [];
  if (decision.kind === 'queue' || decision.reason === 'queue-full') {
    return [`limits.onLimit: queue, ${input.queueLength} of ${queueSize} waiting`];
  }
  return decision.banner === null ? [] : [`limits.onLimit: ${onLimit}`];
}

function describeDecision(decision: AdmitDecision): string {
  if (decision.kind === 'admit') return 'admit';
  if (decision.kind === 'queue') return `queue (${decision.reason})`;
  return `refuse (${decision.reason})${decision.banner === null ? '' : ' with limits.banner'}`;
}
