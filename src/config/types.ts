import type { ConfigProblem } from '../model/problem.js';
import type { PrefixList } from '../access/cidr.js';
import type { AccessRules, AccessSettings } from '../access/rules.js';
import type { BucketRate, LimitsSettings, ResolvedLimits } from '../limits/settings.js';
import type { StderrTarget } from '../model/spawn.js';
import type { ProcessSetup, ProcessSetupFile } from './process-setup.js';
import type { ForeignInputs } from './read-compat.js';

/** A service file as it stands after schema validation with defaults applied. */
export interface ServiceFile extends ProcessSetupFile {
  readonly $schema?: string;
  readonly description?: string;
  readonly disabled: boolean;
  readonly listen: string | readonly string[];
  /** Exactly one of exec, proxy and builtin (the schema's oneOf and resolve-proxy.ts check it). */
  readonly exec?: readonly string[];
  readonly proxy?: string;
  readonly proxyProtocol?: ProxyProtocol;
  readonly proxyConnectTimeoutSec?: number;
  readonly proxyIdleTimeoutSec?: number;
  readonly builtin?: BuiltinName;
  readonly accept: boolean;
  readonly listenerOn: ListenerOn;
  readonly start: ActivationStart;
  readonly restart: RestartPolicy;
  readonly fdName?: string;
  readonly fdStoreMax: number;
  readonly killSignal: KillSignal;
  readonly user?: string | number;
  readonly group?: string | number;
  readonly env: Readonly<Record<string, string>>;
  readonly passEnv: readonly string[];
  readonly cwd?: string;
  readonly stderr: StderrTarget;
  /** Schema defaults applied: bytes of stderr logged per second per handler. */
  readonly stderrRate: BucketRate;
  readonly socket: SocketFile;
  /** Schema defaults applied (schema/limits.schema.json). */
  readonly limits: LimitsSettings;
  readonly access?: AccessSettings;
}

export interface SocketFile {
  readonly mode: string;
  readonly user?: string | number;
  readonly group?: string | number;
  readonly backlog: number;
  /** TCP_NODELAY and SO_KEEPALIVE on accepted TCP connections. */
  readonly noDelay: boolean;
  readonly keepAlive: boolean;
  /** Each TCP connection starts with a PROXY header (read before admission). */
  readonly proxyProtocol: boolean;
  readonly proxyHeaderTimeoutSec: number;
  /** The balancers that may send the header (addresses or CIDR prefixes); absent: any. */
  readonly proxyTrusted?: readonly string[];
}

/** The top-level keys of ServiceFile, in schema order; a unit test holds them equal. */
export const serviceFileKeys = [
  '$schema',
  'description',
  'disabled',
  'listen',
  'exec',
  'proxy',
  'proxyProtocol',
  'proxyConnectTimeoutSec',
  'proxyIdleTimeoutSec',
  'builtin',
  'accept',
  'listenerOn',
  'start',
  'restart',
  'fdName',
  'fdStoreMax',
  'killSignal',
  'user',
  'group',
  'groups',
  'env',
  'passEnv',
  'cwd',
  'umask',
  'nice',
  'rlimits',
  'chroot',
  'noNewPrivileges',
  'stderr',
  'stderrRate',
  'socket',
  'limits',
  'access',
] as const;

/** The signal that asks a handler (or an `accept: false` process) to end, systemd's KillSignal=. */
export type KillSignal =
  'SIGTERM' | 'SIGINT' | 'SIGQUIT' | 'SIGHUP' | 'SIGUSR1' | 'SIGUSR2' | 'SIGWINCH';

/** inetd's built-in services, served in the daemon (RFC 862, 863, 864, 867, 868). */
export type BuiltinName = 'echo' | 'discard' | 'chargen' | 'daytime' | 'time';

/** The PROXY protocol header a proxy service sends to its target. */
export type ProxyProtocol = 'v1' | 'v2';

/** Where a proxy service forwards its connections. */
export type ProxyTarget =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string; readonly abstract: boolean };

/** A `proxy` service: each admitted connection copied both ways to `target`, no handler. */
export interface ProxySpec {
  readonly target: ProxyTarget;
  /** The target as written (`unix:/run/app.sock`), for records. */
  readonly text: string;
  readonly protocol: ProxyProtocol | null;
  readonly connectTimeoutMs: number;
  /** null: no idle timeout. */
  readonly idleTimeoutMs: number | null;
}

/** accept: false: where the process finds its listening sockets. */
export type ListenerOn = 'fd3' | 'stdin';
/** accept: false: what starts the process. */
export type ActivationStart = 'on-demand' | 'at-start';
/** accept: false: when socketeer starts the process again by itself after it exits. */
export type RestartPolicy = 'always' | 'on-failure' | 'no';

