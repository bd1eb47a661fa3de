/**
 * The attributes of an xinetd service after `defaults` and the `+=`/`-=` operators are applied:
 * each name with its values and the line that set it last.
 */
import type { Origin } from './model.js';
import type { XinetdAttribute, XinetdBlock } from './xinetd.js';

export interface XinetdValue {
  readonly values: readonly string[];
  readonly origin: Origin;
  /** Set by the defaults block (and not by the service). */
  readonly fromDefaults: boolean;
}

/** What a `defaults {}` block may give every service (xinetd.conf(5)). */
const defaultable = new Set([
  'log_type',
  'log_on_success',
  'log_on_failure',
  'only_from',
  'no_access',
  'passenv',
  'env',
  'instances',
  'per_source',
  'cps',
  'max_load',
  'umask',
  'groups',
  'bind',
  'interface',
  'banner',
  'banner_success',
  'banner_fail',
  'v6only',
  'deny_time',
  'disabled',
  'enabled',
]);

export function isDefaultable(name: string): boolean {
  return defaultable.has(name);
}

export function originOf(attribute: XinetdAttribute): Origin {
  return { file: attribute.file, line: attribute.line, directive: attribute.name };
}

/** The service's attributes: the defaults' first, then the service's own, operators applied. */
export function effectiveAttributes(
  block: XinetdBlock,
  defaults: XinetdBlock | null,
): Map<string, XinetdValue> {
  const result = new Map<string, XinetdValue>();
  for (const attribute of defaults?.attributes ?? []) {
    if (['disabled', 'enabled'].includes(attribute.name)) continue;
    apply(result, attribute, true);
  }
  for (const attribute of block.attributes) apply(result, attribute, false);
  return result;
}

function apply(
  into: Map<string, XinetdValue>,
  attribute: XinetdAttribute,
  fromDefaults: boolean,
): void {
  const old = into.get(attribute.name)?.values ?? [];
  const origin = originOf(attribute);
  if (attribute.op === '=')
    into.set(attribute.name, { values: attribute.values, origin, fromDefaults });
  else if (attribute.op === '+=') {
    into.set(attribute.name, { values: [...old, ...attribute.values], origin, fromDefaults });
  } else {
    const values = old.filter((value) => !attribute.values.includes(value));
    into.set(attribute.name, { values, origin, fromDefaults });
  }
}

/** `disabled` and `enabled` of the defaults block: the service names (or ids) they list. */
export function defaultsSwitches(defaults: XinetdBlock | null): {
  disabled: Map<string, Origin>;
  enabled: Map<string, Origin> | null;
} {
  const disabled = new Map<string, Origin>();
  let enabled: Map<string, Origin> | null = null;
  for (const attribute of defaults?.attributes ?? []) {
    if (attribute.name === 'disabled')
      for (const v of attribute.values) disabled.set(v, originOf(attribute));
    if (attribute.name === 'enabled') {
      enabled ??= new Map();
      for (const v of attribute.values) enabled.set(v, originOf(attribute));
    }
  }
  return { disabled, enabled };
}
