import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import t from 'tap';
import { runEscape, type EscapeArgs } from '../../src/commands/escape.js';
import {
  escapeName,
  escapePath,
  instantiateTemplate,
  mangleName,
  parseServiceName,
  parseTemplateName,
  unescapeName,
  unescapePath,
} from '../../src/config/escape.js';

const systemdEscape = '/usr/bin/systemd-escape';
const noBinary = existsSync(systemdEscape) ? false : `${systemdEscape} is not installed`;

/** mulberry32: a small seeded PRNG, so every run draws the same strings. */
function makeRandom(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return Math.floor((((x ^ (x >>> 14)) >>> 0) / 4294967296) * below);
  };
}

/** Code points that stress escaping: ASCII specials, Latin-1, BMP, astral; no surrogates. */
function randomString(random: (below: number) => number, maxLength: number, alphabet = ''): string {
  const pools = [
    () => String.fromCodePoint(random(0x80)),
    () => '/-.\\%@:_ x'[random(10)] as string,
    () => String.fromCodePoint(0x80 + random(0x780)),
    () => String.fromCodePoint(0xe000 + random(0x2000)),
    () => String.fromCodePoint(0x10000 + random(0x100000 - 0x10000)),
  ];
  let text = '';
  const length = random(maxLength + 1);
  for (let i = 0; i < length; i++) {
    text += alphabet !== '' ? (alphabet[random(alphabet.length)] as string) : pools[random(5)]!();
  }
  return text;
}

interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

function runOurs(args: EscapeArgs): Run {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = runEscape(
    args,
    (line) => stdout.push(`${line}\n`),
    (line) => stderr.push(line),
  );
  return { stdout: stdout.join(''), stderr: stderr.join('\n'), code };
}

function runSystemd(args: EscapeArgs): Run {
  const flags = [
    ...(args.path ? ['--path'] : []),
    ...(args.unescape ? ['--unescape'] : []),
    ...(args.mangle === true ? ['--mangle'] : []),
    ...(args.template !== undefined ? [`--template=${args.template}`] : []),
  ];
  const run = spawnSync(systemdEscape, [...flags, '--', ...args.strings], { encoding: 'utf8' });
  return { stdout: run.stdout, stderr: run.stderr, code: run.status ?? -1 };
}

const escapeArgs = (strings: string[], options: Partial<EscapeArgs> = {}): EscapeArgs => ({
  strings,
  path: false,
  unescape: false,
  ...options,
});

void t.test('escapeName and unescapeName on fixed vectors', (t) => {
  const vectors: [string, string][] = [
    ['', ''],
    ['a b c', 'a\\x20b\\x20c'],
    ['foo/bar', 'foo-bar'],
    ['/leading/slash/', '-leading-slash-'],
    ['.foo', '\\x2efoo'],
    ['a.b', 'a.b'],
    ['..', '\\x2e.'],
    ['-foo', '\\x2dfoo'],
    ['a\\b', 'a\\x5cb'],
    [':_.', ':_.'],
    ['é', '\\xc3\\xa9'],
    ['😀', '\\xf0\\x9f\\x98\\x80'],
    ['%i@host', '\\x25i\\x40host'],
    ['a\0b', 'a\\x00b'],
    ['ttyS2', 'ttyS2'],
  ];
  for (const [raw, escaped] of vectors) {
    t.equal(escapeName(raw), escaped, `escape ${JSON.stringify(raw)}`);
    t.strictSame(unescapeName(escaped), { ok: true, value: raw }, `unescape ${escaped}`);
  }
  t.strictSame(unescapeName('a\\x2D'), { ok: true, value: 'a-' }, 'upper case hex is accepted');
  t.strictSame(unescapeName('a-b'), { ok: true, value: 'a/b' });
  t.strictSame(unescapeName('a b'), { ok: true, value: 'a b' }, 'unescaped bytes pass through');
  for (const bad of ['a\\xzz', 'a\\x', 'a\\', 'a\\y41', 'a\\X2d', '\\x4']) {
    t.match(unescapeName(bad), { ok: false, error: /is not followed by "x" and two hex digits/ });
  }
  t.strictSame(unescapeName('\\xff'), {
    ok: false,
    error: 'the unescaped bytes are not valid UTF-8',
  });
  t.end();
});

