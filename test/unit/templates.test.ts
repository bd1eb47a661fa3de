import t from 'tap';
import { assembleUnits, type ConfFile } from '../../src/config/assemble-units.js';
import type { Outcome } from '../../src/config/escape.js';
import {
  appendPointer,
  findProvenance,
  mergeSourced,
  sourceValue,
} from '../../src/config/merge.js';
import {
  expandSpecifiers,
  type SpecifierContext,
  type SpecifierUser,
} from '../../src/config/specifiers.js';

const homes: Record<string, string> = {
  alice: '/home/alice',
  root: '/root',
  '1000': '/home/u1000',
};

/** A fake account database; records every lookup. */
function makeLookup(calls: (string | number | null)[] = []) {
  return (user: string | number | null): Outcome<SpecifierUser> => {
    calls.push(user);
    const name = user === null ? 'root' : String(user);
    const home = homes[name];
    return home === undefined
      ? { ok: false, error: `no user "${name}"` }
      : { ok: true, value: { name: name === '1000' ? 'u1000' : name, home } };
  };
}

const entries = (map: ReadonlyMap<string, string>) => Object.fromEntries(map);

void t.test('merge: objects key by key, lists replaced, null removes, with provenance', (t) => {
  const base = sourceValue(
    { listen: ['tcp:1'], env: { A: '1', B: '2' }, limits: { n: 1 }, user: 'x' },
    'echo.json',
  );
  t.strictSame(entries(base.provenance), {
    '': 'echo.json',
    '/listen': 'echo.json',
    '/env': 'echo.json',
    '/env/A': 'echo.json',
    '/env/B': 'echo.json',
    '/limits': 'echo.json',
    '/limits/n': 'echo.json',
    '/user': 'echo.json',
  });
  const overlay = {
    listen: ['tcp:2', null],
    env: { B: null, C: '3' },
    limits: 5,
    user: null,
    extra: { deep: { keep: 1, gone: null } },
  };
  const merged = mergeSourced(base, overlay, 'echo.json.d/10.json');
  t.strictSame(merged.value, {
    listen: ['tcp:2', null],
    env: { A: '1', C: '3' },
    limits: 5,
    extra: { deep: { keep: 1 } },
  });
  t.strictSame(entries(merged.provenance), {
    '': 'echo.json',
    '/listen': 'echo.json.d/10.json',
    '/env': 'echo.json',
    '/env/A': 'echo.json',
    '/env/C': 'echo.json.d/10.json',
    '/limits': 'echo.json.d/10.json',
    '/extra': 'echo.json.d/10.json',
    '/extra/deep': 'echo.json.d/10.json',
    '/extra/deep/keep': 'echo.json.d/10.json',
  });
  t.strictSame(base.value.env, { A: '1', B: '2' }, 'the base is not modified');
  t.equal(findProvenance(merged.provenance, '/listen/1'), 'echo.json.d/10.json');
  t.equal(findProvenance(merged.provenance, '/nowhere/at/all'), 'echo.json');
  t.equal(findProvenance(new Map(), '/x'), undefined);
  const again = mergeSourced(merged, { env: { A: { x: 1 } } }, 'z.json');
  t.strictSame(again.value.env, { A: { x: 1 }, C: '3' }, 'an object replaces a scalar');
  t.equal(again.provenance.get('/env/A/x'), 'z.json');
  t.equal(appendPointer('/a', 'b/c~d'), '/a/b~1c~0d');
  const proto = mergeSourced(sourceValue({}, 'a.json'), JSON.parse('{"__proto__": {"x": 1}}'), 'b');
  t.equal(Object.getPrototypeOf(proto.value), Object.prototype, '__proto__ stays a plain key');
  t.strictSame(Object.keys(proto.value), ['__proto__']);
  t.end();
});

