import { join } from 'node:path';

/** The default config dir: /etc/socketeer/conf.d for root, the XDG config dir otherwise. */
export function defaultConfigDir(input: {
  readonly isRoot: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly home: string;
}): string {
  if (input.isRoot) return '/etc/socketeer/conf.d';
  const xdg = input.env.XDG_CONFIG_HOME;
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(input.home, '.config');
  return join(base, 'socketeer', 'conf.d');
}