void t.test('escapePath and unescapePath', (t) => {
  const escaped: [string, string, string | null][] = [
    ['/', '-', null],
    ['', '-', "Input '' is not a valid file system path"],
    ['//', '-', null],
    ['/.', '-', null],
    ['/./', '-', null],
    ['/dev/sda1', 'dev-sda1', null],
    ['//a//b/', 'a-b', null],
    ['/a/./b', 'a-b', null],
    ['/.hidden', '\\x2ehidden', null],
    ['/a/..b', 'a-..b', null],
    ['/a/...', 'a-...', null],
    ['a/./b', 'a-b', "Input 'a/./b' is not an absolute file system path"],
    ['./a', 'a', "Input './a' is not an absolute file system path"],
    ['/srv/my files', 'srv-my\\x20files', null],
  ];
  for (const [path, value, warning] of escaped) {
    const result = escapePath(path);
    t.equal(result.ok && result.value.value, value, `escape path ${JSON.stringify(path)}`);
    if (warning === null) t.equal(result.ok && result.value.warning, null);
    else t.match(result.ok && result.value.warning, warning);
  }
  const refused: [string, string][] = [
    ['a/../b', "Input 'a/../b' is not an absolute file system path, failed to escape."],
    ['/a/../b', "Input '/a/../b' is not a normalized file system path, failed to escape."],
    ['/..', "Input '/..' is not a normalized file system path, failed to escape."],
    ['.', "Input '.' is not an absolute file system path, failed to escape."],
    ['./', "Input './' is not an absolute file system path, failed to escape."],
    [`/${'a'.repeat(256)}`, 'is not a valid file system path, failed to escape.'],
    ['/a\0b', 'is not a valid file system path, failed to escape.'],
  ];
  for (const [path, error] of refused) {
    t.match(escapePath(path), { ok: false, error }, `refuse ${JSON.stringify(path)}`);
  }
  t.equal(escapePath(`/${'a'.repeat(255)}`).ok, true, 'a 255-byte component is fine');
  t.equal(escapePath(`/${'é'.repeat(128)}`).ok, false, 'component length counts bytes');
  t.strictSame(unescapePath('-'), { ok: true, value: '/' });
  t.strictSame(unescapePath('a-b'), { ok: true, value: '/a/b' });
  t.strictSame(unescapePath('.a'), { ok: true, value: '/.a' });
  t.strictSame(unescapePath('a\\x00-'), { ok: true, value: '/a' }, 'a NUL ends it, as in C');
  for (const bad of ['', 'a--b', 'a-', '-a', '\\x2e', '\\x2e\\x2e', 'a-..', 'a\\x2f', '\\xzz']) {
    t.equal(unescapePath(bad).ok, false, `refuse to unescape path ${JSON.stringify(bad)}`);
  }
  t.end();
});

void t.test('round trips on 2000 seeded random strings and 500 random paths', (t) => {
  const random = makeRandom(20240611);
  let failures = 0;
  for (let i = 0; i < 2000; i++) {
    const text = randomString(random, 12) + (i % 50 === 0 ? '\0' : '');
    const escaped = escapeName(text);
    const back = unescapeName(escaped);
    const isWellFormed = /^[A-Za-z0-9:_.\\-]*$/.test(escaped) && !escaped.startsWith('.');
    if (!isWellFormed || !back.ok || back.value !== text) {
      failures++;
      t.fail(`round trip of ${JSON.stringify(text)} gave ${JSON.stringify(back)}`);
    }
  }
  t.equal(failures, 0, 'unescape(escape(s)) === s for 2000 strings');
  for (let i = 0; i < 500; i++) {
    const components = Array.from({ length: 1 + random(4) }, () => {
      const component = randomString(random, 8).replaceAll('/', '').replaceAll('\0', '');
      return component === '' || component === '.' || component === '..' ? `c${i}` : component;
    });
    const path = `/${components.join('/')}`;
    const escaped = escapePath(path);
    const back = escaped.ok ? unescapePath(escaped.value.value) : escaped;
    if (!back.ok || back.value !== path)
      t.fail(`path ${JSON.stringify(path)}: ${JSON.stringify(back)}`);
  }
  t.pass('unescapePath(escapePath(p)) === p for 500 normalised absolute paths');
  t.end();
});

