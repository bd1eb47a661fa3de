import { parseListenAddress } from './listen-address.js';
import type { AccountLookup } from './accounts.js';
import { resolveProcessSetup, type ProcessFeatureCheck } from './process-setup.js';
import { resolveActivation } from './resolve-activation.js';
import { resolvePolicy } from './resolve-policy.js';
import { resolveProxy } from './resolve-proxy.js';
import { resolveProxyHeader } from './resolve-proxy-header.js';
import type { Identity, ListenAddress, RunAs, ServiceFile, ServiceSpec } from './types.js';
import type { ConfigProblem } from '../model/problem.js';

/** What resolution needs from the world, passed in so this module stays free of I/O. */
export interface ResolveContext {
  readonly accounts: AccountLookup;
  readonly isRoot: boolean;
  /** The daemon's own user. */
  readonly self: Identity;
  readonly daemonEnv: Readonly<Record<string, string | undefined>>;
  /** Classifies a program path: 'ok', 'missing' or 'not-executable'. */
  readonly checkExecutable: (path: string) => 'ok' | 'missing' | 'not-executable';
  /** What the active spawner cannot do (absent: no spawner is being checked against). */
  readonly checkProcessFeatures?: ProcessFeatureCheck;
}

export const defaultHandlerPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Turns a validated service file into the ServiceSpec the daemon runs, or its problems. */
export function resolveService(
  name: string,
  file: string,
  value: ServiceFile,
  ctx: ResolveContext,
): { ok: true; spec: ServiceSpec } | { ok: false; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const note = (pointer: string, message: string): void =>
    void problems.push({ file, pointer, message });
  const listen = resolveListen(value.listen, note);
  const forward = resolveProxy(value);
  for (const p of forward.problems) note(p.pointer, p.message);
  const program =
    value.exec === undefined
      ? null
      : resolveProgram(value.exec[0] ?? '', value.chroot ?? null, ctx, note);
  const who = resolveCredentials(value, ctx, note);
  const processSetup = resolveProcessSetup(
    value,
    {
      ...ctx,
      user: who.switchTo === null ? null : { name: who.identity.user, gid: who.switchTo.gid },
    },
    note,
  );
  const socketOwner = resolveOwner(value.socket.user, value.socket.group, '/socket', ctx, note);
  const proxyHeader = resolveProxyHeader(value, note);
  const policy = resolvePolicy(file, value, listen);
  problems.push(...policy.problems);
  const accept = resolveActivation(name, value, listen);
  const activationOf = (severity: 'error' | 'warning'): ConfigProblem[] =>
    accept.problems
      .filter((p) => p.severity === severity)
      .map((p) => ({ file, pointer: p.pointer, message: p.message }));
  problems.push(...activationOf('error'));
  if (problems.length > 0) return { ok: false, problems };
  const spec: ServiceSpec = {
    name,
    file,
    description: value.description ?? null,
    disabled: value.disabled,
    listen,
    exec:
      program === null || value.exec === undefined
        ? null
        : { file: program, argv: [...value.exec] },
    proxy: forward.proxy,
    builtin: forward.builtin,
    activation: accept.activation,
    switchTo: who.switchTo,
    identity: who.identity,
    runAs: who.runAs,
    baseEnv: buildBaseEnv(value, who.identity, ctx.daemonEnv),
    cwd: value.cwd ?? '/',
    process: processSetup,
    stderr: value.stderr,
    killSignal: value.killSignal,
    stderrRate: value.stderrRate,
    socket: {
      mode: parseInt(value.socket.mode, 8),
      uid: socketOwner.uid,
      gid: socketOwner.gid,
      backlog: value.socket.backlog,
      noDelay: value.socket.noDelay,
      keepAlive: value.socket.keepAlive,
      proxyHeader,
    },
    admitPolicy: policy.admitPolicy,
    limits: policy.admitPolicy.limits,
    warnings: [
      ...policy.warnings,
      ...activationOf('warning'),
      ...forward.warnings.map((w) => ({ file, ...w })),
    ],
    effective: value,
    files: [file],
    sources: { '': file },
  };
  return { ok: true, spec };
}

type Note = (pointer: string, message: string) => void;

function resolveListen(listen: string | readonly string[], note: Note): ListenAddress[] {
  const list = typeof listen === 'string' ? [listen] : listen;
  const out: ListenAddress[] = [];
  list.forEach((text, i) => {
    const parsed = parseListenAddress(text);
    if (parsed.ok) out.push(parsed.address);
    else note(typeof listen === 'string' ? '/listen' : `/listen/${i}`, parsed.message);
  });
  return out;
}

