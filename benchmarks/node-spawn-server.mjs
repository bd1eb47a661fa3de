// The minimal Node per-connection spawn server: the `node-spawn (reference)` row of the bench and
// a stand-in with socketeer's CLI contract. It takes the same arguments as
// `socketeer serve --config-dir DIR` (other flags are ignored), reads DIR/NAME.json files of the
// form { "listen": "tcp:127.0.0.1:0", "exec": ["/abs/handler", ...] }, binds them all, prints
// `ready: NAME=tcp:HOST:PORT ...` and, per connection, spawns the handler with the socket as
// fd 0 and 1 (fd 2 to /dev/null) and drops its own copy. SIGTERM ends it with exit 0.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { 'config-dir': { type: 'string' } },
  strict: false,
  allowPositionals: true,
});
const configDir = values['config-dir'];
if (typeof configDir !== 'string') {
  process.stderr.write('node-spawn-server: fatal: --config-dir DIR is required\n');
  process.exit(100);
}

/** Reads every DIR/NAME.json as { name, host, port, exec }. */
function readServices(dir) {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => {
      const spec = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      const match = /^tcp:(.+):(\d+)$/.exec(spec.listen);
      if (match === null) throw new Error(`${file}: /listen: only tcp:HOST:PORT is supported`);
      return { name: basename(file, '.json'), host: match[1], port: Number(match[2]), ...spec };
    });
}

/** Hands one paused connection to a fresh handler process, then closes our copy. */
function spawnHandler(service, socket) {
  try {
    const child = spawn(service.exec[0], service.exec.slice(1), {
      stdio: [socket, socket, 'ignore'],
      env: { PATH: '/usr/bin:/bin' },
    });
    child.on('error', (error) => process.stderr.write(`spawn-failed: ${error.message}\n`));
  } catch (error) {
    process.stderr.write(`spawn-failed: ${String(error)}\n`);
  }
  socket.destroy();
}

/** Binds one service; resolves with its `NAME=ADDR` pair once listening. */
function listenService(service) {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ pauseOnConnect: true }, (socket) =>
      spawnHandler(service, socket),
    );
    server.once('error', reject);
    server.listen({ host: service.host, port: service.port }, () => {
      const { address, port } = server.address();
      servers.push(server);
      resolve(`${service.name}=tcp:${address}:${port}`);
    });
  });
}

const servers = [];
process.on('SIGTERM', () => {
  for (const server of servers) server.close();
  process.exit(0);
});

try {
  const pairs = await Promise.all(readServices(configDir).map(listenService));
  process.stdout.write(`ready: ${pairs.join(' ')}\n`);
} catch (error) {
  process.stderr.write(`node-spawn-server: fatal: ${error.message}\n`);
  process.exit(111);
}
