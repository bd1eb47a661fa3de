#!/usr/bin/env node
// first, so that the heap is sized before anything else is loaded
import './commands/heap-settings.js';
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode, FatalError } from './model/errors.js';
import { checkCommand } from './commands/cli/check.js';
import { convertCommand } from './commands/cli/convert.js';
import {
  drainCommand,
  killCommand,
  reloadCommand,
  serviceCommands,
  upgradeCommand,
} from './commands/cli/control.js';
import type { CommandDefinition, CommandIo, CommandRun } from './commands/cli/define.js';
import { answerCompletion, withCompletion } from './commands/cli/completion.js';
import { explainUsageError } from './commands/cli/usage-errors.js';
import { escapeCommand } from './commands/cli/escape.js';
import { installUnitsCommand } from './commands/cli/install-units.js';
import { serveCommand } from './commands/cli/serve.js';
import { metricsCommand } from './commands/cli/metrics.js';
import { statusCommand } from './commands/cli/status.js';
import { formatFatal } from './log/fatal.js';
import { packagePath } from './model/package-root.js';

const version = (
  JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }
).version;

/** Every subcommand, in the order `--help` lists them. */
const commands: readonly CommandDefinition[] = [
  serveCommand,
  checkCommand,
  convertCommand,
  escapeCommand,
  statusCommand,
  metricsCommand,
  ...serviceCommands,
  drainCommand,
  killCommand,
  reloadCommand,
  upgradeCommand,
  installUnitsCommand,
];

/** Parses argv, runs one command, and maps its outcome to an exit code and stderr words. */
export async function main(argv: string[]): Promise<number> {
  const io: CommandIo = {
    argv,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
  try {
    const run = await parse(argv, io);
    return run === null ? ExitCode.ok : await run();
  } catch (error) {
    return reportError(error);
  }
}

/**
 * The command the command line chooses (null: none to run, e.g. a completion answered). Returns
 * before the command runs, so nothing keeps the parser: it is garbage for the daemon's life.
 */
async function parse(argv: string[], io: CommandIo): Promise<CommandRun | null> {
  let chosen: CommandRun | null = null;
  const parser = buildParser(argv, io, (run) => {
    chosen = run;
  });
  if (await answerCompletion(parser, argv, io.out)) return null;
  await parser.parseAsync();
  return chosen;
}

function buildParser(argv: string[], io: CommandIo, choose: (run: CommandRun) => void): Argv {
  const parser = withCompletion(
    commands.reduce(
      (y, define) => define(y, io, choose),
      yargs(argv).scriptName('socketeer').usage('$0 <command> [options]'),
    ),
  )
    .demandCommand(1, 'a command is required')
    .strict()
    .version(version)
    .alias('version', 'V')
    .help()
    .alias('help', 'h')
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((message, error) => {
      if (error !== undefined && error !== null) throw error;
      const internals = parser as unknown as YargsInternals;
      const flags = Object.keys(internals.getOptions().key).filter((k) => k.length > 1);
      const context = { flags, commands: commandNames(internals), argv };
      const words = explainUsageError(message, context);
      throw new FatalError(`${words} (see socketeer --help)`, ExitCode.permanent);
    });
  return parser;
}

/** What yargs has but does not declare: the options and commands it knows now. */
interface YargsInternals {
  getOptions(): { key: Record<string, unknown> };
  getInternalMethods(): { getCommandInstance?: () => { getCommands?: () => string[] } };
}

/** The command names yargs knows (for "did you mean"). */
function commandNames(parser: YargsInternals): string[] {
  return parser.getInternalMethods().getCommandInstance?.().getCommands?.() ?? [];
}

/** The one place errors become words on stderr and an exit code. */
export function reportError(error: unknown): number {
  if (error instanceof FatalError) {
    const { message, detail, exitCode } = error;
    process.stderr.write(formatFatal({ message, detail, exitCode, isBug: false }));
    return exitCode;
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  const report = { message: text, detail: [], exitCode: ExitCode.bug, isBug: true };
  process.stderr.write(formatFatal(report));
  return ExitCode.bug;
}

const code = await main(hideBin(process.argv));
process.exit(code);
