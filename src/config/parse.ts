import type { ConfigProblem } from '../model/problem.js';

/**
 * The deepest nesting of arrays and objects a service file may have (the schema needs 4). The
 * stages after parsing (merge, specifiers, schema validation, freezing) recurse, so a deeper
 * file is refused here, checked without recursion, rather than overflowing the stack later.
 */
export const maxNestingDepth = 64;

/** Parses a service file's text; a syntax error becomes one problem with line and column. */
export function parseServiceText(
  file: string,
  text: string,
): { ok: true; json: unknown } | { ok: false; problem: ConfigProblem } {
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (error) {
    return { ok: false, problem: { file, pointer: '', message: describeSyntaxError(text, error) } };
  }
  if (measureDepth(json, maxNestingDepth) > maxNestingDepth) {
    const message = `nested deeper than ${maxNestingDepth} levels of arrays and objects`;
    return { ok: false, problem: { file, pointer: '', message } };
  }
  return { ok: true, json };
}

/** The nesting depth of a JSON value (a scalar is 0), without recursion; stops past `limit`. */
export function measureDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (item.value === null || typeof item.value !== 'object') continue;
    const depth = item.depth + 1;
    deepest = Math.max(deepest, depth);
    if (deepest > limit) return deepest;
    for (const inner of Object.values(item.value)) stack.push({ value: inner, depth });
  }
  return deepest;
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
