/**
 * Turns the files of a conf.d directory into units (pure). Order of application:
 *   plain `NAME.json`:        the file, then `NAME.json.d/*.json`;
 *   instance `NAME@ARG.json`: the template `NAME@.json` (unless the instance file is a full
 *                             definition), the instance file, then `NAME@.json.d/*.json`, then
 *                             `NAME@ARG.json.d/*.json`;
 * each drop-in directory in byte order of file names; then specifiers are expanded.
 * A template serves nothing by itself.
 */
import { parseServiceName, type ServiceName } from './escape.js';
import {
  findProvenance,
  isJsonObject,
  mergeSourced,
  sourceValue,
  type JsonObject,
  type Provenance,
  type SourcedValue,
} from './merge.js';
import { expandSpecifiers, type UserLookup } from './specifiers.js';

export interface ConfFile {
  /** Relative to the conf.d directory: `echo.json`, `getty@.json.d/10-limits.json`. */
  readonly relPath: string;
  /** The link's target as readlink(2) gives it; null when the file is not a symlink. */
  readonly isSymlinkTo: string | null;
  /** The parsed content (read through the link). */
  readonly json: unknown;
  /** Set instead of a usable `json` when the file could not be read or parsed. */
  readonly parseError?: string | undefined;
  /** How problems, provenance and `files` name the file (default: relPath). */
  readonly path?: string | undefined;
}

export interface UnitProblem {
  readonly file: string;
  readonly pointer: string;
  readonly message: string;
}

export interface AssembledUnit {
  /** The service name: file name without `.json` (`echo`, `user-echo@alice`). */
  readonly name: string;
  readonly prefix: string;
  /** The instance as written in the file name (escaped); null for a plain service. */
  readonly instance: string | null;
  readonly value: JsonObject;
  readonly provenance: Provenance;
  /** Every file that contributed, in the order applied. */
  readonly files: readonly string[];
}

export interface AssembleOptions {
  readonly lookupUser: UserLookup;
  /** Whether an instance file defines the service fully (default: it has `listen` and `exec` or `proxy`). */
  readonly isFullDefinition?: ((value: JsonObject) => boolean) | undefined;
}

export interface AssembledUnits {
  /** Sorted by name; a unit any of whose files has a problem is left out. */
  readonly units: readonly AssembledUnit[];
  readonly problems: readonly UnitProblem[];
  /** Not errors, but worth a line in `check`: unused templates and drop-ins, ignored files. */
  readonly notes: readonly UnitProblem[];
}

interface Piece {
  readonly file: string;
  /** Null when the file has a problem. */
  readonly json: JsonObject | null;
}

interface ServiceFile extends Piece {
  readonly service: ServiceName;
  readonly linkTarget: string | null;
}

const hasListenAndExec = (value: JsonObject): boolean =>
  'listen' in value && ('exec' in value || 'proxy' in value);

export function assembleUnits(
  files: readonly ConfFile[],
  options: AssembleOptions,
): AssembledUnits {
  const problems: UnitProblem[] = [];
  const notes: UnitProblem[] = [];
  const { services, dropIns } = classifyFiles(files, problems, notes);
  const used = new Set<string>();
  const units: AssembledUnit[] = [];
  const build = { services, dropIns, used, problems, options };
  for (const service of services.values()) {
    if (service.service.instance === '') continue;
    const unit = buildUnit(service, build);
    if (unit !== null) units.push(unit);
  }
  for (const { file, service } of services.values()) {
    if (service.instance === '' && !used.has(service.name)) {
      notes.push({
        file,
        pointer: '',
        message: 'template with no instance: it serves nothing by itself',
      });
    }
  }
  for (const [target, pieces] of dropIns) {
    if (used.has(target) || services.has(target)) continue;
    const first = pieces[0]?.file ?? '';
    const file = first.slice(0, first.lastIndexOf('/') + 1);
    notes.push({
      file,
      pointer: '',
      message: `no service ${target}.json; its ${pieces.length} drop-in(s) are not used`,
    });
  }
  units.sort((a, b) => compareBytes(a.name, b.name));
  return { units, problems: dedupe(problems), notes };
}

interface BuildContext {
  readonly services: ReadonlyMap<string, ServiceFile>;
  readonly dropIns: ReadonlyMap<string, readonly Piece[]>;
  readonly used: Set<string>;
  readonly problems: UnitProblem[];
  readonly options: AssembleOptions;
}

