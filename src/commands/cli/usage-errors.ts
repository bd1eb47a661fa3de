// yargs' own usage messages, made readable: no internals (the camelCase twin yargs adds for
// each dashed flag), and a "did you mean" for a mistyped flag or command.
import { closest } from '../../model/closest.js';

const camelOf = (dashed: string): string =>
  dashed.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** What was known when yargs refused the command line. */
export interface UsageContext {
  /** The command's options (dashed). */
  readonly flags: readonly string[];
  readonly commands: readonly string[];
  /** The command line as given (tells a flag from a word). */
  readonly argv: readonly string[];
}

/**
 * yargs' message for unknown arguments, rewritten (pure): `Unknown arguments: config-dri,
 * configDri` becomes `unknown argument: --config-dri (did you mean --config-dir?)`, and an unknown
 * word `stauts` gets `(did you mean status?)`. Other messages pass on, first letter lowered.
 */
export function explainUsageError(message: string, context: UsageContext): string {
  const m = /^Unknown arguments?: (.*)$/.exec(message);
  if (m === null) return message.charAt(0).toLowerCase() + message.slice(1);
  const words = (m[1] ?? '').split(', ');
  const shown = words.filter((w) => !words.some((other) => other !== w && camelOf(other) === w));
  const isFlag = (word: string): boolean =>
    context.argv.some((a) => a === `-${word}` || a.startsWith(`--${word}`));
  const parts = shown.map((word) => {
    if (!isFlag(word)) {
      const near = closest(word, context.commands);
      return near === null ? word : `${word} (did you mean ${near}?)`;
    }
    const flag = word.length === 1 ? `-${word}` : `--${word}`;
    const near = closest(word, context.flags);
    return near === null ? flag : `${flag} (did you mean --${near}?)`;
  });
  return `unknown argument${parts.length > 1 ? 's' : ''}: ${parts.join(', ')}`;
}
