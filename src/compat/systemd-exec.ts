/**
 * systemd's command lines and specifiers (pure). ExecStart= is split into words as systemd
 * does: blanks separate, "double" and 'single' quotes group, C escapes (\n \t \\ \" \' \xHH
 * \NNN) are decoded, `$NAME` and `${NAME}` take values from Environment=, `$$` is `$`. The
 * prefixes of the first word are read: `-` and `:` are honoured (socketeer logs the exit
 * status; `:` turns off specifier and variable expansion), `@` only when the name it gives
 * is the program's own, `+`, `!`, `!!` and `|` are problems.
 */
import type { Maybe } from './values.js';

const fail = <T>(message: string): Maybe<T> => ({ ok: false, message });

const escapes: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
  s: ' ',
  '\\': '\\',
  '"': '"',
  "'": "'",
  ';': ';',
};

/** Splits a line into words, quotes and escapes applied. */
export function splitWords(text: string): Maybe<string[]> {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (quote === null && /\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === quote) quote = null;
    else if (quote === null && (c === '"' || c === "'")) {
      quote = c;
      word ??= '';
    } else if (c === '\\') {
      const decoded = decodeEscape(text, i);
      if (!decoded.ok) return decoded;
      word = (word ?? '') + decoded.value.text;
      i = decoded.value.end;
    } else word = (word ?? '') + c;
  }
  if (quote !== null) return fail(`unterminated ${quote} quote`);
  if (word !== null) words.push(word);
  return { ok: true, value: words };
}

function decodeEscape(text: string, at: number): Maybe<{ text: string; end: number }> {
  const next = text[at + 1];
  if (next === undefined) return fail('a "\\" at the end');
  const simple = escapes[next];
  if (simple !== undefined) return { ok: true, value: { text: simple, end: at + 1 } };
  const hex = /^x([0-9a-fA-F]{2})/.exec(text.slice(at + 1));
  if (hex !== null)
    return {
      ok: true,
      value: { text: String.fromCharCode(parseInt(hex[1] ?? '', 16)), end: at + 3 },
    };
  const octal = /^([0-7]{3})/.exec(text.slice(at + 1));
  if (octal !== null)
    return {
      ok: true,
      value: { text: String.fromCharCode(parseInt(octal[1] ?? '', 8)), end: at + 3 },
    };
  return fail(`unknown escape "\\${next}"`);
}

export interface ExecLine {
  readonly argv: readonly string[];
  /** The prefixes honoured (`-`, `:`, `@`) as written. */
  readonly prefixes: string;
}

/** ExecStart=: prefixes, then words; `expand` is applied to each word unless `:` was given. */
export function parseExecStart(
  text: string,
  expand: (word: string) => Maybe<string[]>,
): Maybe<ExecLine> {
  const prefix = /^[-@:+!|]*/.exec(text.trimStart())?.[0] ?? '';
  const bad = ['+', '!', '|'].find((p) => prefix.includes(p));
  if (bad !== undefined)
    return fail(`the "${bad}" prefix (privileges systemd manages) is not supported`);
  const words = splitWords(text.trimStart().slice(prefix.length));
  if (!words.ok) return words;
  if (words.value.includes(';')) return fail('more than one command (";") is not supported');
  let argv: string[] = words.value;
  if (!prefix.includes(':')) {
    argv = [];
    for (const word of words.value) {
      const expanded = expand(word);
      if (!expanded.ok) return expanded;
      argv.push(...expanded.value);
    }
  }
  if (prefix.includes('@')) {
    const [path = '', argv0 = '', ...rest] = argv;
    if (argv0 !== path && argv0 !== path.split('/').pop())
      return fail(`"@": argv[0] "${argv0}" other than the program is not supported`);
    argv = [path, ...rest];
  }
  if (argv.length === 0) return fail('no command');
  return { ok: true, value: { argv, prefixes: prefix } };
}

/** `$NAME` alone as a word is split on blanks; `${NAME}` is put in place; `$$` is `$`. */
export function substituteVariables(
  word: string,
  env: ReadonlyMap<string, string>,
): Maybe<string[]> {
  const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
  if (whole !== null) {
    const value = env.get(whole[1] ?? '');
    if (value === undefined)
      return fail(`$${whole[1] ?? ''} is not set by Environment= (EnvironmentFile= is not read)`);
    return { ok: true, value: value.split(/\s+/).filter((w) => w !== '') };
  }
  let missing = '';
  const text = word.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
    (all, name: string | undefined) => {
      if (name === undefined) return '$';
      const value = env.get(name);
      if (value === undefined && missing === '') missing = name;
      return value ?? '';
    },
  );
  if (missing !== '')
    return fail(`\${${missing}} is not set by Environment= (EnvironmentFile= is not read)`);
  return { ok: true, value: [text] };
}
