import { logLevels, type LogLevel } from '../../log/events.js';
import { setFatalStyle } from '../../log/fatal.js';
import { isJournalStream } from '../../log/journal.js';
import { logFormats, type LogFormat } from '../../log/formats.js';
import { logTargets, type LogTarget } from '../../log/output.js';
import { journalSocketPath } from '../../log/journal-native.js';
import { loadNativeAddon } from '../../spawn/native-addon.js';
import { syslogFormats, type SyslogFormat } from '../../log/syslog.js';
import { defaultRecordRate } from '../../log/record-limiter.js';
import { checkServeFlags } from '../serve-flags.js';
import { defineCommand } from './define.js';
import { configSource, control, spawner } from './options.js';

const defaultLogFormat: LogFormat = 'json';
const defaultLogLevel: LogLevel = 'info';
const defaultLogTarget: LogTarget = 'stderr';
const defaultSyslogFormat: SyslogFormat = 'rfc3164';

/** `socketeer serve`: the daemon in the foreground. */
export const serveCommand = defineCommand({
  command: 'serve',
  describe: 'run the daemon in the foreground',
  builder: (y) =>
    y.options({
      ...configSource,
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
        describe: 'refuse and other records a peer can repeat: per second, per service and reason',
      },
      'log-burst': {
        type: 'number',
        default: defaultRecordRate.burst,
        describe: 'refuse and other records a peer can repeat: written back to back',
      },
      control,
      'log-target': {
        choices: logTargets,
        default: defaultLogTarget,
        describe:
          'where records go: stderr (with journald priorities under systemd), syslog, or journal (native protocol, fields)',
      },
      'journal-socket': {
        type: 'string',
        default: journalSocketPath,
        describe: "--log-target journal: journald's native socket",
      },
      'syslog-socket': {
        type: 'string',
        default: '/dev/log',
        describe: "--log-target syslog: the syslog daemon's datagram socket",
      },
      'syslog-format': {
        choices: syslogFormats,
        default: defaultSyslogFormat,
        describe: '--log-target syslog: the message format',
      },
      metrics: {
        type: 'string',
        describe: 'serve the metrics over HTTP, GET /metrics on HOST:PORT',
      },
    }),
  run: async (args) => {
    const journalStream = process.env.JOURNAL_STREAM;
    const prefix = isJournalStream(journalStream) ? '<3>' : '';
    setFatalStyle({ json: args.logFormat === 'json', prefix });
    checkServeFlags(args);
    const { runServe } = await import('../serve.js');
    return runServe({
      configDir: args.configDir,
      xinetdConf: args.xinetdConf,
      inetdConf: args.inetdConf,
      logFormat: args.logFormat,
      logLevel: args.logLevel,
      spawner: args.spawner,
      killGrace: args.killGrace,
      maxConnections: args.maxConnections,
      logRecords: { perSecond: args.logRate, burst: args.logBurst },
      control: args.control,
      metrics: args.metrics,
      logTarget: {
        target: args.logTarget,
        syslog: { socket: args.syslogSocket, format: args.syslogFormat },
        journalStream,
        journal: { socket: args.journalSocket, send: journalSender() },
      },
    });
  },
});

/** The addon's datagram send, for `--log-target journal` (null without the addon). */
function journalSender(): ((path: string, data: Buffer) => number) | null {
  const addon = loadNativeAddon();
  return addon === null ? null : (path, data) => addon.datagramSend(path, data);
}
