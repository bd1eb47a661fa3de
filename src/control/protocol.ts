import type { ErrorObject, ValidateFunction } from 'ajv';
import generatedValidator from './generated/request-validator.js';
import { maxTimeoutSec } from './request-schema.js';
import { cleanText } from '../log/clean.js';

/** Every command the control channel understands, in the order the CLI documents them. */
export const controlCommands = [
  'status',
  'stop',
  'start',
  'quiesce',
  'drain',
  'kill',
  'reload',
  'upgrade',
  'metrics',
] as const;
export type ControlCommand = (typeof controlCommands)[number];

/** Chosen by the client; echoed in the reply. A non-negative safe integer. */
export type RequestId = number;

/** What each command's request carries besides its `id` and `cmd`. */
export interface ControlRequestFields {
  readonly status: { readonly service?: string };
  readonly stop: { readonly service: string };
  readonly start: { readonly service: string };
  readonly quiesce: { readonly service: string };
  readonly drain: {
    readonly service: string;
    /** Seconds to wait for running instances before they are terminated; absent: no deadline. */
    readonly timeoutSec?: number;
  };
  readonly kill: {
    readonly service: string;
    /** A connection instance id; absent: every running instance of the service. */
    readonly instance?: string;
    /** Absent: the daemon's default (SIGTERM). */
    readonly signal?: NodeJS.Signals;
  };
  readonly reload: Readonly<Record<never, never>>;
  readonly upgrade: Readonly<Record<never, never>>;
  readonly metrics: Readonly<Record<never, never>>;
}

/** One command's request as a client builds it: everything but the id. */
export type CommandRequest<C extends ControlCommand> = {
  readonly cmd: C;
} & ControlRequestFields[C];

/** One command's request line. */
export type ControlRequestOf<C extends ControlCommand> = {
  readonly id: RequestId;
} & CommandRequest<C>;

/** A request line, one variant per command. */
export type ControlRequest = { [C in ControlCommand]: ControlRequestOf<C> }[ControlCommand];

export type ControlErrorCode =
  | 'bad-request'
  | 'too-large'
  | 'forbidden'
  | 'busy'
  | 'unknown-service'
  | 'unknown-instance'
  | 'timeout'
  | 'failed'
  | 'internal';

export interface ControlErrorBody {
  readonly code: ControlErrorCode;
  readonly message: string;
}

/** `id` is null when the request line carried no usable id (or there was no request at all). */
export type ControlReply =
  | { readonly id: RequestId | null; readonly ok: true; readonly result: unknown }
  | { readonly id: RequestId | null; readonly ok: false; readonly error: ControlErrorBody };

export type ParsedRequest =
  | { readonly ok: true; readonly request: ControlRequest }
  | { readonly ok: false; readonly id: RequestId | null; readonly error: ControlErrorBody };

/** What a request handler throws for an expected refusal; anything else is reported `internal`. */
export class ControlError extends Error {
  readonly code: ControlErrorCode;

  constructor(code: ControlErrorCode, message: string) {
    super(message);
    this.name = 'ControlError';
    this.code = code;
  }
}

export { maxTimeoutSec };
/** How much of a peer's unknown field name or command a refusal repeats. */
const maxEchoed = 64;

/** ajv's standalone code for request-schema.ts, generated at build (scripts/validator.mjs). */
const validateRequest = generatedValidator as ValidateFunction<ControlRequest>;

/** Parses and validates one request line (without its newline). Never throws. */
export function parseRequest(line: string): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return refuse(null, 'bad-request', 'request is not valid JSON');
  }
  if (validateRequest(value)) return { ok: true, request: value };
  const error = validateRequest.errors?.[0];
  const message = error ? describeSchemaError(error, value) : 'invalid request';
  return refuse(readId(value), 'bad-request', message);
}

function refuse(id: RequestId | null, code: ControlErrorCode, message: string): ParsedRequest {
  return { ok: false, id, error: { code, message } };
}

function readId(value: unknown): RequestId | null {
  if (typeof value !== 'object' || value === null || !('id' in value)) return null;
  const candidate = value.id;
  return Number.isSafeInteger(candidate) && (candidate as number) >= 0
    ? (candidate as number)
    : null;
}

function describeSchemaError(error: ErrorObject, value: unknown): string {
  const cmd = (value as { cmd?: unknown }).cmd;
  const where = error.instancePath;
  const field = where.slice(1);
  switch (error.keyword) {
    case 'type':
      return where === '' ? 'request must be a JSON object' : `${where}: ${error.message}`;
    case 'required':
      return `/${String(error.params.missingProperty)}: required` + forCmd(' by', error, cmd);
    case 'additionalProperties':
      return (
        `/${cleanText(String(error.params.additionalProperty), maxEchoed)}: not allowed` +
        forCmd(' for', error, cmd)
      );
    case 'discriminator':
      return `/cmd: unknown command ${cleanText(JSON.stringify(cmd), maxEchoed)} (expected ${controlCommands.join(', ')})`;
    case 'enum':
      return `${where}: must be a signal name such as "SIGTERM"`;
    case 'pattern':
    case 'minLength':
    case 'maxLength':
      return `${where}: must be 1 to 255 printable ASCII characters without spaces`;
    default:
      return field === 'id'
        ? `/id: must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`
        : `${where}: ${error.message}`;
  }
}

function forCmd(word: string, error: ErrorObject, cmd: unknown): string {
  return error.schemaPath.startsWith('#/oneOf/') ? `${word} "${String(cmd)}"` : '';
}

/** Serialises a reply as one line, newline included. */
export function formatReply(reply: ControlReply): string {
  return `${JSON.stringify(reply)}\n`;
}

/** Checks the shape of a reply line from the daemon; null when it is not a reply. */
export function parseReply(line: string): ControlReply | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const reply = value as Record<string, unknown>;
  if (reply.id !== null && !Number.isSafeInteger(reply.id)) return null;
  if (reply.ok === true) return 'result' in reply ? (reply as ControlReply) : null;
  if (reply.ok !== false || typeof reply.error !== 'object' || reply.error === null) return null;
  const error = reply.error as Record<string, unknown>;
  return typeof error.code === 'string' && typeof error.message === 'string'
    ? (reply as ControlReply)
    : null;
}
