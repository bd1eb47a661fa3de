// The man pages, built from the README by scripts/man.mjs (at prepack), render with man(1)
// without a groff warning and carry every command and every service file key.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadServiceSchema } from '../../src/config/validate.js';
import { cleanEnv, cli, root } from '../helpers/daemon.js';

/** Renders a page the way `man -l` shows it, 200 columns wide (no hyphenation of names). */
function render(file: string): { code: number | null; text: string; warnings: string } {
  const result = spawnSync('man', ['--warnings', '-l', file], {
    encoding: 'utf8',
    env: cleanEnv({ MANWIDTH: '200', MAN_KEEP_FORMATTING: '', PAGER: 'cat' }),
    timeout: 30000,
  });
  // man's own formatting: strip overstrike (bold, underline) to plain text
  const text = result.stdout.replace(/.\x08/g, '');
  return { code: result.status, text, warnings: result.stderr };
}

t.test('socketeer(8) and socketeer.conf(5): built from the README, rendered cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socketeer-man-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const built = spawnSync(process.execPath, [join(root, 'scripts/man.mjs'), dir], {
    encoding: 'utf8',
  });
  t.equal(built.stderr, '');
  t.equal(built.status, 0);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    man: string[];
    version: string;
    files: string[];
  };
  t.same(pkg.man, ['./man/man8/socketeer.8', './man/man5/socketeer.conf.5']);
  t.ok(pkg.files.includes('man'), 'shipped');

  const eight = render(join(dir, 'man8/socketeer.8'));
  t.equal(eight.warnings, '');
  t.equal(eight.code, 0);
  t.match(eight.text, /^SOCKETEER\(8\) +socketeer +SOCKETEER\(8\)\n/);
  t.match(eight.text, '\nNAME\n       socketeer - inetd-style per-connection super-server\n');
  t.match(eight.text, `socketeer ${pkg.version}`);
  const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8', env: cleanEnv() });
  const commands = [...help.stdout.matchAll(/^ {2}socketeer (\S+)/gm)].map((m) => m[1] ?? '');
  t.ok(commands.length > 10);
  for (const command of commands) t.match(eight.text, `socketeer ${command}`, command);
  for (const heading of ['EXIT CODES', 'SIGNALS', 'LOGS', 'RUNNING UNDER SYSTEMD', 'METRICS'])
    t.match(eight.text, `\n${heading}\n`);

  const five = render(join(dir, 'man5/socketeer.conf.5'));
  t.equal(five.warnings, '');
  t.equal(five.code, 0);
  t.match(five.text, /^SOCKETEER.CONF\(5\) +socketeer +SOCKETEER.CONF\(5\)\n/);
  const schema = loadServiceSchema() as { properties: Record<string, unknown> };
  for (const key of Object.keys(schema.properties)) {
    if (key !== '$schema') t.match(five.text, key, key);
  }
  t.match(five.text, 'limits.perSource');
  t.match(five.text, 'TCPREMOTEIP');
});
