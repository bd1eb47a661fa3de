import { execFileSync } from 'node:child_process';
import { copyFileSync, symlinkSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { escapeName } from '../../src/config/escape.js';
import {
  cli,
  isRoot,
  makeConfDir,
  root,
  spawnClean,
  withDeadline,
  writeServices,
} from '../helpers/daemon.js';

interface Printed {
  services: Record<string, Record<string, unknown>>;
}

/** `socketeer check --config-dir DIR` through the built CLI: stdout, stderr and exit code. */
async function check(confDir: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawnClean([process.execPath, cli, 'check', '--config-dir', confDir]);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const code = await withDeadline(
    new Promise<number | null>((resolve) => child.once('close', resolve)),
    30000,
    'check',
  );
  return { code, out, err };
}

const self = userInfo();
/** Who `%u`/`%h` describe in a service with no `user`: nobody for a root daemon, else its own user. */
const defaultUser = isRoot ? { username: 'nobody', homedir: nobodyHome() } : self;

function nobodyHome(): string {
  return execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).split(':')[5] ?? '';
}

t.test('template, instance and both drop-in dirs: precedence, files and sources', async (t) => {
  const conf = makeConfDir({
    'svc@.json': {
      description: 'template of %n',
      listen: 'unix:/tmp/socketeer-templates/%i.sock',
      exec: ['cat'],
      env: { A: 'template', B: 'template', C: 'template', D: 'template', E: 'template' },
    },
    'svc@one.json': {
      description: null,
      env: { B: 'instance', C: 'instance', D: 'instance', E: null },
    },
    'svc@full.json': { listen: 'unix:/tmp/socketeer-templates/full.sock', exec: ['id', '-un'] },
    'plain.json': {
      listen: 'unix:/tmp/socketeer-templates/plain.sock',
      exec: ['cat'],
      socket: { mode: '0600', backlog: 5 },
    },
  });
  t.teardown(conf.cleanup);
  const d = conf.confDir;
  writeServices(join(d, 'svc@.json.d'), {
    '20-b.json': { env: { C: 'template dir 20' } },
    '10-a.json': { env: { C: 'template dir 10', D: 'template dir 10' } },
  });
  writeServices(join(d, 'svc@one.json.d'), { '10-a.json': { env: { D: 'instance dir' } } });
  writeServices(join(d, 'plain.json.d'), { '10.json': { socket: { backlog: 7 }, exec: ['tac'] } });
  symlinkSync('svc@.json', join(d, 'svc@link.json'));

  const result = await check(d);
  t.equal(result.err, '');
  t.equal(result.code, 0);
  const { services } = JSON.parse(result.out) as Printed;
  t.same(Object.keys(services), ['plain', 'svc@full', 'svc@link', 'svc@one']);
  const templateDir = [`${d}/svc@.json.d/10-a.json`, `${d}/svc@.json.d/20-b.json`];
  const one = services['svc@one'] ?? {};
  const keys = ['file', 'program', 'listen', 'exec', 'env', 'files', 'sources'] as const;
  t.strictSame(
    Object.fromEntries(keys.map((key) => [key, one[key]])),
    {
      file: `${d}/svc@one.json`,
      program: '/usr/bin/cat',
      listen: 'unix:/tmp/socketeer-templates/one.sock',
      exec: ['cat'],
      env: { A: 'template', B: 'instance', C: 'template dir 20', D: 'instance dir' },
      files: [
        `${d}/svc@.json`,
        `${d}/svc@one.json`,
        ...templateDir,
        `${d}/svc@one.json.d/10-a.json`,
      ],
      sources: {
        '': `${d}/svc@one.json`,
        '/listen': `${d}/svc@.json`,
        '/exec': `${d}/svc@.json`,
        '/env': `${d}/svc@.json`,
        '/env/A': `${d}/svc@.json`,
        '/env/B': `${d}/svc@one.json`,
        '/env/C': `${d}/svc@.json.d/20-b.json`,
        '/env/D': `${d}/svc@one.json.d/10-a.json`,
      },
    },
    'instance file over template, template drop-ins over it, instance drop-ins last; null removes',
  );
  t.notOk('description' in one, 'null removed the description');
  t.match(
    services['svc@link'],
    {
      description: 'template of svc@link',
      listen: 'unix:/tmp/socketeer-templates/link.sock',
      env: { A: 'template', B: 'template', C: 'template dir 20', D: 'template dir 10' },
      files: [`${d}/svc@.json`, `${d}/svc@link.json`, ...templateDir],
      sources: { '': `${d}/svc@link.json`, '/description': `${d}/svc@.json` },
    },
    'a symlink to the template is the template as it is',
  );
  t.match(
    services['svc@full'],
    {
      program: '/usr/bin/id',
      exec: ['id', '-un'],
      env: { C: 'template dir 20', D: 'template dir 10' },
      files: [`${d}/svc@full.json`, ...templateDir],
    },
    'a full definition overrides the template wholly; the template drop-ins still apply',
  );
  t.notOk('description' in (services['svc@full'] ?? {}));
  t.strictSame(services['svc@full']?.env, { C: 'template dir 20', D: 'template dir 10' });
  t.match(services.plain, {
    program: '/usr/bin/tac',
    exec: ['tac'],
    socket: { mode: '0600', backlog: 7 },
    files: [`${d}/plain.json`, `${d}/plain.json.d/10.json`],
    sources: { '/socket/mode': `${d}/plain.json`, '/socket/backlog': `${d}/plain.json.d/10.json` },
  });
});

