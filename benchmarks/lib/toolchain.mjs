// Build the bench's C programs and find (or, as root, install) the peer servers.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

const say = (line) => process.stderr.write(`bench: ${line}\n`);

/** Where each peer's program comes from on Debian. */
export const peerPackages = {
  xinetd: { program: 'xinetd', package: 'xinetd' },
  tcpserver: { program: 'tcpserver', package: 'ucspi-tcp' },
  'systemd-socket-activate': { program: 'systemd-socket-activate', package: 'systemd' },
};

/** Packages the bench installs by itself; systemd is never installed behind the user's back. */
const installable = new Set(['xinetd', 'ucspi-tcp']);

function cc(args) {
  const result = spawnSync('cc', args, { encoding: 'utf8' });
  return {
    ok: result.status === 0,
    message: (result.stderr || result.error?.message || '').trim(),
  };
}

/**
 * Compiles loadgen, null-server, vfork-server, notify-sink and handler into outDir. The handler is linked statically when
 * the toolchain can (less exec cost, equal for every server). Returns paths, or { error }.
 */
export function buildPrograms(sourceDir, outDir) {
  const paths = {};
  for (const name of ['loadgen', 'null-server', 'vfork-server', 'notify-sink']) {
    paths[name] = join(outDir, name);
    const built = cc(['-O2', '-Wall', '-o', paths[name], join(sourceDir, `${name}.c`)]);
    if (!built.ok) return { error: `cc ${name}.c failed: ${built.message}` };
  }
  paths.handler = join(outDir, 'handler');
  const source = join(sourceDir, 'handler.c');
  let linkage = 'static';
  if (!cc(['-O2', '-static', '-o', paths.handler, source]).ok) {
    linkage = 'dynamic';
    const built = cc(['-O2', '-o', paths.handler, source]);
    if (!built.ok) return { error: `cc handler.c failed: ${built.message}` };
  }
  return { paths, handlerLinkage: linkage };
}

/** Absolute path of an executable on PATH or in the sbin directories, or null. */
export function findProgram(name) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter((d) => d !== '')) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Finds the wanted peers' programs; installs the missing installable packages with apt-get when
 * running as root (saying so first). Returns { paths: {id: path}, skipped: {id: reason} }.
 */
export function ensurePeers(ids) {
  const wanted = ids.filter((id) => peerPackages[id] !== undefined);
  const missing = wanted.filter((id) => findProgram(peerPackages[id].program) === null);
  const packages = [...new Set(missing.map((id) => peerPackages[id].package))].filter((p) =>
    installable.has(p),
  );
  let installNote = null;
  if (packages.length > 0) installNote = installPackages(packages);

  const paths = {};
  const skipped = {};
  for (const id of wanted) {
    const { program, package: pkg } = peerPackages[id];
    const path = findProgram(program);
    if (path !== null) paths[id] = path;
    else
      skipped[id] =
        `${program} not found (Debian package ${pkg})${installNote ? `; ${installNote}` : ''}`;
  }
  return { paths, skipped };
}

/** apt-get update && apt-get install -y PACKAGES, output to stderr; returns null or why not. */
function installPackages(packages) {
  if (process.getuid?.() !== 0) return 'not root, so not installing it';
  if (findProgram('apt-get') === null) return 'no apt-get to install it with';
  const command = `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  say(`missing peers; running: ${command}`);
  const result = spawnSync('sh', ['-c', command], {
    stdio: ['ignore', 2, 2],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.status === 0) return null;
  return `\`${command}\` failed (${result.signal ?? `exit ${result.status}`})`;
}
