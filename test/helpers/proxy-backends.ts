// Backends and clients for the proxy tests: real servers on Unix sockets (lighttpd, socat, small
// node servers in the test process), clients that count and hash what they get.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, watch } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { withDeadline } from './daemon.js';

export type Target = { host: string; port: number } | { path: string };

/** Resolves once `path` exists (a backend bound its socket), with a deadline. */
export function waitForPath(path: string, ms = 20000): Promise<void> {
  return withDeadline(
    new Promise<void>((resolve) => {
      if (existsSync(path)) return resolve();
      const watcher = watch(dirname(path), () => {
        if (!existsSync(path)) return;
        watcher.close();
        resolve();
      });
      if (existsSync(path)) {
        watcher.close();
        resolve();
      }
    }),
    ms,
    `${basename(path)} to appear`,
  );
}

/** A backend process, ended at teardown. */
export async function startBackend(argv: string[], socketPath: string): Promise<ChildProcess> {
  const child = spawn(argv[0] ?? '', argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPath(socketPath);
  return child;
}

/** A node server on a Unix socket, `allowHalfOpen`, closed at teardown. */
export async function startUnixServer(
  path: string,
  onConnection: (socket: Socket) => void,
): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve) => server.listen({ path, backlog: 1024 }, resolve));
  return server;
}

/** Reads to EOF, then answers `answer:<what it read>` and ends (needs the half-close passed on). */
export function answerAtEof(socket: Socket): void {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('end', () => socket.end(`answer:${Buffer.concat(chunks).toString()}`));
  socket.on('error', () => socket.destroy());
}

/** Echoes, passing the client's end of writing on as its own. */
export function echo(socket: Socket): void {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
}

export function connectTo(target: Target): Socket {
  return 'path' in target ? connect(target.path) : connect(target.port, target.host);
}

export interface Exchange {
  readonly received: Buffer;
  /** The socket's own port (TCP), to check a PROXY header against. */
  readonly localPort: number | undefined;
}

/**
 * Writes `data`, ends writing, and reads until the other side ends: what came back. Rejects on
 * an error, or when the connection closes without an end (a reset).
 */
export function sendAndReadToEnd(
  target: Target,
  data: Buffer | string,
  ms = 120000,
): Promise<Exchange> {
  return withDeadline(
    new Promise<Exchange>((resolve, reject) => {
      const socket = connectTo(target);
      const chunks: Buffer[] = [];
      socket.on('connect', () => socket.end(data));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () =>
        resolve({ received: Buffer.concat(chunks), localPort: socket.localPort }),
      );
      socket.on('error', reject);
    }),
    ms,
    'an exchange through the proxy',
  );
}

/** Connects and waits for the proxy to close the connection: what was read, and how it closed. */
export function waitForClose(
  target: Target,
  ms = 30000,
): Promise<{ data: string; error: string | null }> {
  return withDeadline(
    new Promise((resolve) => {
      const socket = connectTo(target);
      let data = '';
      let error: string | null = null;
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (data += chunk));
      socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      socket.on('close', () => resolve({ data, error }));
      socket.on('end', () => socket.end());
    }),
    ms,
    'the proxy to close the connection',
  );
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Fetches a URL with curl through `target` (TCP): the body's sha256 and size, or the error. */
export function curlSha256(target: { host: string; port: number }, path: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('curl', [
      '-sS',
      '--max-time',
      '120',
      `http://${target.host}:${target.port}${path}`,
    ]);
    const hash = createHash('sha256');
    let size = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      hash.update(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) =>
      resolve(code === 0 ? `${size} ${hash.digest('hex')}` : `curl ${code}: ${stderr.trim()}`),
    );
  });
}