void t.test('specifiers', (t) => {
  const context = (instance: string | null, calls: (string | number | null)[] = []) =>
    ({
      name: instance === null ? 'echo' : `user-echo@${instance}`,
      prefix: instance === null ? 'echo' : 'user-echo',
      instance,
      lookupUser: makeLookup(calls),
    }) satisfies SpecifierContext;
  const calls: (string | number | null)[] = [];
  const value = {
    $schema: 'https://example.com/a%20b',
    user: '%i',
    exec: ['/bin/%p', '%I', '--name=%n', '%u:%h', '100%%', 7, true, null],
    env: { '%i': '%i' },
  };
  t.strictSame(expandSpecifiers(value, context('alice', calls)), {
    value: {
      $schema: 'https://example.com/a%20b',
      user: 'alice',
      exec: [
        '/bin/user-echo',
        'alice',
        '--name=user-echo@alice',
        'alice:/home/alice',
        '100%',
        7,
        true,
        null,
      ],
      env: { '%i': 'alice' },
    },
    problems: [],
  });
  t.strictSame(calls, ['alice'], 'the expanded user is looked up once');
  t.strictSame(expandSpecifiers({ exec: ['%i', '%I'] }, context('a\\x20b-c\\x2dd')).value.exec, [
    'a\\x20b-c\\x2dd',
    'a b/c-d',
  ]);
  const noUser: (string | number | null)[] = [];
  t.strictSame(expandSpecifiers({ exec: ['%h'] }, context(null, noUser)).value, {
    exec: ['/root'],
  });
  t.strictSame(noUser, [null], 'no user field: the daemon user');
  const uid: (string | number | null)[] = [];
  t.strictSame(expandSpecifiers({ user: 1000, cwd: '%h/%u' }, context(null, uid)).value, {
    user: 1000,
    cwd: '/home/u1000/u1000',
  });
  t.strictSame(uid, [1000]);
  const none: (string | number | null)[] = [];
  expandSpecifiers({ exec: ['%i%%'], user: 'bob' }, context('x', none));
  t.strictSame(none, [], 'no lookup without %u or %h');
  t.strictSame(
    expandSpecifiers(
      { exec: ['%i', '%I%x%x', 'tail%'], env: { A: '%u' }, user: 'bob%h' },
      context(null),
    ).problems,
    [
      { pointer: '/user', message: 'specifier "%h" cannot be used in the user field' },
      { pointer: '/exec/0', message: 'specifier "%i" used outside a template instance' },
      { pointer: '/exec/1', message: 'specifier "%I" used outside a template instance' },
      { pointer: '/exec/1', message: 'unknown specifier "%x"' },
      { pointer: '/exec/2', message: 'a lone "%" ends the string (write "%%" for a percent sign)' },
      { pointer: '/env/A', message: 'cannot expand "%u": no user "bob"' },
    ],
  );
  t.strictSame(expandSpecifiers({ a: '%é%😀' }, context(null)).problems, [
    { pointer: '/a', message: 'unknown specifier "%é"' },
    { pointer: '/a', message: 'unknown specifier "%😀"' },
  ]);
  t.end();
});

const file = (relPath: string, json: unknown, extra: Partial<ConfFile> = {}): ConfFile => ({
  relPath,
  isSymlinkTo: null,
  json,
  ...extra,
});

const template = {
  listen: 'unix:/run/echo-%i.sock',
  exec: ['/usr/bin/echo-handler', '%I'],
  user: '%i',
  env: { HOME_DIR: '%h', LEVEL: 'template' },
};

void t.test('assembleUnits: templates, instances and drop-ins in order', (t) => {
  const result = assembleUnits(
    [
      file('user-echo@bob.json.d/10-env.json', { env: { LEVEL: 'bob dir' } }),
      file('echo.json', { listen: 'tcp:127.0.0.1:7', exec: ['/bin/cat'], env: { A: '%n' } }),
      file('echo.json.d/a.json', { env: { A: 'lower a' } }),
      file('echo.json.d/B.json', { env: { A: 'upper B', B: '1' } }),
      file('echo.json.d/1.json', { env: { A: 'one', C: 'c' } }),
      file('user-echo@.json', template),
      file('user-echo@alice.json', {}),
      file('user-echo@bob.json', { env: { LEVEL: 'bob' }, user: 'alice' }),
      file('user-echo@root.json', template, { isSymlinkTo: 'user-echo@.json' }),
      file('user-echo@alice\\x2dx.json', { listen: 'tcp:127.0.0.1:9', exec: ['/bin/x', '%I'] }),
      file('user-echo@.json.d/10-env.json', { env: { LEVEL: 'template dir' } }),
    ],
    { lookupUser: makeLookup() },
  );
  t.strictSame(result.problems, []);
  t.strictSame(result.notes, []);
  t.strictSame(
    result.units.map((unit) => [unit.name, unit.prefix, unit.instance, unit.files]),
    [
      [
        'echo',
        'echo',
        null,
        ['echo.json', 'echo.json.d/1.json', 'echo.json.d/B.json', 'echo.json.d/a.json'],
      ],
      [
        'user-echo@alice',
        'user-echo',
        'alice',
        ['user-echo@.json', 'user-echo@alice.json', 'user-echo@.json.d/10-env.json'],
      ],
      [
        'user-echo@alice\\x2dx',
        'user-echo',
        'alice\\x2dx',
        ['user-echo@alice\\x2dx.json', 'user-echo@.json.d/10-env.json'],
      ],
      [
        'user-echo@bob',
        'user-echo',
        'bob',
        [
          'user-echo@.json',
          'user-echo@bob.json',
          'user-echo@.json.d/10-env.json',
          'user-echo@bob.json.d/10-env.json',
        ],
      ],
      [
        'user-echo@root',
        'user-echo',
        'root',
        ['user-echo@.json', 'user-echo@root.json', 'user-echo@.json.d/10-env.json'],
      ],
    ],
  );
  const [echo, alice, aliceX, bob, root] = result.units;
  t.strictSame(echo?.value, {
    listen: 'tcp:127.0.0.1:7',
    exec: ['/bin/cat'],
    env: { A: 'lower a', B: '1', C: 'c' },
  });
  t.strictSame(entries(echo?.provenance ?? new Map()), {
    '': 'echo.json',
    '/listen': 'echo.json',
    '/exec': 'echo.json',
    '/env': 'echo.json',
    '/env/A': 'echo.json.d/a.json',
    '/env/B': 'echo.json.d/B.json',
    '/env/C': 'echo.json.d/1.json',
  });
  t.strictSame(alice?.value, {
    listen: 'unix:/run/echo-alice.sock',
    exec: ['/usr/bin/echo-handler', 'alice'],
    user: 'alice',
    env: { HOME_DIR: '/home/alice', LEVEL: 'template dir' },
  });
  t.equal(alice?.provenance.get(''), 'user-echo@alice.json', 'the root is the instance file');
  t.equal(alice?.provenance.get('/listen'), 'user-echo@.json');
  t.equal(alice?.provenance.get('/env/LEVEL'), 'user-echo@.json.d/10-env.json');
  t.strictSame(
    aliceX?.value,
    { listen: 'tcp:127.0.0.1:9', exec: ['/bin/x', 'alice-x'], env: { LEVEL: 'template dir' } },
    'a full definition does not use the template',
  );
  t.strictSame(bob?.value.env, { HOME_DIR: '/home/alice', LEVEL: 'bob dir' }, 'instance dir last');
  t.equal(bob?.provenance.get('/user'), 'user-echo@bob.json');
  t.strictSame(root?.value.user, 'root');
  t.equal(
    root?.provenance.get('/user'),
    'user-echo@.json',
    'a link to the template is the template',
  );
  t.end();
});

