/** A config problem inside one service: JSON pointer from the service file's root. */
export interface SettingsProblem {
  readonly pointer: string;
  readonly message: string;
  readonly severity: 'error' | 'warning';
}

/** One thing wrong with the configuration: file, JSON pointer, message. */
export interface ConfigProblem {
  readonly file: string;
  readonly pointer: string;
  readonly message: string;
}

export function formatProblem(problem: ConfigProblem): string {
  return `${problem.file}: ${problem.pointer === '' ? '/' : problem.pointer}: ${problem.message}`;
}
