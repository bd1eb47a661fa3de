// `npm install` step: builds the native spawner with node-gyp against the headers installed
// beside the running Node (<prefix>/include/node), so that no header download is needed (this
// machine reaches no host but the package registries). Never fails the install: without a
// compiler or headers, socketeer runs with the portable spawner, and this says why.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const prefix = dirname(dirname(process.execPath));
const hasLocalHeaders = existsSync(join(prefix, 'include', 'node', 'node_api.h'));
const args = ['rebuild'];
if (!process.env.npm_config_nodedir && hasLocalHeaders) args.push(`--nodedir=${prefix}`);
const gyp = process.env.npm_config_node_gyp;
const [command, ...rest] = gyp ? [process.execPath, gyp, ...args] : ['node-gyp', ...args];
const result = spawnSync(command, rest, { stdio: 'inherit' });
if (result.status !== 0) {
  const why = result.error ? result.error.message : `node-gyp exited with ${result.status}`;
  process.stderr.write(
    `socketeer: native spawner not built (${why}; see above); the portable spawner will be used\n`,
  );
}
