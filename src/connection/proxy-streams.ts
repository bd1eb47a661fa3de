import { connect, type Socket } from 'node:net';
import type { ProxyTarget } from '../config/types.js';
import type { ProxyCopy, ProxyCopyRequest, ProxyCopyResult } from './proxy-copy.js';

/**
 * The portable proxy: the client and a net.Socket to the target piped both ways, both with
 * `allowHalfOpen`, so a client's end of writing becomes the target's (and the other way) while
 * the other direction goes on. Bytes pass through JS buffers: the addon's splice does not.
 */
export function copyWithStreams(request: ProxyCopyRequest): ProxyCopy {
  const client = request.incoming.takeSocket();
  const target = connect({ ...connectOptionsOf(request.target), allowHalfOpen: true });
  const headerBytes = request.header?.length ?? 0;
  let connected = false;
  let failure: { code: string; syscall: string } | null = null;
  let resolve: (result: ProxyCopyResult) => void = () => undefined;
  const ended = new Promise<ProxyCopyResult>((r) => (resolve = r));
  const end = (code: string | null, syscall: string): void => {
    failure ??= code === null ? null : { code, syscall };
    client.destroy();
    target.destroy();
  };
  const timer = setTimeout(() => end('ETIMEDOUT', 'connect'), request.connectTimeoutMs);
  target.once('connect', () => {
    connected = true;
    clearTimeout(timer);
    if (request.header !== null) target.write(request.header);
    client.pipe(target);
    target.pipe(client);
    if (request.idleTimeoutMs !== null) {
      for (const socket of [client, target]) {
        socket.setTimeout(request.idleTimeoutMs, () => end('ETIMEDOUT', 'idle'));
      }
    }
  });
  const onError = (side: 'client' | 'target') => (error: NodeJS.ErrnoException) =>
    end(error.code ?? 'EIO', connected ? side : (error.syscall ?? 'connect'));
  client.on('error', onError('client'));
  target.on('error', onError('target'));
  void Promise.all([closed(client), closed(target)]).then(() => {
    clearTimeout(timer);
    resolve({
      connected,
      bytesFromClient: Math.max(0, target.bytesWritten - headerBytes),
      bytesToClient: client.bytesWritten,
      code: failure?.code ?? null,
      syscall: failure?.syscall ?? null,
    });
  });
  return { close: () => end(null, ''), ended, engine: 'streams' };
}

function connectOptionsOf(target: ProxyTarget): { path: string } | { host: string; port: number } {
  if (target.kind === 'tcp') return { host: target.host, port: target.port };
  return { path: target.abstract ? `\0${target.path}` : target.path };
}

function closed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((r) => socket.once('close', () => r()));
}
