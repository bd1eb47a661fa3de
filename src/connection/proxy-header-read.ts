import { loadNativeAddon } from '../spawn/native-addon.js';
import { parseProxyHeader, proxyPeekSize, type ProxySource } from './proxy-header-parse.js';

/** The addon's functions that read a PROXY header (native/proxy-header.c, readable.c). */
export interface ProxyHeaderAddon {
  /** Up to `max` bytes waiting, unread; empty at EOF; null when none wait. Throws. */
  proxyPeek(fd: number, max: number): Buffer | null;
  /** Reads and drops `count` bytes a peek showed waiting; returns how many it dropped. Throws. */
  proxyConsume(fd: number, count: number): number;
  watchReadable(fd: number, onReadable: () => void): void;
  unwatchReadable(fd: number): void;
}

const needed = ['proxyPeek', 'proxyConsume', 'watchReadable', 'unwatchReadable'] as const;

/** The addon when it is built and has these functions, else null (the addon is cached). */
export function loadProxyHeaderAddon(): ProxyHeaderAddon | null {
  const addon = loadNativeAddon() as Record<string, unknown> | null;
  if (addon === null || needed.some((name) => typeof addon[name] !== 'function')) return null;
  return addon as unknown as ProxyHeaderAddon;
}

export type ProxyHeaderResult =
  /** The header was read to its last byte; `source` null: keep the connection's own addresses. */
  | { readonly kind: 'read'; readonly source: ProxySource | null }
  | { readonly kind: 'failed'; readonly detail: string };

export interface ProxyHeaderRequest {
  readonly fd: number;
  readonly timeoutMs: number;
  /** Called once, unless cancelled first. */
  readonly onResult: (result: ProxyHeaderResult) => void;
}

/**
 * Reads the PROXY header at the start of the unread socket `fd` and not one byte more: it peeks
 * (MSG_PEEK), and consumes only bytes that belong to the header, so the handler's stdin starts
 * at the client's first byte. Waits for more bytes with a one-shot readable watch, up to
 * `timeoutMs` in all. Returns a cancel function (the caller then closes `fd`); never throws.
 */
export function readProxyHeader(addon: ProxyHeaderAddon, request: ProxyHeaderRequest): () => void {
  const { fd, onResult } = request;
  let read: Buffer = Buffer.alloc(0);
  let done = false;
  const finish = (result: ProxyHeaderResult): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    addon.unwatchReadable(fd);
    onResult(result);
  };
  const step = (): void => {
    if (done) return;
    try {
      const next = readStep(addon, fd, read);
      if (next.kind === 'wait') addon.watchReadable(fd, step);
      else if (next.kind === 'more') {
        read = next.read;
        step();
      } else finish(next);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      finish({ kind: 'failed', detail: `reading the PROXY header failed: ${code}` });
    }
  };
  const seconds = request.timeoutMs / 1000;
  const timer = setTimeout(
    () => finish({ kind: 'failed', detail: `no complete PROXY header within ${seconds} s` }),
    request.timeoutMs,
  );
  step();
  return () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    addon.unwatchReadable(fd);
  };
}

type Step =
  | ProxyHeaderResult
  | { readonly kind: 'wait' }
  /** All the bytes peeked belong to the header and were consumed; peek again. */
  | { readonly kind: 'more'; readonly read: Buffer };

/** One peek after the header bytes already consumed (`read`). Throws the addon's errors. */
function readStep(addon: ProxyHeaderAddon, fd: number, read: Buffer): Step {
  const peeked = addon.proxyPeek(fd, proxyPeekSize(read));
  if (peeked === null) return { kind: 'wait' };
  if (peeked.length === 0) {
    return { kind: 'failed', detail: 'the connection closed before a complete PROXY header' };
  }
  const bytes = Buffer.concat([read, peeked]);
  const parsed = parseProxyHeader(bytes);
  if (parsed.kind === 'invalid') return { kind: 'failed', detail: parsed.detail };
  const count = parsed.kind === 'complete' ? parsed.length - read.length : peeked.length;
  if (addon.proxyConsume(fd, count) !== count) {
    return { kind: 'failed', detail: 'the PROXY header bytes went away while read' };
  }
  return parsed.kind === 'complete'
    ? { kind: 'read', source: parsed.source }
    : { kind: 'more', read: bytes };
}
