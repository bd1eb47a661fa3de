/** Every reason a connection is refused, as the `refuse` log record and the counters name it. */
export const refuseReasons = [
  'denied',
  'time',
  'load',
  'rate',
  'instances',
  'per-source',
  'queue-full',
  'queue-timeout',
  'queue-gone',
  'proxy-header',
  'source-port',
  'send-queue',
] as const;

export type RefuseReason = (typeof refuseReasons)[number];

/** One counter per reason, all zero. */
export function createRefuseCounters(): Record<RefuseReason, number> {
  return Object.fromEntries(refuseReasons.map((reason) => [reason, 0])) as Record<
    RefuseReason,
    number
  >;
}
