/**
 * systemd unit files (pure): `[Section]` headers, `Key=Value` lines, `#`/`;` comment lines, a
 * line ending in `\` continued on the next (the backslash becomes a space; comment lines in
 * between are skipped), drop-ins applied after the unit in order. In a drop-in, an empty
 * assignment to a list setting (ListenStream=, ExecStart=, Environment=, ...) clears it.
 */
import type { CompatProblem, Origin, Place } from './model.js';

export interface UnitEntry extends Place {
  readonly section: string;
  readonly key: string;
  readonly value: string;
}

export function entryOrigin(entry: UnitEntry): Origin {
  return { file: entry.file, line: entry.line, directive: entry.key };
}

export interface ParsedUnit {
  readonly entries: readonly UnitEntry[];
  readonly problems: readonly CompatProblem[];
}

export function parseUnitText(file: string, text: string): ParsedUnit {
  const entries: UnitEntry[] = [];
  const problems: CompatProblem[] = [];
  let section = '';
  let pending: { key: string; value: string; line: number } | null = null;
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const content = raw.trim();
    if (pending === null && (content === '' || content.startsWith('#') || content.startsWith(';')))
      return;
    if (pending !== null) {
      if (content.startsWith('#') || content.startsWith(';')) return;
      const continued = content.endsWith('\\');
      pending.value += ` ${continued ? content.slice(0, -1) : content}`;
      if (!continued) pending = finish(pending, { section, file, entries });
      return;
    }
    const header = /^\[([^\]]+)\]$/.exec(content);
    if (header !== null) {
      section = header[1] ?? '';
      return;
    }
    const assignment = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(content);
    if (assignment === null || section === '') {
      const message =
        section === '' ? 'an assignment before any [Section]' : 'expected "Key=Value"';
      problems.push({ file, line, directive: content.split(/[\s=]/)[0] ?? '', message });
      return;
    }
    const value = assignment[2] ?? '';
    const started = {
      key: assignment[1] ?? '',
      value: value.endsWith('\\') ? value.slice(0, -1) : value,
      line,
    };
    pending = value.endsWith('\\') ? started : finish(started, { section, file, entries });
  });
  const open = pending as { key: string; line: number } | null;
  if (open !== null)
    problems.push({
      file,
      line: open.line,
      directive: open.key,
      message: 'continued with "\\" past the end of the file',
    });
  return { entries, problems };
}

function finish(
  pending: { key: string; value: string; line: number },
  into: { section: string; file: string; entries: UnitEntry[] },
): null {
  const { key, line } = pending;
  into.entries.push({
    section: into.section,
    key,
    value: pending.value.trim(),
    file: into.file,
    line,
  });
  return null;
}

/** Settings that are lists: each assignment adds, an empty one clears. */
const listKeys = new Set([
  'ListenStream',
  'ListenDatagram',
  'ListenSequentialPacket',
  'ListenFIFO',
  'ExecStart',
  'Environment',
  'PassEnvironment',
  'SupplementaryGroups',
  'Documentation',
  'After',
  'Before',
  'Wants',
  'Requires',
  'WantedBy',
  'RequiredBy',
  'Also',
  'Alias',
  'EnvironmentFile',
]);

export function isListKey(key: string): boolean {
  return listKeys.has(key);
}

/**
 * One section's settings, in first-seen order: a list key keeps every entry since its last
 * empty assignment; any other key its last assignment (an empty one unsets it).
 */
export function collectSection(
  entries: readonly UnitEntry[],
  section: string,
): Map<string, UnitEntry[]> {
  const settings = new Map<string, UnitEntry[]>();
  for (const entry of entries) {
    if (entry.section !== section) continue;
    if (entry.value === '') settings.set(entry.key, []);
    else if (isListKey(entry.key))
      settings.set(entry.key, [...(settings.get(entry.key) ?? []), entry]);
    else settings.set(entry.key, [entry]);
  }
  for (const [key, list] of settings) if (list.length === 0) settings.delete(key);
  return settings;
}
