import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  statSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { FatalError, ExitCode, describeSystemError } from '../model/errors.js';

export interface ConfigFileText {
  /** Path relative to the config dir, e.g. `echo.json` or `echo.json.d/10-port.json`. */
  readonly relPath: string;
  /** The path as messages show it (config dir joined with relPath). */
  readonly path: string;
  /** The content (read through a link); null when the file could not be read. */
  readonly text: string | null;
  /** Why the file could not be read (e.g. a dangling link), as messages show it; else null. */
  readonly readError: string | null;
  /** Link target when the file is a symbolic link, as readlink(2) gives it. */
  readonly symlinkTo: string | null;
  /** Read by a root daemon: who other than root can write the file (it decides what runs). */
  readonly writableBy?: string | null;
}

/** The most bytes read from one configuration file; a larger file is a problem. */
export const maxConfigFileBytes = 1024 * 1024;

/** Whether a directory entry is a service file: `*.json`, not a dotfile, not a backup. */
export function isServiceFileName(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith('.') && name.length > '.json'.length;
}

/** Whether a directory entry names a drop-in directory: `NAME.json.d`, not a dotfile. */
function isDropInDirName(name: string): boolean {
  return name.endsWith('.json.d') && !name.startsWith('.') && name.length > '.json.d'.length;
}

/**
 * Reads every service file of a config dir, and the `*.json` files of its `NAME.json.d/` drop-in
 * directories (templates' `NAME@.json.d/` and instances' `NAME@ARG.json.d/` included), in lexical
 * order, following symbolic links. A missing or unreadable config dir is fatal (100); a file that
 * cannot be read (not a regular file, over maxConfigFileBytes, no permission) or a drop-in
 * directory that cannot be listed is reported in its ConfigFileText, to become a problem with
 * the others. Nothing here can block: files are opened non-blocking and checked with fstat.
 */
export function readConfigDir(dir: string): ConfigFileText[] {
  const files: ConfigFileText[] = [];
  for (const name of listConfigDir(dir)) {
    const path = join(dir, name);
    if (isServiceFileName(name)) files.push(readOne(dir, name));
    else if (isDropInDirName(name) && isDirectory(path)) {
      let inner: string[];
      try {
        inner = listDir(path);
      } catch (error) {
        const readError = `unable to read the drop-in directory: ${describeSystemError(error)}`;
        files.push({ relPath: name, path, text: null, readError, symlinkTo: null });
        continue;
      }
      for (const entry of inner) {
        if (isServiceFileName(entry)) files.push(readOne(dir, `${name}/${entry}`));
      }
    }
  }
  return files;
}

function listConfigDir(dir: string): string[] {
  try {
    return listDir(dir);
  } catch (error) {
    throw new FatalError(
      `unable to read config dir ${dir}: ${describeSystemError(error)}`,
      ExitCode.permanent,
    );
  }
}

function listDir(dir: string): string[] {
  return readdirSync(dir).sort(byCodePoint);
}

function readOne(dir: string, relPath: string): ConfigFileText {
  const path = join(dir, relPath);
  let symlinkTo: string | null = null;
  try {
    symlinkTo = lstatSync(path).isSymbolicLink() ? readlinkSync(path) : null;
    const read = readRegularFile(path, maxConfigFileBytes);
    if (typeof read === 'string') return { relPath, path, text: null, readError: read, symlinkTo };
    const writableBy = process.getuid?.() === 0 ? describeWriters(read.stats) : null;
    return { relPath, path, text: read.text, readError: null, symlinkTo, writableBy };
  } catch (error) {
    const readError = `unable to read: ${describeSystemError(error)}`;
    return { relPath, path, text: null, readError, symlinkTo };
  }
}

/**
 * Reads a regular file (or a link to one) of at most `cap` bytes as UTF-8; else says why not.
 * The open is non-blocking, so a FIFO with no writer or a device cannot stall the caller, and
 * nothing but a regular file is read; at most `cap + 1` bytes are read, so a file that grows
 * after the fstat cannot grow the reader either. Throws only the system errors of open/read.
 */
export function readRegularFile(
  path: string,
  cap: number,
): { text: string; stats: FileOwnership } | string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return `is ${describeFileType(stats)}, not a regular file; not read`;
    if (stats.size > cap) return `is ${stats.size} bytes, ${describeCap(cap)}; not read`;
    // Sized from fstat (a service file is a few hundred bytes), grown only if the file grows.
    let buffer = Buffer.allocUnsafe(stats.size + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)], cap + 1);
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > cap) return `grew while read, ${describeCap(cap)}; not read`;
    }
    return { text: buffer.toString('utf8', 0, length), stats };
  } finally {
    closeSync(fd);
  }
}

function describeCap(cap: number): string {
  return `over the limit of ${cap} bytes${cap === maxConfigFileBytes ? ' (1 MiB)' : ''} per file`;
}

function describeFileType(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'of an unknown type';
}

/** A directory, or a link to one. */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Lexical order by code point, independent of the locale. */
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Who owns a file and may write it: what describeWriters looks at. */
export type FileOwnership = { readonly mode: number; readonly uid: number; readonly gid: number };

/**
 * Who other than root can write a file a root daemon reads (pure): every user (mode o+w), a
 * group other than root's (g+w), an owner other than root; null when only root can.
 */
export function describeWriters(stats: FileOwnership): string | null {
  const who: string[] = [];
  if ((stats.mode & 0o002) !== 0) who.push('every user');
  if ((stats.mode & 0o020) !== 0 && stats.gid !== 0) who.push(`group ${stats.gid}`);
  if (stats.uid !== 0) who.push(`its owner, uid ${stats.uid}`);
  return who.length === 0 ? null : who.join(', ');
}
