// The control channel's request schema (one variant per command, told apart by `cmd`), as JSON
// Schema. Read at build time only: scripts/validator.mjs generates ajv's standalone code for it
// (generated/request-validator.js), so the daemon never loads ajv's compiler.
import { constants } from 'node:os';

/** The longest drain deadline a request may ask for (the largest setTimeout delay, in s). */
export const maxTimeoutSec = 2147483;
const signalNames = Object.keys(constants.signals).sort();
const id = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };
const name = { type: 'string', minLength: 1, maxLength: 255, pattern: '^[!-~]+$' };
const optional = {
  service: name,
  instance: name,
  signal: { type: 'string', enum: signalNames },
  timeoutSec: { type: 'number', minimum: 0, maximum: maxTimeoutSec },
};
type Field = keyof typeof optional;

function variant(cmd: string, required: Field[], allowed: Field[] = []): object {
  const fields: Record<string, object> = {};
  for (const field of [...required, ...allowed]) fields[field] = optional[field];
  return {
    type: 'object',
    properties: { id, cmd: { const: cmd }, ...fields },
    required: ['id', 'cmd', ...required],
    additionalProperties: false,
  };
}

export const controlRequestSchema = {
  type: 'object',
  required: ['id', 'cmd'],
  properties: { id, cmd: { type: 'string' } },
  discriminator: { propertyName: 'cmd' },
  oneOf: [
    variant('status', [], ['service']),
    variant('stop', ['service']),
    variant('start', ['service']),
    variant('quiesce', ['service']),
    variant('drain', ['service'], ['timeoutSec']),
    variant('kill', ['service'], ['instance', 'signal']),
    variant('reload', []),
    variant('upgrade', []),
    variant('metrics', []),
  ],
} as const;
