/**
 * The merge rule of templates, instances and drop-ins, with provenance. An overlay is merged onto
 * a base key by key: two objects merge recursively, any other value (arrays included) replaces
 * the old one wholly, and `null` removes the key (so an overlay can never store a null).
 */

/** For JSON pointers of a merged value, the file that supplied the value there. */
export type Provenance = ReadonlyMap<string, string>;

export type JsonObject = Record<string, unknown>;

export interface SourcedValue {
  readonly value: JsonObject;
  /**
   * `''` maps to the file that defines the unit; every object member (at any depth, not inside
   * arrays) maps to the file that set its current value, or for an object, that introduced it.
   * Use findProvenance for pointers inside arrays.
   */
  readonly provenance: Provenance;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 6901: `~` becomes `~0` and `/` becomes `~1`. */
export function appendPointer(pointer: string, token: string | number): string {
  return `${pointer}/${String(token).replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

/** The file that supplied `pointer`, or that of its nearest ancestor that has an entry. */
export function findProvenance(provenance: Provenance, pointer: string): string | undefined {
  for (let at = pointer; ; at = at.slice(0, at.lastIndexOf('/'))) {
    const file = provenance.get(at);
    if (file !== undefined || at === '') return file;
  }
}

/** A base file: its value as it is (nulls included), every member attributed to `file`. */
export function sourceValue(value: JsonObject, file: string): SourcedValue {
  const provenance = new Map([['', file]]);
  return { value: copyObject(value, '', file, provenance, false), provenance };
}

/** Merges `overlay` (from `file`) onto `base`; neither input is modified. */
export function mergeSourced(base: SourcedValue, overlay: JsonObject, file: string): SourcedValue {
  const provenance = new Map(base.provenance);
  const value = mergeObject(base.value, overlay, '', file, provenance);
  return { value, provenance };
}

function mergeObject(
  base: JsonObject,
  overlay: JsonObject,
  pointer: string,
  file: string,
  provenance: Map<string, string>,
): JsonObject {
  const merged = copyObject(base, pointer, null, provenance, false);
  for (const [key, value] of Object.entries(overlay)) {
    const at = appendPointer(pointer, key);
    const old = merged[key];
    if (isJsonObject(value) && isJsonObject(old) && Object.hasOwn(merged, key)) {
      defineKey(merged, key, mergeObject(old, value, at, file, provenance));
      continue;
    }
    forget(provenance, at);
    if (value === null) {
      delete merged[key];
    } else {
      provenance.set(at, file);
      defineKey(merged, key, copyValue(value, at, file, provenance, true));
    }
  }
  return merged;
}

/**
 * A deep copy of a JSON value. When `file` is set, object members are attributed to it; with
 * `dropNulls`, null members of objects are left out (values inside arrays are kept as they are).
 */
function copyValue(
  value: unknown,
  pointer: string,
  file: string | null,
  provenance: Map<string, string>,
  dropNulls: boolean,
): unknown {
  if (Array.isArray(value)) return value.map((item) => copyValue(item, '', null, new Map(), false));
  if (isJsonObject(value)) return copyObject(value, pointer, file, provenance, dropNulls);
  return value;
}

function copyObject(
  value: JsonObject,
  pointer: string,
  file: string | null,
  provenance: Map<string, string>,
  dropNulls: boolean,
): JsonObject {
  const copy: JsonObject = {};
  for (const [key, member] of Object.entries(value)) {
    if (member === null && dropNulls) continue;
    const at = appendPointer(pointer, key);
    if (file !== null) provenance.set(at, file);
    defineKey(copy, key, copyValue(member, at, file, provenance, dropNulls));
  }
  return copy;
}

/** Sets an own property even for the key `__proto__`, which JSON.parse allows. */
function defineKey(target: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function forget(provenance: Map<string, string>, pointer: string): void {
  for (const key of [...provenance.keys()]) {
    if (key === pointer || key.startsWith(`${pointer}/`)) provenance.delete(key);
  }
}