t.test('specifiers expand in every string, in a template and in a plain service', async (t) => {
  const instance = escapeName('srv/www-data'); // srv-www\x2ddata
  const conf = makeConfDir({
    'spec@.json': {
      listen: 'unix:/tmp/socketeer-templates/%i.sock',
      exec: ['echo', '%I'],
      env: { I: '%i', BIG_I: '%I', P: '%p', N: '%n', U: '%u', H: '%h', PCT: '100%%', LIT: '%%i' },
    },
    [`spec@${instance}.json`]: {},
    'plain.json': { listen: 'tcp:127.0.0.1:0', exec: ['echo', '%n', '%p', '%u'] },
  });
  t.teardown(conf.cleanup);
  const result = await check(conf.confDir);
  t.equal(result.err, '');
  t.equal(result.code, 0);
  const { services } = JSON.parse(result.out) as Printed;
  t.match(services[`spec@${instance}`], {
    listen: `unix:/tmp/socketeer-templates/${instance}.sock`,
    exec: ['echo', 'srv/www-data'],
    env: {
      I: 'srv-www\\x2ddata',
      BIG_I: 'srv/www-data',
      P: 'spec',
      N: 'spec@srv-www\\x2ddata',
      U: defaultUser.username,
      H: defaultUser.homedir,
      PCT: '100%',
      LIT: '%i',
    },
  });
  t.strictSame(services.plain?.exec, ['echo', 'plain', 'plain', defaultUser.username]);
});

