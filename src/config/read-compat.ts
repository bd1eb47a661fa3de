/**
 * Reads the foreign-format files of a configuration (the edge around src/compat/): the
 * `xinetd.d/` directory of the conf dir (a directory or a link to one), `inetd.conf`, every
 * `NAME.socket` with its drop-ins and service, and the files named by --xinetd-conf and
 * --inetd-conf. Every file is read as service files are (readRegularFile: non-blocking, regular
 * files only, at most 1 MiB); one that cannot be read is a problem. /etc/services gives the
 * ports of services named without one.
 */
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseInetdConf } from '../compat/inetd-conf.js';
import { mergeResults, type CompatProblem, type CompatResult } from '../compat/model.js';
import { emptyServicesDb, parseServicesText, type ServicesDb } from '../compat/services-db.js';
import { mapSocketUnit, type LoadedUnit } from '../compat/systemd-socket.js';
import { parseUnitText, type UnitEntry } from '../compat/systemd-unit.js';
import { isXinetdIncludedName, parseXinetdText, type XinetdFile } from '../compat/xinetd.js';
import { mapXinetdFiles } from '../compat/xinetd-map.js';
import { describeSystemError } from '../model/errors.js';
import { byCodePoint, maxConfigFileBytes, readRegularFile } from './read-dir.js';

/** Foreign files given on the command line (serve and check keep them for reloads). */
export interface ForeignInputs {
  readonly xinetdConf?: string | undefined;
  readonly inetdConf?: string | undefined;
  /** Default /etc/services. */
  readonly servicesFile?: string | undefined;
}

const maxIncludeDepth = 8;

export function readForeignConfig(dir: string, inputs: ForeignInputs = {}): CompatResult {
  const failures: CompatProblem[] = [];
  const read = (path: string): string | null => readText(path, failures);
  const services = readServicesDb(inputs.servicesFile ?? '/etc/services');
  const results: CompatResult[] = [];
  const xinetd: XinetdFile[] = [];
  if (inputs.xinetdConf !== undefined)
    readXinetd(inputs.xinetdConf, { read, into: xinetd, depth: 0, failures });
  const xinetdDir = join(dir, 'xinetd.d');
  if (isDirectory(xinetdDir)) readXinetdDir(xinetdDir, { read, into: xinetd, depth: 1, failures });
  else if (exists(xinetdDir)) {
    failures.push({
      file: xinetdDir,
      line: 0,
      directive: '',
      message: 'is not a directory (or a link to one)',
    });
  }
  if (xinetd.length > 0) results.push(mapXinetdFiles(xinetd, services));
  for (const path of [join(dir, 'inetd.conf'), inputs.inetdConf]) {
    if (path === undefined || (path === join(dir, 'inetd.conf') && !exists(path))) continue;
    const text = read(path);
    if (text !== null) results.push(parseInetdConf(path, text, services));
  }
  results.push(...readSocketUnits({ dir, only: null }, read, failures));
  return mergeResults([...results, { services: [], problems: failures, skipped: [], notes: [] }]);
}

/**
 * The foreign files `convert` is given: a directory is read as an xinetd includedir, a
 * `NAME.socket` with the units and drop-ins beside it, any other file as an xinetd file when it
 * has xinetd's keywords (`service NAME`, `defaults`, `include`, `includedir`), else as inetd.conf.
 */
export function readForeignFiles(
  paths: readonly string[],
  servicesFile = '/etc/services',
): CompatResult {
  const failures: CompatProblem[] = [];
  const read = (path: string): string | null => readText(path, failures);
  const services = readServicesDb(servicesFile);
  const results: CompatResult[] = [];
  for (const path of paths) {
    const xinetd: XinetdFile[] = [];
    if (isDirectory(path)) readXinetdDir(path, { read, into: xinetd, depth: 1, failures });
    else if (path.endsWith('.socket')) {
      const slash = path.lastIndexOf('/');
      const only = path.slice(slash + 1);
      results.push(
        ...readSocketUnits(
          { dir: slash < 0 ? '.' : path.slice(0, slash) || '/', only },
          read,
          failures,
        ),
      );
    } else {
      const text = read(path);
      if (text === null) continue;
      if (/^\s*(service\s+\S+|defaults|includedir\s|include\s)/m.test(text))
        readXinetd(path, { read, into: xinetd, depth: 0, failures });
      else results.push(parseInetdConf(path, text, services));
    }
    if (xinetd.length > 0) results.push(mapXinetdFiles(xinetd, services));
  }
  return mergeResults([...results, { services: [], problems: failures, skipped: [], notes: [] }]);
}

