import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { packagePath } from '../package-root.js';
import type { ConfigProblem, ServiceFile } from './types.js';

let compiled: ValidateFunction | undefined;

/** The service schema, read from the shipped schema/service.schema.json. */
export function loadServiceSchema(): Record<string, unknown> {
  const text = readFileSync(packagePath('schema', 'service.schema.json'), 'utf8');
  return JSON.parse(text) as Record<string, unknown>;
}

function validator(): ValidateFunction {
  if (compiled === undefined) {
    const ajv = new Ajv({
      allErrors: true,
      useDefaults: true,
      strict: true,
      allowUnionTypes: true,
    });
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
  // errors inside propertyNames repeat the wrapper's; keep the wrapper, which names the key
  const problems = (validate.errors ?? [])
    .filter((e) => e.propertyName === undefined)
    .map((e) => describeSchemaError(file, e));
  return { ok: false, problems };
}

function describeSchemaError(file: string, error: ErrorObject): ConfigProblem {
  const at = error.instancePath;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return {
        file,
        pointer: `${at}/${escapePointer(String(params.additionalProperty))}`,
        message: 'unknown key',
      };
    case 'required':
      return {
        file,
        pointer: `${at}/${escapePointer(String(params.missingProperty))}`,
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
    case 'propertyNames':
      return {
        file,
        pointer: `${at}/${escapePointer(String(params.propertyName))}`,
        message: 'is not a valid name',
      };
    default:
      return { file, pointer: at, message: error.message ?? 'is invalid' };
  }
}

export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
