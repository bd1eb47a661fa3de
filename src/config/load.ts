import { accessSync, constants, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { formatListenAddress, isSameBinding } from './listen-address.js';
import { cacheAccounts, createGetentLookup, type AccountLookup } from './accounts.js';
import { assembleUnits, type AssembledUnit, type ConfFile } from './assemble-units.js';
import type { CompatResult } from '../compat/model.js';
import {
  blameDirective,
  bridgeCompat,
  foreignFiles,
  foreignSources,
  type BridgedCompat,
} from './compat-units.js';
import { readForeignConfig, type ForeignInputs } from './read-compat.js';
import type { ProcessFeatureCheck } from './process-setup.js';
import { parseServiceText } from './parse.js';
import { byCodePoint, isServiceFileName, readConfigDir, type ConfigFileText } from './read-dir.js';
import type { ResolveContext } from './resolve.js';
import { findSource, makeUserLookup, resolveUnit, type UnitResult } from './resolve-unit.js';
import type { Config, Identity, ListenAddress, ServiceSpec } from './types.js';
import type { ConfigProblem } from '../model/problem.js';

/**
 * A whole frozen Config, with the notes worth showing (a template with no instance, drop-ins of
 * no service, ignored files) that do not stop it; or every problem found in every file.
 */
export type LoadResult =
  | {
      ok: true;
      config: Config;
      notes: ConfigProblem[];
      /** Foreign services left out on purpose (xinetd INTERNAL, inetd internal). */
      skipped: ConfigProblem[];
    }
  | { ok: false; problems: ConfigProblem[] };

/** A config dir, and the foreign files named on the command line (kept for reloads). */
export interface ConfigSource {
  readonly dir: string;
  readonly foreign?: ForeignInputs | undefined;
}

/** Service files already read, with the foreign services read beside them. */
export interface ConfigInput {
  readonly files: readonly ConfigFileText[];
  readonly compat: CompatResult;
}

const noForeign: CompatResult = { services: [], problems: [], skipped: [], notes: [] };

/**
 * Reads, parses, assembles (templates, instances, drop-ins, specifiers), validates and resolves
 * every service file of `dir`, and the foreign files (xinetd, inetd.conf, systemd units), all
 * or nothing.
 */
export function loadConfig(
  source: string | ConfigSource,
  ctx: ResolveContext = systemResolveContext(),
): LoadResult {
  const { dir, foreign } =
    typeof source === 'string' ? { dir: source, foreign: undefined } : source;
  const files = readConfigDir(dir);
  return assembleConfig(source, { files, compat: readForeignConfig(dir, foreign) }, ctx);
}

/**
 * The pure part of loadConfig, over file texts already read. Problems are listed by file (in
 * byte order, each file's in the order found), then the addresses two services share.
 */
export function assembleConfig(
  source: string | ConfigSource,
  input: readonly ConfigFileText[] | ConfigInput,
  ctx: ResolveContext,
): LoadResult {
  const { files, compat } = 'compat' in input ? input : { files: input, compat: noForeign };
  const jsonNames = new Set(
    files
      .map((f) => f.relPath)
      .filter(isServiceFileName)
      .map((n) => n.slice(0, -5)),
  );
  const foreign = bridgeCompat(compat, jsonNames);
  const confFiles = [...files.map(parseConfFile), ...foreign.files];
  const assembled = assembleUnits(confFiles, { lookupUser: makeUserLookup(ctx) });
  const problems: ConfigProblem[] = [...assembled.problems, ...foreign.problems];
  const services: ServiceSpec[] = [];
  for (const unit of assembled.units) {
    const resolved = resolveForeignAware(unit, { ctx, foreign });
    if (resolved.ok) services.push(resolved.spec);
    else problems.push(...resolved.problems);
  }
  problems.sort((a, b) => compareProblemFiles(a.file, b.file));
  warnWritable(services, files);
  problems.push(...findSharedAddresses(services));
  if (problems.length > 0) return { ok: false, problems };
  const { dir, foreign: inputs } =
    typeof source === 'string' ? { dir: source, foreign: undefined } : source;
  return {
    ok: true,
    config: deepFreeze({ dir, services, ...(inputs === undefined ? {} : { foreign: inputs }) }),
    notes: [...assembled.notes, ...foreign.notes, ...services.flatMap((s) => s.warnings)],
    skipped: [...foreign.skipped],
  };
}

/** Byte order of files; `FILE:LINE` of a foreign file by FILE, then LINE as a number. */
function compareProblemFiles(a: string, b: string): number {
  const [x, y] = [/^(.*):(\d+)$/.exec(a), /^(.*):(\d+)$/.exec(b)];
  if (x === null || y === null || x[1] !== y[1]) return byCodePoint(x?.[1] ?? a, y?.[1] ?? b);
  return Number(x[2]) - Number(y[2]);
}

/** resolveUnit; for a foreign service, problems and sources name the directives. */
function resolveForeignAware(
  unit: AssembledUnit,
  on: { ctx: ResolveContext; foreign: BridgedCompat },
): UnitResult {
  const path = unit.provenance.get('') ?? '';
  const service = on.foreign.byPath.get(path);
  const resolved = resolveUnit(unit, on.ctx);
  if (service === undefined) return resolved;
  const blame = (p: ConfigProblem): ConfigProblem =>
    p.file === path ? blameDirective(p, service) : p;
  if (!resolved.ok) return { ok: false, problems: resolved.problems.map(blame) };
  const sources = foreignSources(resolved.spec, service, path);
  const files = foreignFiles(resolved.spec, service, path);
  const warnings = resolved.spec.warnings.map(blame);
  return { ok: true, spec: { ...resolved.spec, sources, files, warnings } };
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
  // only addresses on one port (or one Unix name) can collide: compared within that group
  const seen = new Map<string, { service: ServiceSpec; index: number }[]>();
  for (const service of services.filter((s) => !s.disabled)) {
    service.listen.forEach((address, index) => {
      const key = collisionGroup(address);
      if (key === null) return;
      const group = seen.get(key) ?? [];
      const clash = group.find((other) =>
        isSameBinding(other.service.listen[other.index] ?? address, address),
      );
      if (clash !== undefined) {
        const pointer = listenPointer(service, index);
        const file = findSource(service, pointer);
        const where = describeListen(clash.service, listenPointer(clash.service, clash.index));
        const message = `${formatListenAddress(address)} is also used by ${where}`;
        problems.push({ file, pointer, message: inService(message, service, file) });
      }
      seen.set(key, [...group, { service, index }]);
    });
  }
  return problems;
}

/**
 * Addresses isSameBinding may find equal share a group: kind and port, or the Unix name; null
 * for port 0, which collides with nothing.
 */
function collisionGroup(address: ListenAddress): string | null {
  if (address.kind === 'unix') return `unix ${address.abstract ? '@' : ''}${address.path}`;
  return address.port === 0 ? null : `${address.kind} ${address.port}`;
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
  const base = {
    accounts: cacheAccounts(accounts),
    isRoot: uid === 0,
    self,
    daemonEnv: process.env,
    checkExecutable,
  };
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

/**
 * A root daemon warns, on each service it makes, about its files that others can write: whoever
 * can write one chooses what runs, and as whom (`config-warning`).
 */
function warnWritable(services: ServiceSpec[], files: readonly ConfigFileText[]): void {
  const exposed = new Map(files.flatMap((f) => (f.writableBy ? [[f.path, f.writableBy]] : [])));
  if (exposed.size === 0) return;
  services.forEach((spec, i) => {
    const warnings = spec.files.flatMap((file) => {
      const who = exposed.get(file);
      const message = `writable by ${who ?? ''}: whoever can write it chooses what this root daemon runs, and as whom (chown root, chmod go-w)`;
      return who === undefined ? [] : [{ file, pointer: '', message }];
    });
    if (warnings.length > 0) services[i] = { ...spec, warnings: [...spec.warnings, ...warnings] };
  });
}