function readText(path: string, failures: CompatProblem[]): string | null {
  try {
    const result = readRegularFile(path, maxConfigFileBytes);
    if (typeof result !== 'string') return result.text;
    failures.push({ file: path, line: 0, directive: '', message: result });
  } catch (error) {
    failures.push({
      file: path,
      line: 0,
      directive: '',
      message: `unable to read: ${describeSystemError(error)}`,
    });
  }
  return null;
}

function readServicesDb(path: string): ServicesDb {
  try {
    const result = readRegularFile(path, maxConfigFileBytes);
    return typeof result === 'string' ? emptyServicesDb : parseServicesText(result.text);
  } catch {
    return emptyServicesDb;
  }
}

interface XinetdReading {
  readonly read: (path: string) => string | null;
  readonly into: XinetdFile[];
  readonly depth: number;
  readonly failures: CompatProblem[];
}

function readXinetd(path: string, reading: XinetdReading): void {
  const text = reading.read(path);
  if (text === null) return;
  const parsed = parseXinetdText(path, text);
  reading.into.push(parsed);
  for (const include of parsed.includes) {
    const target = isAbsolute(include.path) ? include.path : resolve(include.path);
    if (reading.depth >= maxIncludeDepth) {
      reading.failures.push({
        ...include,
        directive: include.kind,
        message: `nested deeper than ${maxIncludeDepth} includes`,
      });
    } else if (include.kind === 'include')
      readXinetd(target, { ...reading, depth: reading.depth + 1 });
    else readXinetdDir(target, { ...reading, depth: reading.depth + 1 });
  }
}

/** xinetd's includedir: every file whose name has no `.` and does not end in `~`, in byte order. */
function readXinetdDir(path: string, reading: XinetdReading): void {
  let names: string[];
  try {
    names = readdirSync(path).sort(byCodePoint);
  } catch (error) {
    reading.failures.push({
      file: path,
      line: 0,
      directive: '',
      message: `unable to read the directory: ${describeSystemError(error)}`,
    });
    return;
  }
  for (const name of names.filter(isXinetdIncludedName)) readXinetd(join(path, name), reading);
}

/** Every `NAME.socket` of the conf dir with its drop-ins, and the service it names. */
function readSocketUnits(
  where: { dir: string; only: string | null },
  read: (path: string) => string | null,
  failures: CompatProblem[],
): CompatResult[] {
  const { dir, only } = where;
  const names = listNames(dir);
  const loadUnit = (unit: string): LoadedUnit | null => {
    if (!names.includes(unit)) return null;
    const file = join(dir, unit);
    const text = read(file);
    const own = text === null ? { entries: [], problems: [] } : parseUnitText(file, text);
    const dropIns = listNames(join(dir, `${unit}.d`)).filter((n) => n.endsWith('.conf'));
    const parts = dropIns.flatMap((n) => {
      const path = join(dir, `${unit}.d`, n);
      const inner = read(path);
      return inner === null ? [] : [parseUnitText(path, inner)];
    });
    const all = [own, ...parts];
    const problems = all.flatMap((p) => p.problems);
    failures.push(...problems);
    const damaged = problems.length > 0 || text === null || parts.length < dropIns.length;
    const entries = all.flatMap((p) => p.entries);
    return { unit, file, entries, damaged, environmentFiles: readEnvironmentFiles(entries) };
  };
  return names
    .filter((n) => (only === null ? n.endsWith('.socket') && !n.startsWith('.') : n === only))
    .flatMap((unit) => {
      const socket = loadUnit(unit);
      return socket === null ? [] : [mapSocketUnit({ socket, findService: loadUnit })];
    });
}

/** The files EnvironmentFile= names (absolute paths), read safely; null for one that cannot be. */
function readEnvironmentFiles(entries: readonly UnitEntry[]): Map<string, string | null> {
  const files = new Map<string, string | null>();
  for (const entry of entries) {
    const path = entry.value.replace(/^-/, '');
    if (entry.key !== 'EnvironmentFile' || !path.startsWith('/') || files.has(path)) continue;
    try {
      const result = readRegularFile(path, maxConfigFileBytes);
      files.set(path, typeof result === 'string' ? null : result.text);
    } catch {
      files.set(path, null);
    }
  }
  return files;
}

function listNames(dir: string): string[] {
  try {
    return readdirSync(dir).sort(byCodePoint);
  } catch {
    return [];
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Anything at the path, a dangling link included. */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