void t.test('service and template names', (t) => {
  t.strictSame(parseServiceName('echo'), {
    ok: true,
    value: { name: 'echo', prefix: 'echo', instance: null },
  });
  t.strictSame(parseServiceName('serial-getty@'), {
    ok: true,
    value: { name: 'serial-getty@', prefix: 'serial-getty', instance: '' },
  });
  t.strictSame(parseServiceName('user-echo@a\\x40b@c'), {
    ok: true,
    value: { name: 'user-echo@a\\x40b@c', prefix: 'user-echo', instance: 'a\\x40b@c' },
  });
  t.strictSame(parseServiceName('my echo'), {
    ok: false,
    error:
      'invalid service name "my echo": " " is not allowed (escape it as \\x20, see "socketeer escape")',
  });
  t.strictSame(parseServiceName('@x'), {
    ok: false,
    error: 'invalid service name "@x": the part before "@" is empty',
  });
  t.match(parseServiceName('foo@a\\xzz'), {
    ok: false,
    error: 'invalid instance "a\\xzz": "\\" at offset 1 is not followed by "x" and two hex digits',
  });
  t.match(parseServiceName('foo@a\\x00'), { ok: false, error: 'invalid instance "a\\x00"' });
  t.match(parseServiceName('foo@a b'), { ok: false, error: '" " is not allowed' });
  for (const [template, prefix, suffix] of [
    ['foo@', 'foo', ''],
    ['foo@.json', 'foo', '.json'],
    ['foo@.service', 'foo', '.service'],
  ] as const) {
    t.strictSame(parseTemplateName(template), { ok: true, value: { prefix, suffix } });
  }
  for (const bad of ['@.json', 'foo', 'foo@x.json', 'foo@.txt', 'a@b@.json', 'a b@.json']) {
    t.strictSame(parseTemplateName(bad), {
      ok: false,
      error: `Template name ${bad} is not valid.`,
    });
  }
  const json = { prefix: 'foo', suffix: '.json' };
  t.strictSame(instantiateTemplate(json, 'a\\x20b'), { ok: true, value: 'foo@a\\x20b.json' });
  t.equal(instantiateTemplate(json, '').ok, false, 'an empty instance is refused');
  t.equal(instantiateTemplate(json, 'a'.repeat(246)).ok, true, '255 bytes fit a file name');
  t.equal(instantiateTemplate(json, 'a'.repeat(247)).ok, false, '256 bytes do not');
  t.equal(instantiateTemplate({ prefix: 'foo', suffix: '' }, 'a'.repeat(247)).ok, false);
  t.strictSame(mangleName('a b'), { ok: true, value: 'a\\x20b.json' });
  t.strictSame(mangleName('x@y.json'), { ok: true, value: 'x@y.json' });
  t.strictSame(mangleName('/a/b'), { ok: true, value: '-a-b.json' });
  t.equal(mangleName('').ok, false);
  t.end();
});

