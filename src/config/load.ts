import { accessSync, constants, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { formatListenAddress, isSameBinding } from './listen-address.js';
import { createGetentLookup, type AccountLookup } from './accounts.js';
import { assembleUnits, type ConfFile } from './assemble-units.js';
import type { ProcessFeatureCheck } from './process-setup.js';
import { parseServiceText } from './parse.js';
import { byCodePoint, readConfigDir, type ConfigFileText } from './read-dir.js';
import type { ResolveContext } from './resolve.js';
import { findSource, makeUserLookup, resolveUnit } from './resolve-unit.js';
import type { Config, Identity, ServiceSpec } from './types.js';
import type { ConfigProblem } from '../model/problem.js';

/**
 * A whole frozen Config, with the notes worth showing (a template with no instance, drop-ins of
 * no service, ignored files) that do not stop it; or every problem found in every file.
 */
export type LoadResult =
  { ok: true; config: Config; notes: ConfigProblem[] } | { ok: false; problems: ConfigProblem[] };

/**
 * Reads, parses, assembles (templates, instances, drop-ins, specifiers), validates and resolves
 * every service file of `dir`, all or nothing.
 */
export function loadConfig(dir: string, ctx: ResolveContext = systemResolveContext()): LoadResult {
  return assembleConfig(dir, readConfigDir(dir), ctx);
}

/**
 * The pure part of loadConfig, over file texts already read. Problems are listed by file (in
 * byte order, each file's in the order found), then the addresses two services share.
 */
export function assembleConfig(
  dir: string,
  files: readonly ConfigFileText[],
  ctx: ResolveContext,
): LoadResult {
  const assembled = assembleUnits(files.map(parseConfFile), { lookupUser: makeUserLookup(ctx) });
  const problems: ConfigProblem[] = [...assembled.problems];
  const services: ServiceSpec[] = [];
  for (const unit of assembled.units) {
    const resolved = resolveUnit(unit, ctx);
    if (resolved.ok) services.push(resolved.spec);
    else problems.push(...resolved.problems);
  }
  problems.sort((a, b) => byCodePoint(a.file, b.file));
  problems.push(...findSharedAddresses(services));
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    config: deepFreeze({ dir, services }),
    notes: [...assembled.notes, ...services.flatMap((s) => s.warnings)],
  };
}

function parseConfFile(file: ConfigFileText): ConfFile {
  const common = { relPath: file.relPath, path: file.path, isSymlinkTo: file.symlinkTo };
  if (file.text === null)
    return { ...common, json: null, parseError: file.readError ?? 'unreadable' };
  const parsed = parseServiceText(file.path, file.text);
  if (parsed.ok) return { ...common, json: parsed.json };
  return { ...common, json: null, parseError: parsed.problem.message };
}

/**
 * Two enabled services (or one twice) on one address: name both, each by the file that supplied
 * the address (with `in NAME` when that is not the service's own file, e.g. a template).
 */
export function findSharedAddresses(services: readonly ServiceSpec[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen: { service: ServiceSpec; index: number }[] = [];
  for (const service of services.filter((s) => !s.disabled)) {
    service.listen.forEach((address, index) => {
      const clash = seen.find((other) =>
        isSameBinding(other.service.listen[other.index] ?? address, address),
      );
      if (clash !== undefined) {
        const pointer = listenPointer(service, index);
        const file = findSource(service, pointer);
        const where = describeListen(clash.service, listenPointer(clash.service, clash.index));
        const message = `${formatListenAddress(address)} is also used by ${where}`;
        problems.push({ file, pointer, message: inService(message, service, file) });
      }
      seen.push({ service, index });
    });
  }
  return problems;
}

function listenPointer(service: ServiceSpec, index: number): string {
  return typeof service.effective.listen === 'string' ? '/listen' : `/listen/${index}`;
}

function describeListen(service: ServiceSpec, pointer: string): string {
  const file = findSource(service, pointer);
  return file === service.file ? `${file} (${pointer})` : `${file} (${pointer} in ${service.name})`;
}

function inService(message: string, service: ServiceSpec, file: string): string {
  return file === service.file ? message : `${message} (in ${service.name})`;
}

/** The resolution context of this process: real accounts, real files, the real environment. */
export function systemResolveContext(
  accounts: AccountLookup = createGetentLookup(),
  checkProcessFeatures?: ProcessFeatureCheck,
): ResolveContext {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const entry = accounts.user(uid);
  const info = entry === null ? userInfo() : null;
  const self: Identity = {
    uid,
    gid,
    user: entry?.name ?? info?.username ?? String(uid),
    home: entry?.home ?? info?.homedir ?? '/',
  };
  const base = { accounts, isRoot: uid === 0, self, daemonEnv: process.env, checkExecutable };
  return checkProcessFeatures === undefined ? base : { ...base, checkProcessFeatures };
}

function checkExecutable(path: string): 'ok' | 'missing' | 'not-executable' {
  try {
    if (!statSync(path).isFile()) return 'not-executable';
    accessSync(path, constants.X_OK);
    return 'ok';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'not-executable';
  }
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value as object)) deepFreeze(inner);
  }
  return value;
}
