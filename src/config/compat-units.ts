/**
 * Foreign-format services (src/compat/) as conf files of the ordinary pipeline: each becomes a
 * `NAME.json` named by where it is defined (`conf.d/xinetd.d/rsync:3`), so that templates'
 * drop-ins, validation and resolution treat it as any service file; its problems are written
 * `FILE:LINE: Directive: message`, and `sources` point to the directive of each value.
 */
import {
  formatOrigin,
  toServiceFileValue,
  type CompatProblem,
  type CompatResult,
  type CompatService,
  type Origin,
} from '../compat/model.js';
import type { ConfigProblem } from '../model/problem.js';
import type { ConfFile } from './assemble-units.js';
import type { JsonObject } from './merge.js';
import type { ServiceSpec } from './types.js';

export interface BridgedCompat {
  readonly files: readonly ConfFile[];
  readonly problems: readonly ConfigProblem[];
  readonly notes: readonly ConfigProblem[];
  readonly skipped: readonly ConfigProblem[];
  /** By the path given to its conf file. */
  readonly byPath: ReadonlyMap<string, CompatService>;
}

/** A foreign problem as a config problem: file `FILE:LINE`, the directive where a pointer goes. */
export function toConfigProblem(problem: CompatProblem): ConfigProblem {
  if (problem.line === 0) return { file: problem.file, pointer: '', message: problem.message };
  return {
    file: `${problem.file}:${problem.line}`,
    pointer: problem.directive,
    message: problem.message,
  };
}

export function bridgeCompat(compat: CompatResult, jsonNames: ReadonlySet<string>): BridgedCompat {
  const problems = compat.problems.map(toConfigProblem);
  const skipped = compat.skipped.map(toConfigProblem);
  const files: ConfFile[] = [];
  const byPath = new Map<string, CompatService>();
  const seen = new Map<string, CompatService>();
  for (const service of compat.services) {
    const path = `${service.origin.file}:${service.origin.line}`;
    const other = seen.get(service.name);
    if (other !== undefined && (isOff(service) || isOff(other))) {
      // as xinetd, which drops a disabled service before it looks for duplicates (Debian ships
      // echo-dgram in both echo and echo-udp, disabled)
      const [dropped, kept] = isOff(service) ? [service, other] : [other, service];
      const droppedAt = `${dropped.origin.file}:${dropped.origin.line}`;
      const message = `disabled, and service ${service.name} is also defined by ${kept.origin.file}:${kept.origin.line}: skipped`;
      skipped.push({ file: droppedAt, pointer: dropped.origin.directive, message });
      if (dropped === service) continue;
      files.splice(
        files.findIndex((f) => f.path === droppedAt),
        1,
      );
      byPath.delete(droppedAt);
    } else if (jsonNames.has(service.name) || other !== undefined) {
      const where =
        other === undefined ? `${service.name}.json` : `${other.origin.file}:${other.origin.line}`;
      const message = `a second service ${service.name} (also defined by ${where}); give one an id or rename it`;
      problems.push({ file: path, pointer: service.origin.directive, message });
      continue;
    }
    seen.set(service.name, service);
    byPath.set(path, service);
    const json = toServiceFileValue(service.json) as JsonObject;
    files.push({ relPath: `${service.name}.json`, path, isSymlinkTo: null, json });
  }
  const notes = compat.notes.map((note) => toConfigProblem(note));
  return { files, problems, notes, skipped, byPath };
}

function isOff(service: CompatService): boolean {
  return service.json.disabled === true;
}

/** The directive that set the value at `pointer`, or at its nearest parent. */
export function findOrigin(service: CompatService, pointer: string): Origin {
  for (let at = pointer; ; at = at.slice(0, at.lastIndexOf('/'))) {
    const origin = service.sources.get(at);
    if (origin !== undefined) return origin;
    if (at === '') return service.origin;
  }
}

/** A problem found in a foreign service's JSON, moved to the directive that set the value. */
export function blameDirective(problem: ConfigProblem, service: CompatService): ConfigProblem {
  const origin = findOrigin(service, problem.pointer);
  const at = problem.pointer === '' ? '' : ` (${problem.pointer} of ${service.name})`;
  return {
    file: `${origin.file}:${origin.line}`,
    pointer: origin.directive,
    message: `${problem.message}${at}`,
  };
}

/** `sources` of a foreign service: each value's `FILE:LINE (Directive)`; drop-ins keep theirs. */
export function foreignSources(
  spec: ServiceSpec,
  service: CompatService,
  path: string,
): Record<string, string> {
  const sources: Record<string, string> = { '': formatOrigin(service.origin) };
  for (const [pointer, origin] of service.sources) sources[pointer] = formatOrigin(origin);
  for (const [pointer, file] of Object.entries(spec.sources))
    if (file !== path) sources[pointer] = file;
  return sources;
}

/** `files` of a foreign service: the file that defines it, then every other file a value came from. */
export function foreignFiles(spec: ServiceSpec, service: CompatService, path: string): string[] {
  const own = [service.origin.file, ...[...service.sources.values()].map((o) => o.file)];
  return [...new Set([...own, ...spec.files.filter((file) => file !== path)])];
}
