// Builds the man pages socketeer(8) and socketeer.conf(5) from README.md's sections, so that
// they say what the README says (run by `npm run build:man` and at prepack; the package ships
// man/ and package.json's "man" names both pages).
//   node scripts/man.mjs [OUTDIR]   writes OUTDIR/man8/socketeer.8, OUTDIR/man5/socketeer.conf.5
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** What each page is made of: README sections (## headings, with their subsections). */
export const pages = [
  {
    file: 'man8/socketeer.8',
    name: 'socketeer',
    section: 8,
    summary: 'inetd-style per-connection super-server',
    sections: [
      'Commands',
      'Control socket and lifecycle',
      'Spawners',
      'Logs',
      'Signals',
      'Exit codes',
      'Running under systemd',
      'Metrics',
      'Install',
      'Security',
    ],
    seeAlso: 'socketeer.conf(5), systemd.socket(5), systemd-analyze(1), journalctl(1), xinetd(8)',
  },
  {
    file: 'man5/socketeer.conf.5',
    name: 'socketeer.conf',
    section: 5,
    summary: 'socketeer service files (conf.d/*.json)',
    sections: [
      'Service files',
      'Limits and access',
      'Templates, instances and drop-ins',
      'Handler contract',
    ],
    seeAlso: 'socketeer(8), systemd.socket(5), systemd.unit(5), inetd.conf(5), xinetd.conf(5)',
  },
];

/** The README split into `## ` sections (headings inside code fences do not count). */
export function readmeSections(readme) {
  const sections = new Map();
  let title = '';
  let lines = [];
  let fenced = false;
  for (const line of readme.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (!fenced && line.startsWith('## ')) {
      sections.set(title, lines);
      title = line.slice(3).trim();
      lines = [];
    } else lines.push(line);
  }
  sections.set(title, lines);
  return sections;
}

/** The README's opening paragraphs: after its first code block, before the first section. */
function description(sections) {
  const intro = sections.get('') ?? [];
  const closing = intro.lastIndexOf('```');
  return intro.slice(closing + 1);
}

/** Inline markdown to roff: code and bold in bold, links as their text, roff escapes. */
export function inline(text) {
  const escape = (s) => s.replace(/\\/g, '\\e');
  let out = '';
  const parts = text.replace(/\[([^\]]+)\]\([^)]*\)/g, '$1').split(/(`[^`]*`)/);
  for (const part of parts) {
    if (part.startsWith('`') && part.endsWith('`') && part.length >= 2) {
      out += `\\fB${escape(part.slice(1, -1)).replace(/-/g, '\\-')}\\fR`;
    } else {
      out += escape(part).replace(/\*\*([^*]+)\*\*/g, '\\fB$1\\fR');
    }
  }
  return out;
}

/** A roff line must not start with `.` or `'` (a request): `\&` before. */
function line(text) {
  return /^[.']/.test(text) ? `\\&${text}` : text;
}

/** Table cells, `\|` inside a cell kept as a bar. */
function cells(row) {
  return row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

/** The markdown of one section as roff: paragraphs, lists, tables, code, subheadings. */
export function toRoff(lines) {
  const out = [];
  let paragraph = [];
  let table = null;
  let fence = null;
  const flush = () => {
    if (paragraph.length > 0) out.push(line(inline(paragraph.join(' '))));
    paragraph = [];
  };
  const flushTable = () => {
    if (table === null) return;
    for (const row of table.slice(2)) {
      const [head = '', ...rest] = cells(row);
      out.push('.TP', line(inline(head)), line(inline(rest.filter(Boolean).join(' \\(em '))));
    }
    table = null;
  };
  for (const raw of lines) {
    if (fence !== null) {
      if (raw.startsWith('```')) {
        out.push(...fence.map((l) => line(l.replace(/\\/g, '\\e'))), '.fi', '.RE');
        fence = null;
      } else fence.push(raw);
      continue;
    }
    if (raw.startsWith('```')) {
      flush();
      flushTable();
      out.push('.PP', '.RS 4', '.nf');
      fence = [];
      continue;
    }
    if (raw.startsWith('|')) {
      flush();
      table ??= [];
      table.push(raw);
      continue;
    }
    flushTable();
    const heading = /^#{3,6} (.*)$/.exec(raw);
    const item = /^(\s*)(?:[-*]|(\d+)\.) (.*)$/.exec(raw);
    if (heading !== null) {
      flush();
      out.push(`.SS "${inline(heading[1]).replace(/"/g, '')}"`);
    } else if (raw.trim() === '') {
      flush();
      out.push('.PP');
    } else if (item !== null) {
      flush();
      out.push(item[2] === undefined ? '.IP \\(bu 2' : `.IP ${item[2]}. 4`);
      paragraph.push(item[3]);
    } else paragraph.push(raw.trim());
  }
  flush();
  flushTable();
  // no empty paragraphs: a .PP right after another, or after a heading
  return out.filter((l, i) => !(l === '.PP' && /^\.(PP|SS|SH|IP|TP)/.test(out[i + 1] ?? '.PP')));
}

/** One page's roff text (pure). */
export function renderPage(page, readme, version) {
  const sections = readmeSections(readme);
  const title = page.name.toUpperCase();
  const out = [
    `.\\" Generated from README.md by scripts/man.mjs: edit the README, not this file.`,
    `.TH "${title}" "${page.section}" "" "socketeer ${version}" "socketeer"`,
    // left-aligned, no hyphenation: commands, keys and paths stay whole and searchable
    '.ad l',
    '.nh',
    '.SH NAME',
    `${page.name} \\- ${page.summary}`,
    '.SH DESCRIPTION',
    ...toRoff(page.section === 8 ? description(sections) : (sections.get('Service files') ?? [])),
  ];
  for (const name of page.sections) {
    if (page.section === 5 && name === 'Service files') continue;
    const body = sections.get(name);
    if (body === undefined) throw new Error(`README.md has no section "## ${name}"`);
    out.push(`.SH "${inline(name).toUpperCase().replace(/"/g, '')}"`, ...toRoff(body));
  }
  out.push('.SH "SEE ALSO"', page.seeAlso, '');
  return out.join('\n');
}

function main() {
  const outDir = process.argv[2] ?? join(root, 'man');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  for (const page of pages) {
    const file = join(outDir, page.file);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, renderPage(page, readme, version));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