void t.test('runEscape: output, exit codes and messages', (t) => {
  t.strictSame(runOurs(escapeArgs(['a b', 'c/d', ''])), {
    stdout: 'a\\x20b c-d \n',
    stderr: '',
    code: 0,
  });
  t.strictSame(runOurs(escapeArgs([])), { stdout: '', stderr: 'Not enough arguments.', code: 100 });
  t.strictSame(runOurs(escapeArgs(['ok', 'a\\xzz', 'c'], { unescape: true })), {
    stdout: '',
    stderr:
      'Failed to unescape string \'a\\xzz\': "\\" at offset 1 is not followed by "x" and two hex digits',
    code: 100,
  });
  t.strictSame(runOurs(escapeArgs(['a\\x00b'], { unescape: true })), {
    stdout: 'a\n',
    stderr: '',
    code: 0,
  });
  t.strictSame(runOurs(escapeArgs(['x/y', '/tmp'], { path: true })), {
    stdout: 'x-y tmp\n',
    stderr:
      "Input 'x/y' is not an absolute file system path, escaping is likely not going to be reversible.",
    code: 0,
  });
  t.strictSame(runOurs(escapeArgs(['/a/../b'], { path: true })), {
    stdout: '',
    stderr: "Input '/a/../b' is not a normalized file system path, failed to escape.",
    code: 100,
  });
  t.strictSame(
    runOurs(escapeArgs(['alice', 'b-c'], { template: 'user-echo@.json' })).stdout,
    'user-echo@alice.json user-echo@b\\x2dc.json\n',
  );
  t.strictSame(
    runOurs(escapeArgs(['alice'], { template: 'user-echo@' })).stdout,
    'user-echo@alice\n',
  );
  t.strictSame(
    runOurs(escapeArgs(['/dev/ttyS2'], { path: true, template: 'getty@' })).stdout,
    'getty@dev-ttyS2\n',
  );
  t.strictSame(runOurs(escapeArgs([''], { template: 'foo@.json' })), {
    stdout: '',
    stderr: 'Failed to replace instance: cannot use "" as the instance of foo@.json',
    code: 100,
  });
  t.strictSame(runOurs(escapeArgs(['x'], { template: 'foo@bar.json' })), {
    stdout: '',
    stderr: 'Template name foo@bar.json is not valid. Use NAME@ or NAME@.json.',
    code: 100,
  });
  t.strictSame(
    runOurs(
      escapeArgs(['foo@a\\x2db.json', 'foo@-.json'], { unescape: true, template: 'foo@.json' }),
    ),
    { stdout: 'a-b /\n', stderr: '', code: 0 },
  );
  t.strictSame(runOurs(escapeArgs(['bar@x.json'], { unescape: true, template: 'foo@.json' })), {
    stdout: '',
    stderr: 'Failed to extract instance: bar@x.json is not an instance of foo@.json',
    code: 100,
  });
  t.strictSame(
    runOurs(escapeArgs(['a b', 'x.json'], { mangle: true })).stdout,
    'a\\x20b.json x.json\n',
  );
  const usage: [Partial<EscapeArgs>, string][] = [
    [{ mangle: true, unescape: true }, '--unescape and --mangle may not be combined.'],
    [{ mangle: true, path: true }, '--path may not be combined with --mangle.'],
    [{ mangle: true, template: 'a@' }, '--template= is not compatible with --mangle.'],
  ];
  for (const [options, message] of usage) {
    t.strictSame(runOurs(escapeArgs(['x'], options)), { stdout: '', stderr: message, code: 100 });
  }
  t.end();
});

