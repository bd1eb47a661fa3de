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
  if (peer.kind === 'tcp') return `tcp ${normaliseAddress(peer.remoteAddress)}`;
  if (peer.uid === null && peer.gid === null) return 'unix, credentials unknown';
  return `unix uid ${peer.uid ?? '?'} gid ${peer.gid ?? '?'}`;
}

function explainCheck(check: AdmitCheck, input: AdmitInput): string[] {
  const line = describeCheckLine(check, input);
  const { access } = input.policy;
  const { peer } = input;
  if (check.check === 'address' && peer.kind === 'tcp') {
    const address = normaliseAddress(peer.remoteAddress);
    const { allowMatch, denyMatch } = check.verdict;
    return [
      explainList({ key: 'access.allow', list: access.allow, match: allowMatch }, address),
      explainList({ key: 'access.deny', list: access.deny, match: denyMatch }, address),
      line,
    ];
  }
  if (check.check === 'credentials' && peer.kind === 'unix') {
    return [
      explainIds({ key: 'access.uids', name: 'uid', ids: access.uids }, peer.uid),
      explainIds({ key: 'access.gids', name: 'gid', ids: access.gids }, peer.gid),
      line,
    ];
  }
  return [line];
}

/** `access.allow` or `access.deny` and its longest match for the peer (null: none). */
interface ListMatch {
  readonly key: string;
  readonly list: PrefixList | null;
  readonly match: Cidr | null;
}

function explainList({ key, list, match }: ListMatch, address: string): string {
  if (list === null) return `${key}: not set`;
  if (match === null) return `${key}: no match`;
  return `${key}: ${formatCidr(match)} matches ${address} (prefix /${match.prefix})`;
}

/** `access.uids` or `access.gids`. */
interface IdList {
  readonly key: string;
  readonly name: 'uid' | 'gid';
  readonly ids: ReadonlySet<number> | null;
}

function explainIds({ key, name, ids }: IdList, id: number | null): string {
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
