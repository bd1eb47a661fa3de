import {
  escapeName,
  escapePath,
  extractInstance,
  instantiateTemplate,
  mangleName,
  parseTemplateName,
  unescapeName,
  unescapePath,
  type Outcome,
  type TemplateName,
} from '../config/escape.js';
import { ExitCode } from '../model/errors.js';

export interface EscapeArgs {
  readonly strings: readonly string[];
  readonly path: boolean;
  readonly unescape: boolean;
  /** `NAME@`, `NAME@.json` or a systemd template such as `NAME@.service`. */
  readonly template?: string | undefined;
  readonly mangle?: boolean | undefined;
}

/** One converted string, and a warning for stderr when the conversion is not reversible. */
interface Converted {
  readonly value: string;
  readonly warning: string | null;
}

/**
 * `socketeer escape`: what `systemd-escape` prints for the same arguments, all results on one line
 * separated by spaces. Unlike systemd-escape, nothing reaches stdout when one string fails.
 */
export function runEscape(
  args: EscapeArgs,
  out: (line: string) => void,
  err: (line: string) => void,
): number {
  const convert = chooseConversion(args);
  if (!convert.ok) {
    err(convert.error);
    return ExitCode.permanent;
  }
  const values: string[] = [];
  for (const text of args.strings) {
    const converted = convert.value(text);
    if (!converted.ok) {
      err(converted.error);
      return ExitCode.permanent;
    }
    if (converted.value.warning !== null) err(converted.value.warning);
    values.push(converted.value.value);
  }
  out(values.join(' '));
  return ExitCode.ok;
}

type Conversion = (text: string) => Outcome<Converted>;

function findUsageError(args: EscapeArgs): string | null {
  if (args.strings.length === 0) return 'Not enough arguments.';
  if (args.mangle !== true) return null;
  if (args.unescape) return '--unescape and --mangle may not be combined.';
  if (args.path) return '--path may not be combined with --mangle.';
  if (args.template !== undefined) return '--template= is not compatible with --mangle.';
  return null;
}

function chooseConversion(args: EscapeArgs): Outcome<Conversion> {
  const isMangle = args.mangle === true;
  const usageError = findUsageError(args);
  if (usageError !== null) return { ok: false, error: usageError };
  if (isMangle) return { ok: true, value: (text) => withoutWarning(mangleName(text), 'mangle') };
  const template = args.template === undefined ? null : parseTemplateName(args.template);
  if (template !== null && !template.ok) {
    return { ok: false, error: `${template.error} Use NAME@ or NAME@.json.` };
  }
  const convert = args.unescape ? unescapeOne : escapeOne;
  return { ok: true, value: (text) => convert(text, args.path, template?.value ?? null) };
}

function escapeOne(
  text: string,
  isPath: boolean,
  template: TemplateName | null,
): Outcome<Converted> {
  const escaped = isPath ? escapePath(text) : { ok: true as const, value: plain(escapeName(text)) };
  if (!escaped.ok || template === null) return escaped;
  const name = instantiateTemplate(template, escaped.value.value);
  if (!name.ok) return { ok: false, error: `Failed to replace instance: ${name.error}` };
  return { ok: true, value: { value: name.value, warning: escaped.value.warning } };
}

function unescapeOne(
  text: string,
  isPath: boolean,
  template: TemplateName | null,
): Outcome<Converted> {
  const instance =
    template === null ? { ok: true as const, value: text } : extractInstance(text, template);
  if (!instance.ok) return { ok: false, error: `Failed to extract instance: ${instance.error}` };
  const unescaped = isPath ? unescapePath(instance.value) : unescapeName(instance.value);
  if (!unescaped.ok) {
    return {
      ok: false,
      error: `Failed to unescape string '${instance.value}': ${unescaped.error}`,
    };
  }
  // systemd-escape prints a C string: a decoded NUL ends it.
  return { ok: true, value: plain(unescaped.value.split('\0')[0] as string) };
}

const plain = (value: string): Converted => ({ value, warning: null });

function withoutWarning(result: Outcome<string>, verb: string): Outcome<Converted> {
  if (!result.ok) return { ok: false, error: `Failed to ${verb} name: ${result.error}` };
  return { ok: true, value: plain(result.value) };
}