t.test('every bad case: the file that supplied the value, exact message, exit 100', async (t) => {
  const any = 'tcp:127.0.0.1:0';
  const conf = makeConfDir({
    'a-plain.json': { listen: any, exec: ['cat', '%i', '%z'] },
    'b-tpl@.json': { listen: any, exec: ['cat'], env: { X: '%q' } },
    'b-tpl@one.json': {},
    'c-ghost@x.json': {},
    'd-echo.json': { listen: any, exec: ['cat'] },
    'e-tpl@.json': { listen: any, exec: ['cat'] },
    'e-tpl@a.json': {},
    'f-prog@.json': { listen: any, exec: ['/nonexistent/no-such-program'] },
    'f-prog@a.json': {},
    'g-name@a b.json': {},
    'i-port@.json': { listen: 'tcp:127.0.0.1:7997', exec: ['cat'] },
    'i-port@a.json': {},
    'i-port@b.json': {},
    'j-json.json': { listen: any, exec: ['cat'] },
    'k-user@.json': { listen: any, exec: ['cat'], user: '%u' },
    'k-user@a.json': {},
    'l-home.json': { listen: any, exec: ['cat'], user: 'no-such-user-here', env: { H: '%h' } },
  });
  t.teardown(conf.cleanup);
  const d = conf.confDir;
  writeServices(join(d, 'd-echo.json.d'), { '50-bad.json': { socket: { mode: 'rw' }, portt: 1 } });
  writeServices(join(d, 'e-tpl@.json.d'), { '10.json': { stderr: 'journal' } });
  writeServices(join(d, 'j-json.json.d'), { '10.json': '{"env": ' });
  symlinkSync('no-such-target.json', join(d, 'h-dangling.json'));
  const result = await check(d);
  t.equal(result.out, '');
  t.equal(
    result.err,
    [
      `${d}/a-plain.json: /exec/1: specifier "%i" used outside a template instance`,
      `${d}/a-plain.json: /exec/2: unknown specifier "%z"`,
      `${d}/b-tpl@.json: /env/X: unknown specifier "%q" (in b-tpl@one)`,
      `${d}/c-ghost@x.json: /: no template c-ghost@.json for this instance`,
      `${d}/d-echo.json.d/50-bad.json: /portt: unknown key (in d-echo)`,
      `${d}/d-echo.json.d/50-bad.json: /socket/mode: must match ^0?[0-7]{3}$ (in d-echo)`,
      `${d}/e-tpl@.json.d/10.json: /stderr: must be one of "log", "socket", "null" (in e-tpl@a)`,
      `${d}/f-prog@.json: /exec/0: /nonexistent/no-such-program: no such file (in f-prog@a)`,
      `${d}/g-name@a b.json: /: invalid instance "a b": " " is not allowed (escape it as \\x20, see "socketeer escape")`,
      `${d}/h-dangling.json: /: unable to read: no such file or directory (ENOENT)`,
      `${d}/j-json.json.d/10.json: /: invalid JSON: Unexpected end of JSON input`,
      `${d}/k-user@.json: /user: specifier "%u" cannot be used in the user field (in k-user@a)`,
      `${d}/l-home.json: /env/H: cannot expand "%h": unknown user "no-such-user-here"`,
      `${d}/i-port@.json: /listen: tcp:127.0.0.1:7997 is also used by ${d}/i-port@.json (/listen in i-port@a) (in i-port@b)`,
      `socketeer: fatal: 14 problems in ${d}; nothing was started`,
      '',
    ].join('\n'),
  );
  t.equal(result.code, 100);
});

t.test('notes do not fail check: a template with no instance, unused drop-ins', async (t) => {
  const conf = makeConfDir({
    'lonely@.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
    'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
  });
  t.teardown(conf.cleanup);
  const d = conf.confDir;
  writeServices(join(d, 'ghost.json.d'), { '10.json': {}, '20.json': {} });
  const result = await check(d);
  t.equal(
    result.err,
    [
      `${d}/lonely@.json: /: note: template with no instance: it serves nothing by itself`,
      `${d}/ghost.json.d/: /: note: no service ghost.json; its 2 drop-in(s) are not used`,
      '',
    ].join('\n'),
  );
  t.equal(result.code, 0);
  t.same(Object.keys((JSON.parse(result.out) as Printed).services), ['echo']);
});

t.test(
  'the shipped user-echo@ template, instantiated for this user (and nobody as root)',
  async (t) => {
    const conf = makeConfDir({});
    t.teardown(conf.cleanup);
    const d = conf.confDir;
    copyFileSync(join(root, 'conf.d/user-echo@.json'), join(d, 'user-echo@.json'));
    const mine = `user-echo@${escapeName(self.username)}`;
    symlinkSync('user-echo@.json', join(d, `${mine}.json`));
    if (isRoot) writeServices(d, { 'user-echo@nobody.json': {} });
    const result = await check(d);
    t.equal(result.err, '');
    t.equal(result.code, 0);
    const { services } = JSON.parse(result.out) as Printed;
    t.match(services[mine], {
      listen: `unix:${self.homedir}/.user-echo.sock`,
      user: self.username,
      socket: { mode: '0600', user: self.username },
      exec: [
        '/bin/sh',
        '-c',
        `echo "hello ${self.username}, this is ${mine} running as $(id -un)"; exec cat`,
      ],
    });
    if (isRoot) {
      t.match(services['user-echo@nobody'], {
        listen: 'unix:/nonexistent/.user-echo.sock',
        user: 'nobody',
        socket: { user: 'nobody' },
      });
    }
  },
);