function resolveProgram(
  program: string,
  chroot: string | null,
  ctx: ResolveContext,
  note: Note,
): string {
  if (program === '') {
    note('/exec/0', 'must name a program');
    return '';
  }
  if (program.includes('/') && !program.startsWith('/')) {
    note('/exec/0', `"${program}": must be an absolute path or a name looked up on PATH`);
    return '';
  }
  if (chroot !== null) {
    if (!program.startsWith('/'))
      note('/exec/0', `"${program}": must be an absolute path inside the chroot`);
    else if (ctx.checkExecutable(`${chroot}${program}`) !== 'ok')
      note('/exec/0', `${chroot}${program}: no executable program inside the chroot`);
    return program;
  }
  const candidates = program.includes('/')
    ? [program]
    : pathDirs(ctx).map((dir) => `${dir}/${program}`);
  let seenNotExecutable: string | null = null;
  for (const candidate of candidates) {
    const state = ctx.checkExecutable(candidate);
    if (state === 'ok') return candidate;
    if (state === 'not-executable') seenNotExecutable ??= candidate;
  }
  if (seenNotExecutable !== null) note('/exec/0', `${seenNotExecutable}: not executable`);
  else if (program.startsWith('/')) note('/exec/0', `${program}: no such file`);
  else note('/exec/0', `"${program}" not found on PATH (${pathDirs(ctx).join(':')})`);
  return '';
}

function pathDirs(ctx: ResolveContext): string[] {
  return (ctx.daemonEnv.PATH ?? defaultHandlerPath).split(':').filter((dir) => dir.startsWith('/'));
}

/**
 * The account a root daemon runs a handler as when its service names no `user`: never root by
 * accident. `"user": "root"` is the one way to a root handler.
 */
export const defaultHandlerUser = 'nobody';

/**
 * Who the handler runs as. A root daemon switches every handler: to `user`, else to
 * defaultHandlerUser (with `group` if given, else that user's primary group); a service that
 * needs root says `"user": "root"`. A daemon that is not root runs handlers as itself.
 */
function resolveCredentials(
  value: ServiceFile,
  ctx: ResolveContext,
  note: Note,
): { switchTo: ServiceSpec['switchTo']; identity: Identity; runAs: RunAs } {
  const isDefaultUser = value.user === undefined;
  if (isDefaultUser && value.group === undefined && !ctx.isRoot) {
    const runAs = describeRunAs(ctx.self, ctx.self.gid, 'default', ctx);
    return { switchTo: null, identity: ctx.self, runAs };
  }
  const userKey = value.user ?? (ctx.isRoot ? defaultHandlerUser : undefined);
  const user = userKey === undefined ? null : ctx.accounts.user(userKey);
  if (user === null && !isDefaultUser) note('/user', `unknown user ${JSON.stringify(value.user)}`);
  else if (user === null && userKey !== undefined)
    note(
      '/user',
      `no "user" given and the account "${defaultHandlerUser}" (what a root daemon runs such a handler as) does not exist; name the user, or "root" to run the handler as root`,
    );
  const group = value.group === undefined ? null : ctx.accounts.group(value.group);
  if (value.group !== undefined && group === null)
    note('/group', `unknown group ${JSON.stringify(value.group)}`);
  const identity: Identity =
    user === null ? ctx.self : { uid: user.uid, gid: user.gid, user: user.name, home: user.home };
  const uid = identity.uid;
  const gid = group?.gid ?? identity.gid;
  const runAs = describeRunAs(identity, gid, isDefaultUser ? 'default' : 'file', ctx);
  if (!ctx.isRoot) {
    if (user !== null && uid !== ctx.self.uid)
      note('/user', `changing user needs a root daemon (this one runs as uid ${ctx.self.uid})`);
    if (group !== null && gid !== ctx.self.gid)
      note('/group', `changing group needs a root daemon (this one runs as gid ${ctx.self.gid})`);
    return { switchTo: null, identity, runAs };
  }
  return { switchTo: { uid, gid }, identity, runAs };
}

function describeRunAs(
  identity: Identity,
  gid: number,
  from: RunAs['from'],
  ctx: ResolveContext,
): RunAs {
  const group = ctx.accounts.group(gid)?.name ?? null;
  return { user: identity.user, uid: identity.uid, group, gid, from };
}

function resolveOwner(
  userKey: string | number | undefined,
  groupKey: string | number | undefined,
  at: string,
  ctx: ResolveContext,
  note: Note,
): { uid: number | null; gid: number | null } {
  const user = userKey === undefined ? null : ctx.accounts.user(userKey);
  if (userKey !== undefined && user === null)
    note(`${at}/user`, `unknown user ${JSON.stringify(userKey)}`);
  const group = groupKey === undefined ? null : ctx.accounts.group(groupKey);
  if (groupKey !== undefined && group === null)
    note(`${at}/group`, `unknown group ${JSON.stringify(groupKey)}`);
  if (!ctx.isRoot && user !== null && user.uid !== ctx.self.uid) {
    note(
      `${at}/user`,
      `changing a socket's owner needs a root daemon (this one runs as uid ${ctx.self.uid})`,
    );
  }
  return { uid: user?.uid ?? null, gid: group?.gid ?? null };
}

function buildBaseEnv(
  value: ServiceFile,
  identity: Identity,
  daemonEnv: ResolveContext['daemonEnv'],
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: defaultHandlerPath,
    HOME: identity.home,
    USER: identity.user,
    LOGNAME: identity.user,
  };
  for (const name of value.passEnv) {
    const passed = daemonEnv[name];
    if (passed !== undefined) env[name] = passed;
  }
  return Object.assign(env, value.env);
}
