/**
 * xinetd's configuration syntax (pure): `service NAME { attr = values }` blocks, `defaults {}`,
 * `include FILE` and `includedir DIR`, the `=`, `+=` and `-=` operators, `#` comment lines.
 * Values are split on blanks, as xinetd does (no quoting). The caller reads included files,
 * skipping in an `includedir` the names xinetd skips (isXinetdIncludedName).
 */
import type { CompatProblem, Place } from './model.js';

export type XinetdOperator = '=' | '+=' | '-=';

export interface XinetdAttribute extends Place {
  readonly name: string;
  readonly op: XinetdOperator;
  readonly values: readonly string[];
}

export interface XinetdBlock extends Place {
  readonly kind: 'service' | 'defaults';
  /** The service name (`defaults` for the defaults block). */
  readonly name: string;
  readonly attributes: readonly XinetdAttribute[];
  /** A line of it was malformed (a problem says which). */
  readonly damaged: boolean;
}

export interface XinetdInclude extends Place {
  readonly kind: 'include' | 'includedir';
  readonly path: string;
}

export interface XinetdFile {
  readonly blocks: readonly XinetdBlock[];
  readonly includes: readonly XinetdInclude[];
  readonly problems: readonly CompatProblem[];
}

/** xinetd's includedir skips names that contain a `.` or end in `~` (backups, dpkg files). */
export function isXinetdIncludedName(name: string): boolean {
  return !name.includes('.') && !name.endsWith('~');
}

interface Open {
  kind: 'service' | 'defaults';
  name: string;
  line: number;
  braced: boolean;
  attributes: XinetdAttribute[];
  damaged: boolean;
}

// (named, so that no brace inside a string opens or closes a block to a reader counting them)
const blockOpen = '{';
const blockClose = '}';

interface ParseState {
  readonly file: string;
  readonly blocks: XinetdBlock[];
  readonly includes: XinetdInclude[];
  readonly problems: CompatProblem[];
  open: Open | null;
}

export function parseXinetdText(file: string, text: string): XinetdFile {
  const state: ParseState = { file, blocks: [], includes: [], problems: [], open: null };
  text.split('\n').forEach((raw, index) => {
    const content = raw.trim();
    if (content !== '' && !content.startsWith('#')) parseLine(state, content, index + 1);
  });
  const last = state.open;
  if (last !== null) {
    const message = last.braced
      ? `no closing "${blockClose}" before the end of the file`
      : `no "${blockOpen}" before the end of the file`;
    state.problems.push({ file, line: last.line, directive: last.kind, message });
  }
  return { blocks: state.blocks, includes: state.includes, problems: state.problems };
}

function parseLine(state: ParseState, content: string, line: number): void {
  const { file, open } = state;
  if (open === null) {
    state.open = parseTopLevel(content, {
      file,
      line,
      includes: state.includes,
      problems: state.problems,
    });
  } else if (!open.braced) {
    if (content === blockOpen) open.braced = true;
    else {
      const message = `expected "${blockOpen}" on the line after`;
      state.problems.push({ file, line, directive: open.kind, message });
      state.open = null;
    }
  } else if (content === blockClose) {
    const { kind, name, attributes, damaged } = open;
    state.blocks.push({ kind, name, file, line: open.line, attributes, damaged });
    state.open = null;
  } else {
    const attribute = parseAttribute(content, { file, line });
    const directive = content.split(/[\s=+-]/)[0] ?? '';
    if (typeof attribute !== 'string') open.attributes.push(attribute);
    else {
      state.problems.push({ file, line, directive, message: attribute });
      open.damaged = true;
    }
  }
}

function parseTopLevel(
  content: string,
  at: { file: string; line: number; includes: XinetdInclude[]; problems: CompatProblem[] },
): Open | null {
  const { file, line } = at;
  const words = content.split(/\s+/);
  const [keyword = '', argument, ...rest] = words;
  const braced = rest.length === 1 && rest[0] === blockOpen;
  const extra = rest.length > 0 && !braced;
  if (
    keyword === 'defaults' &&
    (argument === undefined || (argument === blockOpen && rest.length === 0))
  ) {
    return {
      kind: 'defaults',
      name: 'defaults',
      line,
      braced: argument === blockOpen,
      attributes: [],
      damaged: false,
    };
  }
  if (keyword === 'service' && argument !== undefined && argument !== blockOpen && !extra) {
    return { kind: 'service', name: argument, line, braced, attributes: [], damaged: false };
  }
  if (
    (keyword === 'include' || keyword === 'includedir') &&
    argument !== undefined &&
    rest.length === 0
  ) {
    at.includes.push({ kind: keyword, path: argument, file, line });
    return null;
  }
  const known = ['defaults', 'service', 'include', 'includedir'].includes(keyword);
  const message = known
    ? `malformed: expected "${keyword === 'defaults' ? 'defaults' : `${keyword} ${keyword === 'service' ? 'NAME' : 'PATH'}`}"`
    : 'expected "service NAME", "defaults", "include" or "includedir" outside a block';
  at.problems.push({ file, line, directive: keyword, message });
  return null;
}

function parseAttribute(
  content: string,
  at: { file: string; line: number },
): XinetdAttribute | string {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)\s*(\+=|-=|=)\s*(.*)$/.exec(content);
  if (match === null) return 'expected "attribute = value", "+=" or "-="';
  const [, name = '', op, rest = ''] = match;
  const values = rest.trim() === '' ? [] : rest.trim().split(/\s+/);
  return { name, op: op as XinetdOperator, values, file: at.file, line: at.line };
}
