import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExitCode, FatalError, describeSystemError } from '../model/errors.js';

/** `--metrics HOST:PORT`: where the metrics are served over HTTP. */
export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

export interface MetricsHttpOptions {
  readonly address: MetricsAddress;
  /** The body of GET /metrics, made afresh for every request. */
  readonly render: () => string;
  readonly contentType: string;
}

export interface MetricsHttpServer {
  /** `http://HOST:PORT/metrics`, the port resolved. */
  readonly url: string;
  close(): Promise<void>;
}

/** Bounds: a scraper asks one small GET at a time. */
const limits = { connections: 16, timeoutMs: 5000, headerBytes: 8192, headers: 32 } as const;

/** `127.0.0.1:9101`, `[::1]:9101`, `localhost:0`; null for anything else (pure). */
export function parseMetricsAddress(text: string): MetricsAddress | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) return null;
  return { host: m[1] ?? m[2] ?? '', port };
}

/** `--metrics TEXT` as an address, null when not given; exit 100 for a bad one. */
export function metricsAddressOrFail(text: string | undefined): MetricsAddress | null {
  if (text === undefined) return null;
  const address = parseMetricsAddress(text);
  if (address !== null) return address;
  const example = 'HOST:PORT, e.g. 127.0.0.1:9101 or [::1]:9101';
  throw new FatalError(`--metrics ${text}: must be ${example}`, ExitCode.permanent);
}

/**
 * Serves GET (and HEAD) /metrics with node:http: no request body is read, every response
 * closes its connection, idle and slow connections are cut after 5 s, at most 16 at once;
 * another path is 404, another method 405. A failed bind is fatal (exit 111).
 */
export async function startMetricsServer(options: MetricsHttpOptions): Promise<MetricsHttpServer> {
  const server = createServer({ maxHeaderSize: limits.headerBytes }, (req, res) =>
    answer(req, res, options),
  );
  server.maxConnections = limits.connections;
  server.maxHeadersCount = limits.headers;
  server.headersTimeout = limits.timeoutMs;
  server.requestTimeout = limits.timeoutMs;
  server.keepAliveTimeout = 0;
  server.setTimeout(limits.timeoutMs, (socket) => socket.destroy());
  const { host, port } = options.address;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => {
      const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      const why = describeSystemError(error);
      reject(new FatalError(`--metrics ${where}: unable to listen: ${why}`, ExitCode.temporary));
    });
    server.listen({ host, port }, resolve);
  });
  server.on('error', () => undefined); // after listen: per-connection errors close that connection
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${shown}:${bound.port}/metrics`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function answer(req: IncomingMessage, res: ServerResponse, options: MetricsHttpOptions): void {
  res.shouldKeepAlive = false;
  const path = (req.url ?? '').split('?')[0];
  if (path !== '/metrics')
    return reply(res, { status: 404, body: 'not found: the metrics are at /metrics\n' });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return reply(res, { status: 405, body: 'method not allowed\n' });
  }
  const body = options.render();
  reply(res, { status: 200, body, type: options.contentType, headOnly: req.method === 'HEAD' });
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly type?: string;
  readonly headOnly?: boolean;
}

function reply(res: ServerResponse, r: Reply): void {
  const bytes = Buffer.from(r.body);
  const type = r.type ?? 'text/plain; charset=utf-8';
  res.writeHead(r.status, { 'Content-Type': type, 'Content-Length': bytes.length });
  res.end(r.headOnly === true ? undefined : bytes);
}
