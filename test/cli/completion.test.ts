// `socketeer completion` in a real bash: commands, options, and the running daemon's service
// names; `-h` and `-V`.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DaemonUnderTest, cleanEnv, cli, makeConfDir } from '../helpers/daemon.js';

function socketeer(
  args: string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
): { stdout: string; code: number | null } {
  const result = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env,
    timeout: 30000,
  });
  return { stdout: result.stdout, code: result.status };
}

/**
 * What bash offers for `words` (the last one being completed): the script `socketeer
 * completion` prints is sourced, and it runs `socketeer` from PATH (a wrapper of the built CLI).
 */
function complete(bin: string, words: string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const script = [
    'source <(socketeer completion)',
    `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}`,
    '_socketeer_yargs_completions',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const result = spawnSync('bash', ['-c', script], {
    encoding: 'utf8',
    env: cleanEnv({ PATH: `${bin}:${process.env.PATH ?? ''}`, SHELL: '/bin/bash' }),
    timeout: 30000,
  });
  if (result.status !== 0) throw new Error(`bash: ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean).sort();
}

t.test('completion in bash: commands, options and service names', async (t) => {
  const conf = makeConfDir({
    'alpha.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
    'beta.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
  });
  t.teardown(conf.cleanup);
  const bin = join(conf.dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'socketeer'), `#!/bin/sh\nexec ${process.execPath} ${cli} "$@"\n`);
  chmodSync(join(bin, 'socketeer'), 0o755);

  const script = socketeer(['completion'], cleanEnv({ SHELL: '/bin/bash' }));
  t.equal(script.code, 0);
  t.match(script.stdout, /^###-begin-socketeer-completions-###\n/);
  t.match(
    script.stdout,
    '\ncomplete -o bashdefault -o default -F _socketeer_yargs_completions socketeer\n',
  );
  t.match(
    socketeer(['completion'], cleanEnv({ SHELL: '/bin/zsh' })).stdout,
    /^#compdef socketeer\n/m,
  );

  t.same(complete(bin, ['socketeer', 'qu']), ['quiesce']);
  t.same(complete(bin, ['socketeer', 'st']), ['start', 'status', 'stop']);
  t.same(complete(bin, ['socketeer', 'serve', '--log-f']), ['--log-format']);

  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  t.teardown(() => daemon.stop());
  t.same(
    complete(bin, ['socketeer', 'stop', '--control', control, '']).filter(
      (w) => !w.startsWith('-'),
    ),
    ['alpha', 'beta'],
  );
  t.same(complete(bin, ['socketeer', 'drain', '--control', control, 'b']), ['beta']);
  // no daemon there: no names, no error
  const nowhere = join(conf.dir, 'none.sock');
  t.same(complete(bin, ['socketeer', 'stop', '--control', nowhere, 'a']), []);
});

t.test('-h is --help, -V is --version', async (t) => {
  const help = socketeer(['--help']);
  t.equal(socketeer(['-h']).stdout, help.stdout);
  t.match(help.stdout, /\n {2}-h, --help +Show help/);
  t.match(help.stdout, /\n {2}-V, --version +Show version number/);
  t.match(help.stdout, /\n {2}socketeer completion +print a shell completion script/);
  const version = socketeer(['-V']);
  t.equal(version.stdout, `${socketeer(['--version']).stdout}`);
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  t.equal(version.code, 0);
});
