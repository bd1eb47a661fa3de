// How main writes a fatal error: the text grammar (`socketeer: fatal: ...`), or, once `serve`
// has said its records are JSON, one JSON record; with the journal's `<3>` prefix when its
// stderr is the journal. Kept apart from the logger so that main loads no winston.

export interface FatalStyle {
  readonly json: boolean;
  /** Put before every line: `<3>` when stderr is the journal, else empty. */
  readonly prefix: string;
}

let style: FatalStyle = { json: false, prefix: '' };

/** Set by `serve` as soon as it knows its log format and whether stderr is the journal. */
export function setFatalStyle(next: FatalStyle): void {
  style = next;
}

export interface FatalReport {
  /** The message after `socketeer: fatal: ` (or `socketeer: internal error ...: `). */
  readonly message: string;
  /** Lines before it (every config problem). */
  readonly detail: readonly string[];
  readonly exitCode: number;
  /** An internal error (a bug): its words differ. */
  readonly isBug: boolean;
}

/** What goes on stderr for a fatal error, newlines included. */
export function formatFatal(report: FatalReport, now: Date = new Date()): string {
  const { prefix } = style;
  if (style.json) {
    const record = {
      time: now.toISOString(),
      level: 'error',
      event: 'fatal',
      error: report.message,
      exitCode: report.exitCode,
      ...(report.isBug ? { bug: true } : {}),
      ...(report.detail.length === 0 ? {} : { problems: report.detail }),
    };
    return `${prefix}${JSON.stringify(record)}\n`;
  }
  const head = report.isBug ? 'internal error (a bug, please report it)' : 'fatal';
  const lines = [...report.detail, `socketeer: ${head}: ${report.message}`];
  // a stack's lines each get the prefix, so that the journal keeps them at the same priority
  return lines.flatMap((text) => text.split('\n').map((line) => `${prefix}${line}\n`)).join('');
}
