import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ExitCode, FatalError, describeSystemError } from '../model/errors.js';
import { packagePath } from '../model/package-root.js';
import type { Out } from './ask-daemon.js';

export interface InstallUnitsArgs {
  /** `--user`: the unit for `systemctl --user`. */
  readonly user: boolean;
  /** `--dir DIR`; default /etc/systemd/system, or $XDG_CONFIG_HOME/systemd/user with --user. */
  readonly dir?: string | undefined;
}

/** What a shipped unit template's placeholders become. */
export interface UnitPaths {
  /** The node binary running this (`process.execPath`). */
  readonly node: string;
  /** This installation's dist/src/main.js. */
  readonly main: string;
}

/** The shipped units, by where they are in the package and the file name they get. */
const units = {
  system: [{ template: 'units/socketeer.service', name: 'socketeer.service' }],
  user: [{ template: 'units/user/socketeer.service', name: 'socketeer.service' }],
} as const;

/**
 * `install-units [--user] [--dir DIR]`: writes socketeer's unit files with this installation's
 * paths (each by a rename, so a running systemd never reads half a file) and prints what to run
 * next. Exit 111 when the directory cannot be written.
 */
export function runInstallUnits(args: InstallUnitsArgs, out: Out): number {
  const dir = args.dir ?? defaultUnitDir(args.user, process.env);
  const paths = { node: process.execPath, main: packagePath('dist', 'src', 'main.js') };
  const systemctl = args.user ? 'systemctl --user' : 'systemctl';
  try {
    mkdirSync(dir, { recursive: true });
    for (const unit of units[args.user ? 'user' : 'system']) {
      const text = renderUnit(readFileSync(packagePath(unit.template), 'utf8'), paths);
      const target = join(dir, unit.name);
      writeFileSync(`${target}.tmp`, text, { mode: 0o644 });
      renameSync(`${target}.tmp`, target);
      out(`wrote ${target}\n`);
    }
  } catch (error) {
    throw new FatalError(
      `cannot write units in ${dir}: ${describeSystemError(error)}`,
      ExitCode.temporary,
    );
  }
  out(`next: ${systemctl} daemon-reload && ${systemctl} enable --now socketeer.service\n`);
  return ExitCode.ok;
}

export function defaultUnitDir(
  isUser: boolean,
  env: Readonly<Record<string, string | undefined>>,
): string {
  if (!isUser) return '/etc/systemd/system';
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(homedir(), '.config');
  return join(base, 'systemd', 'user');
}

/** The template with @NODE@ and @MAIN@ replaced by quoted, %-escaped paths (pure). */
export function renderUnit(template: string, paths: UnitPaths): string {
  return template
    .replaceAll('@NODE@', quoteArg(paths.node))
    .replaceAll('@MAIN@', quoteArg(paths.main));
}

/** One ExecStart= word: `%` doubled (a specifier otherwise), quoted when it has to be. */
export function quoteArg(word: string): string {
  const escaped = word.replaceAll('%', '%%');
  if (/^[A-Za-z0-9/._@+:%-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
