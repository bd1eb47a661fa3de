/**
 * What every foreign-format parser (xinetd, inetd.conf, systemd units) produces: socketeer
 * service definitions (the JSON a conf.d/NAME.json file holds), where each value came from, and
 * what could not be honoured. Pure: no file is read here.
 */

/** A line of a foreign file. */
export interface Place {
  readonly file: string;
  /** 1-based; 0 when the problem is the whole file (it could not be read). */
  readonly line: number;
}

/** A place in a foreign file: the directive at FILE:LINE. */
export interface Origin extends Place {
  /** The directive as the file spells it (`only_from`, `ListenStream`, `wait`). */
  readonly directive: string;
}

/** `FILE:LINE: Directive: message`; `severity` says whether it stops the load. */
export interface CompatProblem extends Origin {
  readonly message: string;
}

export type JsonMap = Record<string, unknown>;

/** One service in socketeer's terms. */
export interface CompatService {
  /** The service name (the conf.d file name it would have, without `.json`). */
  readonly name: string;
  /** Where the service is defined (its `service` line, its inetd.conf line, its .socket file). */
  readonly origin: Origin;
  /** The service file's JSON: strings as they are (no specifier escaping yet). */
  readonly json: JsonMap;
  /** JSON pointer → the directive that set the value there. */
  readonly sources: ReadonlyMap<string, Origin>;
}

export interface CompatResult {
  readonly services: readonly CompatService[];
  /** Cannot be honoured: the load fails, as for a bad JSON file. */
  readonly problems: readonly CompatProblem[];
  /** Services left out on purpose (xinetd INTERNAL, inetd internal): listed, never served. */
  readonly skipped: readonly CompatProblem[];
  /** Accepted directives that change nothing here (Description, WantedBy, log_type, ...). */
  readonly notes: readonly CompatProblem[];
}

/** `FILE:LINE: Directive: message`. */
export function formatCompatProblem(problem: CompatProblem): string {
  return `${problem.file}:${problem.line}: ${problem.directive}: ${problem.message}`;
}

/** `FILE:LINE (Directive)`: how `check` shows where a value came from. */
export function formatOrigin(origin: Origin): string {
  return `${origin.file}:${origin.line} (${origin.directive})`;
}

/** Collects one service's JSON and the origin of each value as a mapping sets them. */
export class ServiceBuilder {
  readonly json: JsonMap = {};
  readonly sources = new Map<string, Origin>();

  /** Sets the value at a pointer of plain keys (`/limits/instances`), creating objects on the way. */
  set(pointer: string, value: unknown, origin: Origin): void {
    const keys = pointer.split('/').slice(1);
    let at: JsonMap = this.json;
    for (const key of keys.slice(0, -1)) {
      const inner = at[key];
      if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) at[key] = {};
      at = at[key] as JsonMap;
    }
    at[keys[keys.length - 1] ?? ''] = value;
    this.sources.set(pointer, origin);
  }

  has(pointer: string): boolean {
    return this.sources.has(pointer);
  }

  build(name: string, origin: Origin): CompatService {
    return { name, origin, json: this.json, sources: this.sources };
  }
}

/** Problems, skipped services and notes, gathered as a file is mapped. */
export class Findings {
  readonly problems: CompatProblem[] = [];
  readonly skipped: CompatProblem[] = [];
  readonly notes: CompatProblem[] = [];

  problem(origin: Origin, message: string): void {
    this.problems.push({ ...origin, message });
  }

  note(origin: Origin, message: string): void {
    this.notes.push({ ...origin, message });
  }

  skip(origin: Origin, message: string): void {
    this.skipped.push({ ...origin, message });
  }

  result(services: readonly CompatService[]): CompatResult {
    return { services, problems: this.problems, skipped: this.skipped, notes: this.notes };
  }
}

/** Merges results of several files (in order). */
export function mergeResults(results: readonly CompatResult[]): CompatResult {
  return {
    services: results.flatMap((r) => r.services),
    problems: results.flatMap((r) => r.problems),
    skipped: results.flatMap((r) => r.skipped),
    notes: results.flatMap((r) => r.notes),
  };
}

/**
 * A socketeer specifier (`%u`, `%h`) inside a mapped string. Every literal `%` of a mapped value
 * is written `%%` when it becomes a service file; this marker becomes the specifier itself.
 */
export function socketeerSpecifier(letter: 'u' | 'h'): string {
  return `\uE000${letter}`;
}

/** A mapped value as service-file JSON: `%` doubled, socketeerSpecifier markers turned into `%X`. */
export function toServiceFileValue(value: unknown): unknown {
  if (typeof value === 'string') return value.replaceAll('%', '%%').replace(/\uE000([uh])/g, '%$1');
  if (Array.isArray(value)) return value.map(toServiceFileValue);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toServiceFileValue(v)]));
  }
  return value;
}
