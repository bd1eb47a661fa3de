import {
  checkAccessTime,
  checkPeerAccess,
  describeAccessCheck,
  type AccessCheck,
} from '../access/check-access.js';
import type { AdmitPolicy } from '../config/resolve-policy.js';
import {
  checkLoad,
  checkRate,
  checkSlots,
  describeLimitCheck,
  labelOf,
  type LoadCheck,
  type RateCheck,
  type SlotCheck,
} from '../limits/checks.js';
import type { ConnectionCounts } from '../limits/connection-table.js';
import { decideLimitAction } from '../limits/queue.js';
import { commitRateCharge, type RateCharge, type RateState } from '../limits/rate-state.js';
import type { RefuseReason } from '../limits/reasons.js';
import { sourceKeyOf } from '../limits/source-key.js';
import { findSourceBucket } from '../limits/source-buckets.js';
import type { TokenBucket } from '../limits/token-bucket.js';
import type { Peer } from '../model/peer.js';

/** One step of the decision path, in the order the checks run. */
export type AdmitCheck = AccessCheck | LoadCheck | RateCheck | SlotCheck;

export interface AdmitInput {
  readonly service: string;
  readonly policy: AdmitPolicy;
  readonly peer: Peer;
  /** Live handlers (read only). */
  readonly connections: ConnectionCounts;
  /** The service's buckets (read only: `commitAdmission` stores the charge). */
  readonly rates: RateState;
  /** The daemon-wide cap on handlers across services (null: none). */
  readonly globalMax: number | null;
  /** The 1-minute load average. */
  readonly loadAverage1: number;
  /** ms, the daemon's (monotonic) clock, the same one the buckets were charged with. */
  readonly now: number;
  /** Local minutes since midnight, 0..1439 (see `minuteOfDayAt`). */
  readonly minuteOfDay: number;
  /** Connections of the service waiting in its queue now. */
  readonly queueLength: number;
}

/** The reasons a concurrency cap gives; only these can be queued. */
export type SlotReason = 'instances' | 'per-source';

/** Why a connection is refused, in the words of its `refuse` record. */
export interface Refusal {
  readonly reason: RefuseReason;
  readonly detail: string;
  /** Text to write before closing (onLimit `banner`), or null: close at once. */
  readonly banner: string | null;
}

/** The tokens an admitted or queued connection takes, and the source it counts under. */
interface Charged {
  readonly sourceKey: string;
  readonly charge: RateCharge;
}

export type AdmitDecision =
  | (Charged & { readonly kind: 'admit' })
  | (Charged & { readonly kind: 'queue'; readonly reason: SlotReason; readonly detail: string })
  | (Refusal & { readonly kind: 'refuse'; readonly sourceKey: string });

export interface AdmitTrace {
  readonly sourceKey: string;
  /** The checks that ran, up to and including the one that refused. */
  readonly checks: readonly AdmitCheck[];
  readonly decision: AdmitDecision;
}

/**
 * Decides one connection, without side effects. Order: access (address or Unix credentials:
 * `denied`; then `time`), load, rate (service bucket, then source bucket), then the concurrency
 * caps (service `instances`, source `per-source`, global cap `instances`). Tokens are only
 * charged when the connection is admitted or queued: the decision carries the charged buckets
 * and `commitAdmission` stores them, so a refused connection, whatever the reason, costs none.
 */
export function admitConnection(input: AdmitInput): AdmitDecision {
  if (isOpenPolicy(input.policy, input.globalMax)) return admitOpen(input.peer, input.policy);
  return traceAdmission(input).decision;
}

/**
 * Whether nothing can refuse a connection: no access rule, no cap, no rate, no load limit and no
 * daemon-wide cap. Every check would pass, so the decision is `admitOpen` (the daemon's fast
 * path; traceAdmission still shows each check for `check --peer`).
 */
export function isOpenPolicy(policy: AdmitPolicy, globalMax: number | null): boolean {
  const { access, limits } = policy;
  return (
    access.allow === null &&
    access.deny === null &&
    access.times === null &&
    access.uids === null &&
    access.gids === null &&
    limits.instances === null &&
    limits.perSource === null &&
    limits.rate === null &&
    limits.perSourceRate === null &&
    limits.maxLoad === null &&
    globalMax === null
  );
}

/** No token taken (shared: a charge is only read). */
const noCharge: RateCharge = Object.freeze({ service: null, source: null });

/** The decision for an open policy: admitted, no token charged. */
export function admitOpen(peer: Peer, policy: AdmitPolicy): AdmitDecision {
  const sourceKey = sourceKeyOf(peer, policy.limits.perSourcePrefix6);
  return { kind: 'admit', sourceKey, charge: noCharge };
}

