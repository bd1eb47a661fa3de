#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode, FatalError } from './errors.js';
import { logLevels, type LogLevel } from './log/events.js';
import { logFormats, type LogFormat } from './log/logger.js';
import { packagePath } from './package-root.js';
import { spawnerChoices, type SpawnerChoice } from './spawn/select-spawner.js';

const version = (
  JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }
).version;

const defaultLogFormat: LogFormat = 'json';
const defaultLogLevel: LogLevel = 'info';

/** Parses argv, runs one command, and maps its outcome to an exit code and stderr words. */
export async function main(argv: string[]): Promise<number> {
  let code: number = ExitCode.ok;
  const set = (value: number): void => {
    code = value;
  };
  const configDir = {
    type: 'string',
    describe:
      'directory of service files (default: /etc/socketeer/conf.d as root, else $XDG_CONFIG_HOME/socketeer/conf.d)',
  } as const;
  const spawner = {
    choices: spawnerChoices,
    default: 'auto' as SpawnerChoice,
    describe: 'how handlers are started',
  } as const;
  const parser = yargs(argv)
    .scriptName('socketeer')
    .usage('$0 <command> [options]')
    .command(
      'serve',
      'run the daemon in the foreground',
      (y) =>
        y.options({
          'config-dir': configDir,
          spawner,
          'log-format': {
            choices: logFormats,
            default: defaultLogFormat,
            describe: 'log records as JSON lines or text',
          },
          'log-level': {
            choices: logLevels,
            default: defaultLogLevel,
            describe: 'lowest level logged',
          },
          'kill-grace': {
            type: 'number',
            default: 5,
            describe: 'seconds between SIGTERM and SIGKILL when ending handlers',
          },
        }),
      async (args) => {
        const { runServe } = await import('./commands/serve.js');
        set(
          await runServe({
            configDir: args.configDir,
            logFormat: args.logFormat,
            logLevel: args.logLevel,
            spawner: args.spawner,
            killGrace: args.killGrace,
          }),
        );
      },
    )
    .command(
      'check',
      'validate the configuration and print it with defaults',
      (y) => y.options({ 'config-dir': configDir, spawner }),
      async (args) => {
        const { runCheck } = await import('./commands/check.js');
        set(
          runCheck({ configDir: args.configDir, spawner: args.spawner }, (text) =>
            process.stdout.write(text),
          ),
        );
      },
    )
    .command(
      'escape <strings..>',
      'escape strings for unit names as systemd-escape does (or unescape them)',
      (y) =>
        y.positional('strings', { type: 'string', array: true, demandOption: true }).options({
          path: { type: 'boolean', default: false, describe: 'treat each string as a path' },
          unescape: { type: 'boolean', default: false, describe: 'undo the escaping' },
          template: {
            type: 'string',
            describe: 'insert into a template name, e.g. user-echo@.json',
          },
          mangle: { type: 'boolean', default: false, describe: 'turn a string into a valid name' },
        }),
      async (args) => {
        const { runEscape } = await import('./commands/escape.js');
        const write = (stream: NodeJS.WriteStream) => (line: string) => stream.write(`${line}\n`);
        set(
          runEscape(
            {
              strings: args.strings,
              path: args.path,
              unescape: args.unescape,
              template: args.template,
              mangle: args.mangle,
            },
            write(process.stdout),
            write(process.stderr),
          ),
        );
      },
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
