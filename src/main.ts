#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode, FatalError } from './model/errors.js';
import { logLevels, type LogLevel } from './log/events.js';
import { logFormats, type LogFormat } from './log/logger.js';
import { defaultRecordRate } from './log/record-limiter.js';
import { configDir, control, serviceArg, spawner } from './commands/cli-options.js';
import { checkServeFlags } from './commands/serve-flags.js';
import { packagePath } from './model/package-root.js';

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
  const out = (text: string): void => void process.stdout.write(text);
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
          'max-connections': {
            type: 'number',
            describe: 'most handlers running at once across every service (default: no cap)',
          },
          'log-rate': {
            type: 'number',
            default: defaultRecordRate.perSecond,
            describe:
              'refuse and other records a peer can repeat: per second, per service and reason',
          },
          'log-burst': {
            type: 'number',
            default: defaultRecordRate.burst,
            describe: 'refuse and other records a peer can repeat: written back to back',
          },
          control,
        }),
      async (args) => {
        checkServeFlags(args);
        const { runServe } = await import('./commands/serve.js');
        set(
          await runServe({
            configDir: args.configDir,
            logFormat: args.logFormat,
            logLevel: args.logLevel,
            spawner: args.spawner,
            killGrace: args.killGrace,
            maxConnections: args.maxConnections,
            logRecords: { perSecond: args.logRate, burst: args.logBurst },
            control: args.control,
          }),
        );
      },
    )
    .command(
      'check',
      'validate the configuration and print it with defaults; with --peer or --uid/--gid, explain how the daemon would decide such a connection',
      (y) =>
        y.options({
          'config-dir': configDir,
          spawner,
          service: { type: 'string', describe: 'the service a --peer/--uid/--gid check is for' },
          peer: {
            type: 'string',
            describe: 'a TCP peer, ADDR[:PORT], to explain the decision for',
          },
          uid: { type: 'number', describe: 'a Unix peer uid to explain the decision for' },
          gid: { type: 'number', describe: 'a Unix peer gid to explain the decision for' },
        }),
      async (args) => {
        const out = (text: string): void => void process.stdout.write(text);
        const { service, peer, uid, gid } = args;
        if ([service, peer, uid, gid].some((value) => value !== undefined)) {
          const { runCheckPeer } = await import('./commands/check-peer.js');
          set(runCheckPeer({ configDir: args.configDir, service, peer, uid, gid }, out));
          return;
        }
        const { runCheck } = await import('./commands/check.js');
        set(runCheck({ configDir: args.configDir, spawner: args.spawner }, out));
      },
    )
    .command(
      'escape [strings..]',
      'escape strings for unit names as systemd-escape does (or unescape them); after --, strings may start with -',
      (y) =>
        y.positional('strings', { type: 'string', array: true, default: [] }).options({
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
              // what follows `--` is strings as written (yargs would turn `1e3` into 1000)
              strings: [
                ...args.strings,
                ...(argv.includes('--') ? argv.slice(argv.indexOf('--') + 1) : []),
              ],
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
    .command(
      'status [service]',
      'show every service (or one): state, listeners, counters and live connections',
      (y) =>
        y.positional('service', { type: 'string', describe: 'one service only' }).options({
          control,
          json: { type: 'boolean', default: false, describe: 'print the state as JSON' },
        }),
      async (args) => {
        const { runStatus } = await import('./commands/status.js');
        set(
          await runStatus({ service: args.service, json: args.json, control: args.control }, out),
        );
      },
    )
    .command(
      'stop <service>',
      "close a service's listeners and end its handlers; it stays stopped until start",
      (y) => y.positional('service', serviceArg).options({ control }),
      async (args) => {
        const { runStop } = await import('./commands/control-verbs.js');
        set(await runStop({ service: args.service, control: args.control }, out));
      },
    )
    .command(
      'start <service>',
      'bind a stopped service again and serve',
      (y) => y.positional('service', serviceArg).options({ control }),
      async (args) => {
        const { runStart } = await import('./commands/control-verbs.js');
        set(await runStart({ service: args.service, control: args.control }, out));
      },
    )
    .command(
      'quiesce <service>',
      "end a service's running handlers and keep listening",
      (y) => y.positional('service', serviceArg).options({ control }),
      async (args) => {
        const { runQuiesce } = await import('./commands/control-verbs.js');
        set(await runQuiesce({ service: args.service, control: args.control }, out));
      },
    )
    .command(
      'drain <service>',
      'stop accepting, let running handlers finish (end the rest at --timeout), then stopped',
      (y) =>
        y.positional('service', serviceArg).options({
          control,
          timeout: { type: 'number', describe: 'seconds to wait before ending what is left' },
        }),
      async (args) => {
        const { runDrain } = await import('./commands/control-verbs.js');
        set(
          await runDrain(
            { service: args.service, timeout: args.timeout, control: args.control },
            out,
          ),
        );
      },
    )
    .command(
      'kill <target>',
      'signal one handler (SERVICE@INSTANCE) or every handler of a service (SERVICE)',
      (y) =>
        y
          .positional('target', {
            type: 'string',
            demandOption: true,
            describe: 'SERVICE or SERVICE@INSTANCE',
          })
          .options({
            control,
            signal: { type: 'string', default: 'SIGTERM', describe: 'signal name or number' },
          }),
      async (args) => {
        const { runKill } = await import('./commands/control-verbs.js');
        set(
          await runKill({ target: args.target, signal: args.signal, control: args.control }, out),
        );
      },
    )
    .command(
      'reload',
      're-read and validate the configuration, then apply the difference',
      (y) => y.options({ control }),
      async (args) => {
        const { runReload } = await import('./commands/reload.js');
        set(await runReload({ control: args.control }, out));
      },
    )
    .command(
      'upgrade',
      'hand every listener over to a new socketeer process, then exit',
      (y) => y.options({ control }),
      async (args) => {
        const { runUpgrade } = await import('./commands/upgrade.js');
        set(await runUpgrade({ control: args.control }, out));
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
