import type { ConfigProblem } from './types.js';

/** Parses a service file's text; a syntax error becomes one problem with line and column. */
export function parseServiceText(
  file: string,
  text: string,
): { ok: true; json: unknown } | { ok: false; problem: ConfigProblem } {
  try {
    return { ok: true, json: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, problem: { file, pointer: '', message: describeSyntaxError(text, error) } };
  }
}

function describeSyntaxError(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const at = /at position (\d+)/.exec(message);
  const reason = message.replace(/ in JSON at position \d+.*$/s, '').replace(/^JSON\.parse: /, '');
  if (at === null) return `invalid JSON: ${reason}`;
  const offset = Number(at[1]);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `invalid JSON: ${reason} (line ${line}, column ${column})`;
}
