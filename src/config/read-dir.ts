import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FatalError, ExitCode, describeSystemError } from '../errors.js';

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
}

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
 * cannot be read is reported in its ConfigFileText, to become a problem with the others.
 */
export function readConfigDir(dir: string): ConfigFileText[] {
  const files: ConfigFileText[] = [];
  for (const name of listDir(dir)) {
    const path = join(dir, name);
    if (isServiceFileName(name)) files.push(readOne(dir, name));
    else if (isDropInDirName(name) && isDirectory(path)) {
      for (const inner of listDir(path)) {
        if (isServiceFileName(inner)) files.push(readOne(dir, `${name}/${inner}`));
      }
    }
  }
  return files;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort(byCodePoint);
  } catch (error) {
    throw new FatalError(
      `unable to read config dir ${dir}: ${describeSystemError(error)}`,
      ExitCode.permanent,
    );
  }
}

function readOne(dir: string, relPath: string): ConfigFileText {
  const path = join(dir, relPath);
  let symlinkTo: string | null = null;
  try {
    symlinkTo = lstatSync(path).isSymbolicLink() ? readlinkSync(path) : null;
    return { relPath, path, text: readFileSync(path, 'utf8'), readError: null, symlinkTo };
  } catch (error) {
    const readError = `unable to read: ${describeSystemError(error)}`;
    return { relPath, path, text: null, readError, symlinkTo };
  }
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
