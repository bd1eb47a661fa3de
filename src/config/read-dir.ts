import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FatalError, ExitCode, describeSystemError } from '../errors.js';

export interface ConfigFileText {
  /** Path relative to the config dir, e.g. `echo.json` or `echo.json.d/10-port.json`. */
  readonly relPath: string;
  /** The path as messages show it (config dir joined with relPath). */
  readonly path: string;
  readonly text: string;
  /** Link target when the file is a symbolic link. */
  readonly symlinkTo: string | null;
}

/** Whether a directory entry is a service file: `*.json`, not a dotfile, not a backup. */
export function isServiceFileName(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith('.') && name.length > '.json'.length;
}

/**
 * Reads every service file of a config dir, and the `*.json` files of its `NAME.json.d/`
 * drop-in directories, in lexical order. A missing or unreadable dir is fatal (100).
 */
export function readConfigDir(dir: string): ConfigFileText[] {
  const names = listDir(dir);
  const files: ConfigFileText[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (isServiceFileName(name)) files.push(readOne(dir, name));
    else if (name.endsWith('.json.d') && !name.startsWith('.') && isDirectory(path)) {
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
  try {
    const symlinkTo = lstatSync(path).isSymbolicLink() ? readlinkSync(path) : null;
    return { relPath, path, text: readFileSync(path, 'utf8'), symlinkTo };
  } catch (error) {
    throw new FatalError(
      `unable to read ${path}: ${describeSystemError(error)}`,
      ExitCode.permanent,
    );
  }
}

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Lexical order by code point, independent of the locale. */
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
