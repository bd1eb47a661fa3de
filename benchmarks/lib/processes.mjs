// Starting, watching and stopping the processes the bench owns. Every daemon starts in its own
// process group (detached) so it and any handler still in that group can be killed by id.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { listProcesses } from './proc-stats.mjs';

/** Children started by the bench and not yet known to have exited. */
const live = new Set();
/** Every process group the bench created (leader pid), for the final leftover check. */
const groups = new Set();
/** Set once the bench is ending everything: nothing new may start after that. */
let stopping = false;

/** True for the leader pid of a process group the bench created. */
export function isBenchGroup(pgrp) {
  return groups.has(pgrp);
}

/** True once killEverything has been called. */
export function isStopping() {
  return stopping;
}

function refuseWhenStopping() {
  if (stopping) throw new Error('the bench is stopping');
}

/** Starts a daemon with stdout piped (for its ready line) and stderr appended to logPath. */
export function startDaemon({ argv, env, logPath }) {
  refuseWhenStopping();
  const logFd = openSync(logPath, 'a');
  const child = spawn(argv[0], argv.slice(1), {
    detached: true,
    stdio: ['ignore', 'pipe', logFd],
    env: env ?? process.env,
  });
  closeSync(logFd);
  track(child, { isGroupLeader: true });
  return child;
}

/** Runs a short-lived program (the loadgen) and resolves with { code, signal, stdout, stderr }. */
export function runProgram(argv) {
  refuseWhenStopping();
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child, { isGroupLeader: false });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', (error) =>
      resolve({ code: null, signal: null, stdout, stderr: error.message }),
    );
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function track(child, { isGroupLeader }) {
  if (child.pid === undefined) return;
  live.add(child);
  if (isGroupLeader) groups.add(child.pid);
  child.once('exit', () => live.delete(child));
}

/**
 * Resolves with the first stdout line matching `pattern` (then keeps draining stdout so the
 * daemon never blocks on a full pipe); rejects if the daemon exits first or the deadline passes.
 */
export function waitForLine(child, pattern, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let done = false;
    const finish = (error, line) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      if (error === null) resolve(line);
      else reject(error);
    };
    const onExit = (code, signal) =>
      finish(new Error(`exited (${signal ?? `code ${code}`}) before it was ready`));
    const timer = setTimeout(
      () => finish(new Error(`no ready line within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.once('exit', onExit);
    child.stdout.on('data', (chunk) => {
      if (done) return;
      buffered += chunk;
      const line = buffered.split('\n').find((candidate) => pattern.test(candidate));
      if (line !== undefined) finish(null, line);
    });
  });
}

/** Connects once, reads to EOF; resolves with the bytes read, rejects on a socket error. */
export function fetchOnce(port, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timed out reading a reply')));
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      socket.destroy();
      resolve(text);
    });
  });
}

/**
 * Polls `fetchOnce` until the reply is `expected` (the server is up and its handler works) or
 * the deadline passes; every try is a real connection, so this also smoke-tests the server.
 */
export async function waitForReply(port, expected, { timeoutMs, child }) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`exited (${child.signalCode ?? `code ${child.exitCode}`}) before replying`);
    }
    try {
      const reply = await fetchOnce(port);
      if (reply === expected) return;
      last = `replied ${JSON.stringify(reply)}, expected ${JSON.stringify(expected)}`;
    } catch (error) {
      last = error.message;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no good reply on 127.0.0.1:${port} within ${timeoutMs} ms (${last})`);
}

/** Asks the kernel for a free loopback port (for peers that cannot bind port 0 and tell). */
export function findFreePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function hasExited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child, timeoutMs) {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function killGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is already empty
  }
}

/**
 * SIGTERM to the daemon, SIGKILL to its group if it has not exited after graceMs, then
 * SIGKILL to whatever is left in its group. Resolves with how it ended.
 */
export async function stopDaemon(child, graceMs = 5000) {
  if (!hasExited(child)) child.kill('SIGTERM');
  const clean = await waitForExit(child, graceMs);
  if (!clean) {
    killGroup(child.pid, 'SIGKILL');
    await waitForExit(child, graceMs);
  }
  killGroup(child.pid, 'SIGKILL');
  return { forced: !clean, exitCode: child.exitCode, signal: child.signalCode };
}

/**
 * Ends every bench child (Ctrl-C, fatal error): daemons get SIGTERM and, after graceMs, SIGKILL
 * to their whole group; anything else gets SIGKILL. Resolves once all have been reaped.
 */
export async function killEverything(graceMs = 1000) {
  stopping = true;
  const children = [...live];
  await Promise.all(
    children.map((child) => {
      if (groups.has(child.pid)) return stopDaemon(child, graceMs);
      child.kill('SIGKILL');
      return waitForExit(child, graceMs);
    }),
  );
}

/**
 * Live (not zombie) processes the bench left behind: members of a group it created, children of
 * the bench itself, or anything running one of `programs` (absolute paths of its binaries).
 */
export function findLeftovers(programs) {
  return listProcesses().filter(
    (proc) =>
      proc.pid !== process.pid &&
      proc.state !== 'Z' &&
      (groups.has(proc.pgrp) || proc.ppid === process.pid || programs.includes(proc.exe)),
  );
}
