import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { packagePath } from '../model/package-root.js';
import { appendPointer } from './merge.js';
import type { ServiceFile } from './types.js';
import type { ConfigProblem } from '../model/problem.js';
import { closest } from '../model/closest.js';

let compiled: ValidateFunction | undefined;

/** The service schema, read from the shipped schema/service.schema.json. */
export function loadServiceSchema(): Record<string, unknown> {
  return readSchema('service.schema.json');
}

/**
 * The id under which schema/limits.schema.json is registered: the service schema has no `$id`,
 * so its `$ref: "limits.schema.json#/..."` resolves to this for ajv, and to the file next to it
 * for an editor that loaded the service schema from disk.
 */
export const limitsSchemaId = 'limits.schema.json';

/** The `limits` and `access` definitions, read from the shipped schema/limits.schema.json. */
export function loadLimitsSchema(): Record<string, unknown> {
  return readSchema(limitsSchemaId);
}

function readSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(packagePath('schema', name), 'utf8')) as Record<string, unknown>;
}

function validator(): ValidateFunction {
  if (compiled === undefined) {
    const ajv = new Ajv({
      allErrors: true,
      useDefaults: true,
      strict: true,
      allowUnionTypes: true,
      verbose: true,
    });
    ajv.addSchema(loadLimitsSchema(), limitsSchemaId);
    compiled = ajv.compile(loadServiceSchema());
  }
  return compiled;
}

/**
 * Validates one parsed service file against the schema, filling in defaults (on a copy).
 * Returns the defaulted file or every problem found, each with its JSON pointer.
 */
export function validateServiceFile(
  file: string,
  json: unknown,
): { ok: true; value: ServiceFile } | { ok: false; problems: ConfigProblem[] } {
  const copy: unknown = structuredClone(json);
  const validate = validator();
  if (validate(copy)) return { ok: true, value: copy as ServiceFile };
  // errors inside propertyNames repeat the wrapper's; keep the wrapper, which names the key;
  // the `required` of each branch of the root oneOf (exec, proxy or builtin) is said by the oneOf's own
  const errors = (validate.errors ?? []).filter(
    (e) => e.propertyName === undefined && !e.schemaPath.startsWith('#/oneOf/'),
  );
  const conditions = describeConditions(errors);
  const problems = errors
    .filter((e) => e.keyword !== 'if')
    .map((e) => withCondition(describeSchemaError(file, e), e, conditions));
  return { ok: false, problems };
}

/**
 * An `if`/`then` failure comes as two errors: `if` ("must match then") and the failing keyword
 * inside `then`. Only the second is reported, with the condition in words, e.g. `is required
 * when onLimit is "banner"`. Keyed by instance path and the schema path of the `if`/`then` pair.
 */
function describeConditions(errors: readonly ErrorObject[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const error of errors) {
    if (error.keyword !== 'if' || !error.schemaPath.endsWith('/if')) continue;
    const parent = error.schemaPath.slice(0, -'/if'.length);
    const properties = (error.schema as { properties?: Record<string, { const?: unknown }> })
      .properties;
    const words = Object.entries(properties ?? {})
      .filter(([, sub]) => sub.const !== undefined)
      .map(([key, sub]) => `${key} is ${JSON.stringify(sub.const)}`);
    if (words.length > 0) out.set(`${error.instancePath} ${parent}`, words.join(' and '));
  }
  return out;
}

function withCondition(
  problem: ConfigProblem,
  error: ErrorObject,
  conditions: ReadonlyMap<string, string>,
): ConfigProblem {
  const at = error.schemaPath.lastIndexOf('/then/');
  if (at === -1) return problem;
  const condition = conditions.get(`${error.instancePath} ${error.schemaPath.slice(0, at)}`);
  return condition === undefined
    ? problem
    : { ...problem, message: `${problem.message} when ${condition}` };
}

function describeSchemaError(file: string, error: ErrorObject): ConfigProblem {
  const at = error.instancePath;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const known = Object.keys((error.parentSchema as { properties?: object }).properties ?? {});
      const near = closest(key, known);
      const message = near === null ? 'unknown key' : `unknown key (did you mean ${near}?)`;
      return { file, pointer: appendPointer(at, key), message };
    }
    case 'required':
      return {
        file,
        pointer: appendPointer(at, String(params.missingProperty)),
        message: 'is required',
      };
    case 'type':
      return {
        file,
        pointer: at,
        message: `must be ${String(params.type).split(',').join(' or ')}`,
      };
    case 'enum':
      return {
        file,
        pointer: at,
        message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'pattern':
      return { file, pointer: at, message: `must match ${String(params.pattern)}` };
    case 'oneOf':
      return describeOneOf(file, error);
    case 'propertyNames':
      return {
        file,
        pointer: appendPointer(at, String(params.propertyName)),
        message: 'is not a valid name',
      };
    default:
      return { file, pointer: at, message: error.message ?? 'is invalid' };
  }
}

/**
 * Every string and object key of a service holding a NUL byte, each a problem at its pointer:
 * no path, argument, account name or environment entry can hold one, so such a value would pass
 * the schema and fail later, at bind or on every connection. Iterative (no stack to overflow).
 */
export function findNulBytes(file: string, json: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const message =
    'contains a NUL byte, which no path, argument, name or environment entry can hold';
  const stack: { value: unknown; pointer: string }[] = [{ value: json, pointer: '' }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value, pointer } = item;
    if (typeof value === 'string' && value.includes('\0'))
      problems.push({ file, pointer, message });
    if (value === null || typeof value !== 'object') continue;
    const entries = Object.entries(value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, inner] = entries[i] as [string, unknown];
      const at = appendPointer(pointer, key);
      if (!Array.isArray(value) && key.includes('\0'))
        problems.push({ file, pointer: at, message });
      stack.push({ value: inner, pointer: at });
    }
  }
  return problems;
}

/** The root `oneOf`: a service has exactly one of `exec`, `proxy` and `builtin`. */
function describeOneOf(file: string, error: ErrorObject): ConfigProblem {
  const { passingSchemas } = error.params as { passingSchemas: unknown };
  if (error.instancePath !== '' || error.schemaPath !== '#/oneOf')
    return { file, pointer: error.instancePath, message: error.message ?? 'is invalid' };
  if (!Array.isArray(passingSchemas))
    return { file, pointer: '/exec', message: 'is required (or proxy or builtin instead)' };
  const given = (passingSchemas as number[]).map((i) => oneOfKeys[i] ?? 'exec');
  const [first, second] = given;
  return { file, pointer: `/${second}`, message: `cannot be given with ${first}: use one of them` };
}

/** The key each branch of the root `oneOf` requires, in schema order. */
const oneOfKeys = ['exec', 'proxy', 'builtin'] as const;