void t.test('the same stdout and success as /usr/bin/systemd-escape', { skip: noBinary }, (t) => {
  const cases: EscapeArgs[] = [
    escapeArgs(['']),
    escapeArgs(['a', 'b c', '', '-x', '.x', 'x.', '..', 'a/b', '/', '\\', 'é', '😀', '%i', '@']),
    escapeArgs(['', '/', '//', '/.', '/./', '.', './', '..', '/..', '/a/../b', 'a/../b'], {
      path: true,
    }),
    escapeArgs(['/dev/sda1', '//a//b/', '/a/./b', 'a/./b', './a', '/.hidden', '/a/..b', ' '], {
      path: true,
    }),
    escapeArgs([`/${'a'.repeat(255)}`, `/${'a'.repeat(256)}`, `/${'é'.repeat(128)}`], {
      path: true,
    }),
    escapeArgs([`/${'a/'.repeat(2047)}`, `/${'a/'.repeat(2047)}b`, `${'/a'.repeat(2048)}`], {
      path: true,
    }),
    escapeArgs(['a\\x2db', 'a-b', '', 'a\\X2d', 'a\\x2F', 'é', 'a b'], { unescape: true }),
    escapeArgs(['a\\x00b'], { unescape: true }),
    escapeArgs(['a\\xzz'], { unescape: true }),
    escapeArgs(['a-b', '-', '.a', 'a\\x00-'], { unescape: true, path: true }),
    ...['', 'a--b', 'a-', '\\x2e', '\\x2e\\x2e', 'a\\x2f', 'x-..'].map((s) =>
      escapeArgs([s], { unescape: true, path: true }),
    ),
    escapeArgs(['bar', '-x', 'a/b'], { template: 'foo@.service' }),
    escapeArgs(['/', '/dev/ttyS2'], { template: 'foo@.service', path: true }),
    escapeArgs([''], { template: 'foo@.service' }),
    escapeArgs(['a'.repeat(243)], { template: 'foo@.service' }),
    escapeArgs(['a'.repeat(244)], { template: 'foo@.service' }),
    escapeArgs(['x'], { template: '@.service' }),
    escapeArgs(['x'], { template: 'a@b@.service' }),
    escapeArgs(['foo@x\\x2dy.service', 'foo@a-b.service'], {
      unescape: true,
      template: 'foo@.service',
    }),
    escapeArgs(['foo@a-b.service'], { unescape: true, path: true, template: 'foo@.service' }),
    escapeArgs(['bar@x.service'], { unescape: true, template: 'foo@.service' }),
    escapeArgs(['foo@.service'], { unescape: true, template: 'foo@.service' }),
    escapeArgs([]),
  ];
  for (const args of cases) {
    const ours = runOurs(args);
    const theirs = runSystemd(args);
    const label = JSON.stringify(args).slice(0, 120);
    t.equal(ours.code === 0, theirs.code === 0, `success matches for ${label}: ${theirs.stderr}`);
    if (theirs.code === 0) t.equal(ours.stdout, theirs.stdout, `stdout for ${label}`);
    t.equal(ours.stderr === '', theirs.stderr === '', `stderr presence for ${label}`);
  }
  t.end();
});

void t.test('random strings against /usr/bin/systemd-escape', { skip: noBinary }, (t) => {
  const random = makeRandom(7);
  const strings = Array.from({ length: 1000 }, () => randomString(random, 10).replaceAll('\0', ''));
  const escaped = runOurs(escapeArgs(strings));
  t.equal(escaped.stdout, runSystemd(escapeArgs(strings)).stdout, '1000 strings escape the same');
  const back = escapeArgs(escaped.stdout.trimEnd().split(' '), { unescape: true });
  t.equal(runOurs(back).stdout, runSystemd(back).stdout, 'and unescape the same');
  let differences = 0;
  let successes = 0;
  for (let i = 0; i < 150; i++) {
    const args = escapeArgs([randomString(random, 12, '/./a.é-\\x2f')], {
      path: true,
      unescape: i % 3 === 0,
    });
    const ours = runOurs(args);
    const theirs = runSystemd(args);
    if (theirs.code === 0) successes++;
    if (
      (ours.code === 0) !== (theirs.code === 0) ||
      (theirs.code === 0 && ours.stdout !== theirs.stdout)
    ) {
      differences++;
      t.fail(
        `${JSON.stringify(args)}: ours ${JSON.stringify(ours)}, systemd ${JSON.stringify(theirs)}`,
      );
    }
  }
  t.equal(differences, 0, '150 random paths give the same result');
  t.ok(successes >= 30 && successes <= 140, `both succeed and fail: ${successes} of 150 succeeded`);
  t.end();
});