void t.test('assembleUnits: problems and notes', (t) => {
  const result = assembleUnits(
    [
      file('foo@bar.json', {}),
      file('echo.json', { listen: 'tcp:7', exec: ['/bin/cat', '%i'] }),
      file('broken.json', { listen: 'tcp:8', exec: ['/bin/cat'] }),
      file('broken.json.d/10.json', ['not', 'an', 'object']),
      file('bad.json', null, { parseError: 'Unexpected token } in JSON at position 3' }),
      file('my echo.json', {}),
      file('user-echo@a\\xzz.json', {}),
      file('lonely@.json', template),
      file('ghost.json.d/10.json', {}),
      file('ghost@x.json.d/10.json', {}),
      file('echo.json.d/sub/x.json', {}),
      file('user-echo@.json', template),
      file('user-echo@nobody.json', {}),
      file('user-echo@alice.json', { env: { X: '%q' } }),
      file('number.json', 42),
    ],
    { lookupUser: makeLookup() },
  );
  t.strictSame(result.units, []);
  t.strictSame(result.problems, [
    { file: 'bad.json', pointer: '', message: 'Unexpected token } in JSON at position 3' },
    { file: 'broken.json.d/10.json', pointer: '', message: 'the top level must be a JSON object' },
    {
      file: 'my echo.json',
      pointer: '',
      message:
        'invalid service name "my echo": " " is not allowed (escape it as \\x20, see "socketeer escape")',
    },
    { file: 'number.json', pointer: '', message: 'the top level must be a JSON object' },
    {
      file: 'user-echo@a\\xzz.json',
      pointer: '',
      message:
        'invalid instance "a\\xzz": "\\" at offset 1 is not followed by "x" and two hex digits',
    },
    {
      file: 'echo.json',
      pointer: '/exec/1',
      message: 'specifier "%i" used outside a template instance',
    },
    { file: 'foo@bar.json', pointer: '', message: 'no template foo@.json for this instance' },
    { file: 'user-echo@alice.json', pointer: '/env/X', message: 'unknown specifier "%q"' },
    {
      file: 'user-echo@.json',
      pointer: '/env/HOME_DIR',
      message: 'cannot expand "%h": no user "nobody" (in user-echo@nobody)',
    },
  ]);
  t.strictSame(result.notes, [
    {
      file: 'echo.json.d/sub/x.json',
      pointer: '',
      message: 'neither NAME.json nor NAME.json.d/*.json; ignored',
    },
    {
      file: 'lonely@.json',
      pointer: '',
      message: 'template with no instance: it serves nothing by itself',
    },
    {
      file: 'ghost.json.d/',
      pointer: '',
      message: 'no service ghost.json; its 1 drop-in(s) are not used',
    },
    {
      file: 'ghost@x.json.d/',
      pointer: '',
      message: 'no service ghost@x.json; its 1 drop-in(s) are not used',
    },
  ]);
  const shown = assembleUnits([file('a@b.json', {}, { path: '/etc/socketeer/conf.d/a@b.json' })], {
    lookupUser: makeLookup(),
  });
  t.strictSame(shown.problems, [
    {
      file: '/etc/socketeer/conf.d/a@b.json',
      pointer: '',
      message: 'no template a@.json for this instance',
    },
  ]);
  const custom = assembleUnits(
    [
      file('p@.json', { listen: 'tcp:1', exec: ['/a'] }),
      file('p@x.json', { proxy: 'tcp:2', listen: 'tcp:3' }),
    ],
    { lookupUser: makeLookup(), isFullDefinition: (value) => 'proxy' in value },
  );
  t.strictSame(
    custom.units[0]?.value,
    { proxy: 'tcp:2', listen: 'tcp:3' },
    'isFullDefinition is used',
  );
  t.end();
});
