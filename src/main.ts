#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode, FatalError } from './model/errors.js';
import { checkCommand } from './commands/cli/check.js';
import {
  drainCommand,
  killCommand,
  reloadCommand,
  serviceCommands,
  upgradeCommand,
} from './commands/cli/control.js';
import type { CommandDefinition, CommandIo } from './commands/cli/define.js';
import { escapeCommand } from './commands/cli/escape.js';
import { serveCommand } from './commands/cli/serve.js';
import { statusCommand } from './commands/cli/status.js';
import { packagePath } from './model/package-root.js';

const version = (
  JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }
).version;

/** Every subcommand, in the order `--help` lists them. */
const commands: readonly CommandDefinition[] = [
  serveCommand,
  checkCommand,
  escapeCommand,
  statusCommand,
  ...serviceCommands,
  drainCommand,
  killCommand,
  reloadCommand,
  upgradeCommand,
];

/** Parses argv, runs one command, and maps its outcome to an exit code and stderr words. */
export async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.ok;
  const exit = (value: number): void => {
    code = value;
  };
  const io: CommandIo = {
    argv,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
  };
  const parser = commands
    .reduce(
      (y, define) => define(y, io, exit),
      yargs(argv).scriptName('socketeer').usage('$0 <command> [options]'),
    )
    .demandCommand(1, 'a command is required')
    .strict()
    .version(version)
    .help()
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((message, error) => {
      if (error !== undefined && error !== null) throw error;
      throw new FatalError(`${lowerFirst(message)} (see socketeer --help)`, ExitCode.permanent);
    });
  try {
    await parser.parseAsync();
  } catch (error) {
    return reportError(error);
  }
  return code;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** The one place errors become words on stderr and an exit code. */
export function reportError(error: unknown): number {
  if (error instanceof FatalError) {
    for (const line of error.detail) process.stderr.write(`${line}\n`);
    process.stderr.write(`socketeer: fatal: ${error.message}\n`);
    return error.exitCode;
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`socketeer: internal error (a bug, please report it): ${text}\n`);
  return ExitCode.bug;
}

const code = await main(hideBin(process.argv));
process.exit(code);
