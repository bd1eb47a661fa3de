// The package as an admin gets it: `npm pack` (whose prepack builds dist/), `npm install -g` of
// the tarball into a temporary prefix (the native addon is built by the install script), then
// the installed `socketeer` serves a real connection. The dependencies come from npm's cache
// (`--prefer-offline`), or from the registry where the cache lacks them.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  cleanEnv,
  exchange,
  makeConfDir,
  root,
  spawnClean,
  withDeadline,
} from '../helpers/daemon.js';

const version = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
).version;

/** What never goes into the copy that is packed: built output, dependencies, scratch. */
const notCopied = new Set(['node_modules', 'dist', 'build', '.git', '.tap', 'coverage']);

function npm(args: string[], cwd: string): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync('npm', args, {
    cwd,
    encoding: 'utf8',
    env: cleanEnv({ npm_config_update_notifier: 'false', npm_config_fund: 'false' }),
    timeout: 300000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Packs a copy of the worktree (its own dist/ rebuilt by prepack there, so that other tests
 * reading this worktree's dist/ meanwhile are not disturbed) and installs it globally.
 */
function packAndInstall(dir: string): { tarball: string; prefix: string; files: string[] } {
  const source = join(dir, 'source');
  cpSync(root, source, {
    recursive: true,
    filter: (from) =>
      !notCopied.has(from.slice(root.length).replace(/^\/+/, '').split('/')[0] ?? ''),
  });
  symlinkSync(join(root, 'node_modules'), join(source, 'node_modules'));
  const packed = npm(['pack', '--json', '--pack-destination', dir], source);
  if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
  }[];
  if (info === undefined) throw new Error('npm pack printed no package');
  const tarball = join(dir, info.filename);
  const prefix = join(dir, 'prefix');
  const installed = npm(
    ['install', '-g', '--prefer-offline', '--no-audit', '--prefix', prefix, tarball],
    dir,
  );
  if (installed.code !== 0) throw new Error(`npm install -g failed: ${installed.stderr}`);
  return { tarball, prefix, files: info.files.map((f) => f.path).sort() };
}

t.test('npm pack + npm install -g: a working socketeer with the native addon', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socketeer-pack-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { tarball, prefix, files } = packAndInstall(dir);

  t.equal(tarball, join(dir, `socketeer-${version}.tgz`));
  t.ok(files.includes('dist/src/main.js'), 'the CLI is shipped, built by prepack');
  t.ok(files.includes('schema/service.schema.json'));
  t.ok(files.includes('native/build.mjs') && files.includes('binding.gyp'));
  t.ok(files.includes('native/addon.c'));
  t.ok(files.includes('units/socketeer.service') && files.includes('units/user/socketeer.service'));
  t.ok(files.includes('man/man8/socketeer.8') && files.includes('man/man5/socketeer.conf.5'));
  t.same(
    files.filter((f) => /^(test|src|benchmarks)\/|\.map$|\.ts$|bench-spawn/.test(f)),
    [],
    'no tests, sources, maps or benchmarks',
  );

  const home = join(prefix, 'lib/node_modules/socketeer');
  t.ok(existsSync(join(home, 'build/Release/socketeer_native.node')), 'the addon was built');
  const bin = join(prefix, 'bin/socketeer');
  const shown = spawnSync(bin, ['--version'], { encoding: 'utf8', env: cleanEnv() });
  t.equal(shown.stdout, `${version}\n`);
  t.equal(shown.status, 0);

  for (const page of ['man8/socketeer.8', 'man5/socketeer.conf.5']) {
    const shown = spawnSync('man', ['--warnings', '-l', join(prefix, 'share/man', page)], {
      encoding: 'utf8',
      env: cleanEnv({ MANWIDTH: '100', PAGER: 'cat' }),
    });
    t.equal(shown.stderr, '', `man -l ${page}`);
    t.match(shown.stdout, /^SOCKETEER/);
  }
  const unitDir = join(dir, 'units');
  const units = spawnSync(bin, ['install-units', '--dir', unitDir], {
    encoding: 'utf8',
    env: cleanEnv(),
  });
  t.equal(units.status, 0, units.stderr);
  const unit = readFileSync(join(unitDir, 'socketeer.service'), 'utf8');
  t.match(unit, `\nExecStart=${process.execPath} ${join(home, 'dist/src/main.js')} serve\n`);

  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const daemon = spawnClean([
    bin,
    'serve',
    '--config-dir',
    conf.confDir,
    '--spawner',
    'native',
    '--control',
    join(conf.dir, 'control.sock'),
  ]);
  let stdout = '';
  let stderr = '';
  daemon.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.once('exit', resolve));
  const ready = await withDeadline(
    new Promise<string>((resolve, reject) => {
      daemon.stdout?.on('data', (c: Buffer) => {
        stdout += c.toString();
        const line = /^ready: (.*)$/m.exec(stdout);
        if (line !== null) resolve(line[1] ?? '');
      });
      void exited.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    }),
    60000,
    'the installed daemon to be ready',
  );
  const port = Number(/^echo=tcp:127\.0\.0\.1:(\d+)$/.exec(ready)?.[1]);
  t.ok(port > 0, `ready line names the port: ${ready}`);
  const echoed = await exchange({ host: '127.0.0.1', port }, 'through the installed package\n');
  t.equal(echoed.toString(), 'through the installed package\n');
  t.match(stderr, /"event":"ready".*"spawner":"native"/);
  daemon.kill('SIGTERM');
  t.equal(await withDeadline(exited, 30000, 'serve to exit'), 0);
});
