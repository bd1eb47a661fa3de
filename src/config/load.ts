import { accessSync, constants, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { formatListenAddress, isSameBinding } from '../listen/address.js';
import { createGetentLookup, type AccountLookup } from './accounts.js';
import { parseServiceText } from './parse.js';
import { readConfigDir, type ConfigFileText } from './read-dir.js';
import { resolveService, type ResolveContext } from './resolve.js';
import type { Config, ConfigProblem, Identity, ServiceSpec } from './types.js';
import { validateServiceFile } from './validate.js';

export type LoadResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

const serviceName = /^[A-Za-z0-9_.:-]+$/;

/**
 * Reads, parses, validates and resolves every service file of `dir`, all or nothing: the
 * result is either a whole frozen Config or every problem found in every file.
 */
export function loadConfig(dir: string, ctx: ResolveContext = systemResolveContext()): LoadResult {
  return assembleConfig(dir, readConfigDir(dir), ctx);
}

/** The pure part of loadConfig, over file texts already read. */
export function assembleConfig(
  dir: string,
  files: readonly ConfigFileText[],
  ctx: ResolveContext,
): LoadResult {
  const problems: ConfigProblem[] = [];
  const services: ServiceSpec[] = [];
  for (const file of files) {
    if (file.relPath.includes('/')) {
      problems.push({
        file: file.path,
        pointer: '',
        message: 'drop-in directories are not supported yet',
      });
      continue;
    }
    const name = file.relPath.slice(0, -'.json'.length);
    if (!serviceName.test(name)) {
      problems.push({
        file: file.path,
        pointer: '',
        message: `service name "${name}" may contain only A-Z a-z 0-9 _ . : -`,
      });
      continue;
    }
    const parsed = parseServiceText(file.path, file.text);
    if (!parsed.ok) {
      problems.push(parsed.problem);
      continue;
    }
    const validated = validateServiceFile(file.path, parsed.json);
    if (!validated.ok) {
      problems.push(...validated.problems);
      continue;
    }
    const resolved = resolveService(name, file.path, validated.value, ctx);
    if (resolved.ok) services.push(resolved.spec);
    else problems.push(...resolved.problems);
  }
  problems.push(...findSharedAddresses(services));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: deepFreeze({ dir, services }) };
}

/** Two enabled services (or one twice) on one address: name both files. */
export function findSharedAddresses(services: readonly ServiceSpec[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen: { service: ServiceSpec; index: number }[] = [];
  for (const service of services.filter((s) => !s.disabled)) {
    service.listen.forEach((address, index) => {
      const clash = seen.find((other) =>
        isSameBinding(other.service.listen[other.index] ?? address, address),
      );
      if (clash !== undefined) {
        const where = `${clash.service.file} (/listen${listenIndex(clash.service, clash.index)})`;
        problems.push({
          file: service.file,
          pointer: `/listen${listenIndex(service, index)}`,
          message: `${formatListenAddress(address)} is also used by ${where}`,
        });
      }
      seen.push({ service, index });
    });
  }
  return problems;
}

function listenIndex(service: ServiceSpec, index: number): string {
  return typeof service.effective.listen === 'string' ? '' : `/${index}`;
}

/** The resolution context of this process: real accounts, real files, the real environment. */
export function systemResolveContext(
  accounts: AccountLookup = createGetentLookup(),
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
  return { accounts, isRoot: uid === 0, self, daemonEnv: process.env, checkExecutable };
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
