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
  return { value: copyObject(value, '', { file, provenance, dropNulls: false }), provenance };
}

/** Merges `overlay` (from `file`) onto `base`; neither input is modified. */
export function mergeSourced(base: SourcedValue, overlay: JsonObject, file: string): SourcedValue {
  const provenance = new Map(base.provenance);
  const value = mergeObject(base.value, overlay, '', { file, provenance });
  return { value, provenance };
}

/** Where copied members come from and where that is written down. */
interface CopyContext {
  /** Object members are attributed to it; null: not attributed. */
  readonly file: string | null;
  readonly provenance: Map<string, string>;
  /** Null members of objects are left out (values inside arrays are kept as they are). */
  readonly dropNulls: boolean;
}

function mergeObject(
  base: JsonObject,
  overlay: JsonObject,
  pointer: string,
  into: { readonly file: string; readonly provenance: Map<string, string> },
): JsonObject {
  const { file, provenance } = into;
  const merged = copyObject(base, pointer, { file: null, provenance, dropNulls: false });
  for (const [key, value] of Object.entries(overlay)) {
    const at = appendPointer(pointer, key);
    const old = merged[key];
    if (isJsonObject(value) && isJsonObject(old) && Object.hasOwn(merged, key)) {
      defineKey(merged, key, mergeObject(old, value, at, into));
      continue;
    }
    forget(provenance, at);
    if (value === null) {
      delete merged[key];
    } else {
      provenance.set(at, file);
      defineKey(merged, key, copyValue(value, at, { file, provenance, dropNulls: true }));
    }
  }
  return merged;
}

/** A deep copy of a JSON value (see CopyContext). */
function copyValue(value: unknown, pointer: string, context: CopyContext): unknown {
  if (Array.isArray(value)) return value.map((item) => copyValue(item, '', plainCopy()));
  if (isJsonObject(value)) return copyObject(value, pointer, context);
  return value;
}

function plainCopy(): CopyContext {
  return { file: null, provenance: new Map(), dropNulls: false };
}

function copyObject(value: JsonObject, pointer: string, context: CopyContext): JsonObject {
  const copy: JsonObject = {};
  for (const [key, member] of Object.entries(value)) {
    if (member === null && context.dropNulls) continue;
    const at = appendPointer(pointer, key);
    if (context.file !== null) context.provenance.set(at, context.file);
    defineKey(copy, key, copyValue(member, at, context));
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