/** An `accept: false` service's process: how it gets its sockets, when it starts and restarts. */
export interface ActivationSpec {
  readonly listenerOn: ListenerOn;
  readonly start: ActivationStart;
  readonly restart: RestartPolicy;
  /** Each passed socket's name in LISTEN_FDNAMES (`fdName`, default the service name). */
  readonly fdName: string;
  /** How many fds its process may keep in the fd store (FDSTORE=1); 0: off. */
  readonly fdStoreMax: number;
}

export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string | null; readonly port: number }
  /** A datagram socket: only for `accept: false` and `builtin` services (check refuses it otherwise). */
  | { readonly kind: 'udp'; readonly host: string | null; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string; readonly abstract: boolean };

/** Who a handler runs as (resolved when the configuration is loaded). */
export interface Identity {
  readonly uid: number;
  readonly gid: number;
  readonly user: string;
  readonly home: string;
}

/**
 * The account and group a handler runs as. `from`: `file` when the service names its `user`,
 * `default` when it does not (a root daemon: defaultHandlerUser; any other: the daemon's user).
 */
export interface RunAs {
  readonly user: string;
  readonly uid: number;
  /** The group's name; null when the group database has none for `gid`. */
  readonly group: string | null;
  readonly gid: number;
  readonly from: 'file' | 'default';
}

export interface SocketSpec {
  readonly mode: number;
  readonly uid: number | null;
  readonly gid: number | null;
  readonly backlog: number;
  readonly noDelay: boolean;
  readonly keepAlive: boolean;
  /** `socket.proxyProtocol`: null, no header; else how TCP connections' headers are read. */
  readonly proxyHeader: ProxyHeaderSpec | null;
}

/** `socket.proxyProtocol: true`: each TCP connection's PROXY header, read before admission. */
export interface ProxyHeaderSpec {
  readonly timeoutMs: number;
  /** The senders trusted to send it; null: any. */
  readonly trusted: PrefixList | null;
  /** `socket.proxyTrusted` as written (for messages). */
  readonly trustedText: readonly string[] | null;
}

/** One service, validated and resolved: what the daemon runs. */
export interface ServiceSpec {
  readonly name: string;
  readonly file: string;
  readonly description: string | null;
  readonly disabled: boolean;
  readonly listen: readonly ListenAddress[];
  /** Absolute path of the program and the full argv; null for a `proxy` or `builtin` service. */
  readonly exec: { readonly file: string; readonly argv: readonly string[] } | null;
  /** A `proxy` service's target and settings; null for an `exec` or `builtin` service. */
  readonly proxy: ProxySpec | null;
  /** A `builtin` service's protocol, served in the daemon; null for `exec` and `proxy`. */
  readonly builtin: BuiltinName | null;
  /**
   * `accept: false`: the one process that takes the listening sockets; null (`accept: true`):
   * a handler per connection.
   */
  readonly activation: ActivationSpec | null;
  /** Credentials to switch to; null when the handler keeps the daemon's. */
  readonly switchTo: { readonly uid: number; readonly gid: number } | null;
  /** The user the handler runs as (for HOME, USER, LOGNAME). */
  readonly identity: Identity;
  /** Who the handler runs as, and whether the file said so (what `check` shows). */
  readonly runAs: RunAs;
  /** Fixed part of the handler environment: PATH, HOME, USER, LOGNAME, passEnv, env. */
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** Supplementary groups, rlimits, umask, nice, chroot, no_new_privs. */
  readonly process: ProcessSetup;
  readonly stderr: StderrTarget;
  /** What stop, quiesce, drain, reload, shutdown and runtimeMaxSec send first (then SIGKILL). */
  readonly killSignal: KillSignal;
  /** With `stderr: log`: the byte bucket each handler's stderr lines are logged within. */
  readonly stderrRate: BucketRate;
  readonly socket: SocketSpec;
  /**
   * `limits` and `access` compiled for admission (structurally the AdmitPolicy of
   * resolve-policy.ts; connection/admit.ts decides every connection on it before any fork).
   */
  readonly admitPolicy: { readonly limits: ResolvedLimits; readonly access: AccessRules };
  /** `limits` with every default applied (the same object as `admitPolicy.limits`). */
  readonly limits: ResolvedLimits;
  /** Settings that are valid but have no effect or a surprising one; shown, never fatal. */
  readonly warnings: readonly ConfigProblem[];
  /** The file as validated, defaults filled in (what `check` prints). */
  readonly effective: ServiceFile;
  /** Every file that contributed, in the order applied (a template, drop-ins, ...). */
  readonly files: readonly string[];
  /** JSON pointer → the file that supplied the value there; '' is the defining file. */
  readonly sources: Readonly<Record<string, string>>;
}

export interface Config {
  readonly dir: string;
  readonly services: readonly ServiceSpec[];
  /** The foreign files named on the command line (--xinetd-conf, --inetd-conf), read again by reloads. */
  readonly foreign?: ForeignInputs;
}