/** `admitConnection` with the path that led to the decision (for `check --peer`). */
export function traceAdmission(input: AdmitInput): AdmitTrace {
  const sourceKey = sourceKeyOf(input.peer, input.policy.limits.perSourcePrefix6);
  const path: DecisionPath = { input, sourceKey, checks: [] };
  const decision = runGates(path) ?? decideSlots(path);
  return { sourceKey, checks: path.checks, decision };
}

/** One decision on its way: the input, the peer's source key, and the checks run so far. */
interface DecisionPath {
  readonly input: AdmitInput;
  readonly sourceKey: string;
  readonly checks: AdmitCheck[];
}

/** The checks before the concurrency caps; the refusal of the first that fails, or null. */
function runGates(path: DecisionPath): AdmitDecision | null {
  const { input, sourceKey, checks } = path;
  const { policy, peer, rates, now } = input;
  const { limits, access } = policy;
  const gates: [RefuseReason, () => AdmitCheck][] = [
    ['denied', () => checkPeerAccess(access, peer)],
    ['time', () => checkAccessTime(access, input.minuteOfDay)],
    ['load', () => checkLoad(limits.maxLoad, input.loadAverage1)],
    ['rate', () => checkRate({ scope: 'service', rate: limits.rate, bucket: rates.service, now })],
    [
      'rate',
      () =>
        checkRate({
          scope: 'source',
          rate: limits.perSourceRate,
          bucket: sourceBucketOf(input, sourceKey),
          now,
        }),
    ],
  ];
  for (const [reason, run] of gates) {
    const check = run();
    checks.push(check);
    if (!check.isAllowed) return refuseWith(path, reason, check);
  }
  return null;
}

/** The concurrency caps, then `limits.onLimit` when one is full. */
function decideSlots(path: DecisionPath): AdmitDecision {
  const { input, sourceKey, checks } = path;
  const { limits } = input.policy;
  const [service, source] = checks.filter((c): c is RateCheck => c.check === 'rate');
  const charge: RateCharge = { service: service?.charged ?? null, source: source?.charged ?? null };
  const full = checkSlots({ ...input, limits, sourceKey }).find((slot) => {
    checks.push(slot);
    return !slot.isAllowed;
  });
  if (full === undefined) return { kind: 'admit', sourceKey, charge };
  const reason: SlotReason = full.scope === 'source' ? 'per-source' : 'instances';
  const action = decideLimitAction(limits, input.queueLength);
  if (action === 'queue') {
    return { kind: 'queue', reason, detail: describeCheckLine(full, input), sourceKey, charge };
  }
  if (action !== 'queue-full') return refuseWith(path, reason, full);
  const waiting = `limits.queueSize: ${input.queueLength} of ${limits.queueSize} waiting (full)`;
  const detail = `${waiting}; ${describeCheckLine(full, input)}`;
  return { kind: 'refuse', reason: 'queue-full', detail, sourceKey, banner: null };
}

/** Reasons that get `limits.banner` when onLimit is `banner`. */
const bannerReasons: ReadonlySet<RefuseReason> = new Set([
  'load',
  'rate',
  'instances',
  'per-source',
]);

function refuseWith(path: DecisionPath, reason: RefuseReason, check: AdmitCheck): AdmitDecision {
  const { input, sourceKey } = path;
  const { onLimit, banner } = input.policy.limits;
  const isBanner = onLimit === 'banner' && bannerReasons.has(reason);
  const detail = describeCheckLine(check, input);
  return { kind: 'refuse', reason, detail, sourceKey, banner: isBanner ? banner : null };
}

function sourceBucketOf(input: AdmitInput, sourceKey: string): TokenBucket | undefined {
  if (input.policy.limits.perSourceRate === null) return undefined;
  return findSourceBucket(input.rates.sources, sourceKey);
}

/** Stores the tokens an admitted or queued connection took; does nothing for a refusal. */
export function commitAdmission(rates: RateState, decision: AdmitDecision): void {
  if (decision.kind !== 'refuse') commitRateCharge(rates, decision.sourceKey, decision.charge);
}

/** One check as `label: text`, the line `check --peer` prints and the `refuse` detail. */
export function describeCheckLine(check: AdmitCheck, input: AdmitInput): string {
  if (check.check === 'load' || check.check === 'rate' || check.check === 'slots') {
    return `${labelOf(check)}: ${describeLimitCheck(check)}`;
  }
  return describeAccessCheck(check, input.policy.access, input.peer);
}