function buildUnit(own: ServiceFile, context: BuildContext): AssembledUnit | null {
  const { name, prefix, instance } = own.service;
  const base = findBase(own, context);
  const dropInDirs = instance === null ? [name] : [`${prefix}@`, name];
  const dropIns = dropInDirs.flatMap((dir) => {
    context.used.add(dir);
    return context.dropIns.get(dir) ?? [];
  });
  if (base === null || dropIns.some((piece) => piece.json === null)) return null;
  let merged: SourcedValue = base.sourced;
  for (const piece of dropIns) merged = mergeSourced(merged, piece.json as JsonObject, piece.file);
  const provenance = new Map(merged.provenance).set('', own.file);
  const expanded = expandSpecifiers(merged.value, {
    ...own.service,
    lookupUser: context.options.lookupUser,
  });
  for (const { pointer, message } of expanded.problems) {
    const file = findProvenance(provenance, pointer) ?? own.file;
    const where = file === own.file ? '' : ` (in ${name})`;
    context.problems.push({ file, pointer, message: `${message}${where}` });
  }
  if (expanded.problems.length > 0) return null;
  const files = [...base.files, ...dropIns.map((piece) => piece.file)];
  return { name, prefix, instance, value: expanded.value, provenance, files };
}

/** The unit before drop-ins: the plain file, or for an instance the template and/or its file. */
function findBase(
  own: ServiceFile,
  context: BuildContext,
): { sourced: SourcedValue; files: string[] } | null {
  if (own.json === null) return null;
  const { prefix, instance } = own.service;
  if (instance === null) return { sourced: sourceValue(own.json, own.file), files: [own.file] };
  const template = context.services.get(`${prefix}@`);
  context.used.add(`${prefix}@`);
  const templateName = `${prefix}@.json`;
  const isLinkToTemplate =
    own.linkTarget?.split('/').pop() === templateName && template !== undefined;
  const isFull = (context.options.isFullDefinition ?? hasListenAndExec)(own.json);
  if (isFull && !isLinkToTemplate) {
    return { sourced: sourceValue(own.json, own.file), files: [own.file] };
  }
  if (template === undefined) {
    const message = `no template ${templateName} for this instance`;
    context.problems.push({ file: own.file, pointer: '', message });
    return null;
  }
  if (template.json === null) return null;
  const sourced = sourceValue(template.json, template.file);
  const files = [template.file, own.file];
  return { sourced: isLinkToTemplate ? sourced : mergeSourced(sourced, own.json, own.file), files };
}

function classifyFiles(
  files: readonly ConfFile[],
  problems: UnitProblem[],
  notes: UnitProblem[],
): { services: Map<string, ServiceFile>; dropIns: Map<string, Piece[]> } {
  const services = new Map<string, ServiceFile>();
  const dropIns = new Map<string, Piece[]>();
  const sorted = [...files].sort((a, b) => compareBytes(a.relPath, b.relPath));
  for (const file of sorted) {
    const [head, tail, ...rest] = file.relPath.split('/');
    if (head?.endsWith('.json') === true && tail === undefined) {
      addService(file, head.slice(0, -'.json'.length), services, problems);
    } else if (
      head?.endsWith('.json.d') === true &&
      tail?.endsWith('.json') === true &&
      rest.length === 0
    ) {
      const target = head.slice(0, -'.json.d'.length);
      const piece = { file: file.path ?? file.relPath, json: readObject(file, problems) };
      dropIns.set(target, [...(dropIns.get(target) ?? []), piece]);
    } else if (file.parseError !== undefined && head?.endsWith('.json.d') === true) {
      // a drop-in directory that could not be listed
      problems.push({ file: file.path ?? file.relPath, pointer: '', message: file.parseError });
    } else {
      const message = 'neither NAME.json nor NAME.json.d/*.json; ignored';
      notes.push({ file: file.path ?? file.relPath, pointer: '', message });
    }
  }
  return { services, dropIns };
}

function addService(
  file: ConfFile,
  name: string,
  services: Map<string, ServiceFile>,
  problems: UnitProblem[],
): void {
  const json = readObject(file, problems);
  const service = parseServiceName(name);
  const shown = file.path ?? file.relPath;
  if (!service.ok) {
    problems.push({ file: shown, pointer: '', message: service.error });
    return;
  }
  const linkTarget = file.isSymlinkTo;
  services.set(name, { file: shown, json, service: service.value, linkTarget });
}

function readObject(file: ConfFile, problems: UnitProblem[]): JsonObject | null {
  if (isJsonObject(file.json) && file.parseError === undefined) return file.json;
  const message = file.parseError ?? 'the top level must be a JSON object';
  problems.push({ file: file.path ?? file.relPath, pointer: '', message });
  return null;
}

const encoder = new TextEncoder();

/** strcmp order on UTF-8, as systemd sorts drop-ins. */
function compareBytes(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  }
  return x.length - y.length;
}

function dedupe(problems: UnitProblem[]): UnitProblem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = JSON.stringify([problem.file, problem.pointer, problem.message]);
    return seen.has(key) ? false : (seen.add(key), true);
  });
}
