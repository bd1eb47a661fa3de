import { compilePrefixList, parseCidr, type Cidr } from '../access/cidr.js';
import type { ProxyHeaderSpec, ServiceFile } from './types.js';

/**
 * `socket.proxyProtocol`, `socket.proxyHeaderTimeoutSec` and `socket.proxyTrusted`: null when
 * no header is read. Problems go to `note` (a bad prefix; `accept: false`, whose process reads
 * its own connections).
 */
export function resolveProxyHeader(
  value: ServiceFile,
  note: (pointer: string, message: string) => void,
): ProxyHeaderSpec | null {
  const { proxyProtocol, proxyHeaderTimeoutSec, proxyTrusted } = value.socket;
  if (!proxyProtocol) return null;
  if (value.accept === false) {
    note(
      '/socket/proxyProtocol',
      'needs accept: true (an accept: false process reads its connections itself)',
    );
  }
  const cidrs: Cidr[] = [];
  (proxyTrusted ?? []).forEach((text, i) => {
    const parsed = parseCidr(text);
    if (parsed.ok) cidrs.push(parsed.cidr);
    else note(`/socket/proxyTrusted/${i}`, parsed.message);
  });
  return {
    timeoutMs: Math.round(proxyHeaderTimeoutSec * 1000),
    trusted: proxyTrusted === undefined ? null : compilePrefixList(cidrs),
    trustedText: proxyTrusted ?? null,
  };
}
