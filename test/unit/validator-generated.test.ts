// The service and control-request validators are ajv's standalone code generated at build time
// (scripts/validator.mjs): each must be the one its schema gives now, and the service one say exactly what the schema
// compiled by ajv at run time says (the errors validate.ts turns into `FILE: /pointer: message`).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Ajv } from 'ajv';
import standalone from '../../src/config/generated/service-validator.js';
import { limitsSchemaId, loadLimitsSchema, loadServiceSchema } from '../../src/config/validate.js';

const root = join(import.meta.dirname, '..', '..');
const generated = {
  service: join('src', 'config', 'generated', 'service-validator.js'),
  control: join('src', 'control', 'generated', 'request-validator.js'),
};

for (const [name, path] of Object.entries(generated)) {
  t.test(
    `the generated ${name} validator is what its schema gives now (npm run build)`,
    async (t) => {
      const script = join(root, 'scripts', 'validator.mjs');
      const fresh = spawnSync(process.execPath, [script, '--stdout', name], { encoding: 'utf8' });
      t.equal(fresh.status, 0, fresh.stderr);
      t.ok(fresh.stdout.includes('export default'), 'an ES module');
      t.equal(readFileSync(join(root, path), 'utf8'), fresh.stdout, `${path} is stale`);
      const built = join(root, 'dist', path);
      if (existsSync(built)) t.equal(readFileSync(built, 'utf8'), fresh.stdout, `dist/${path}`);
    },
  );
}

/** The schema compiled at run time, with the options the generator uses (what validate.ts did). */
function compileAtRunTime(): (data: unknown) => { valid: boolean; errors: unknown } {
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: true,
    strict: true,
    allowUnionTypes: true,
    verbose: true,
  });
  ajv.addSchema(loadLimitsSchema(), limitsSchemaId);
  const validate = ajv.compile(loadServiceSchema());
  return (data) => ({ valid: validate(data), errors: validate.errors ?? null });
}

/** Odd values of every JSON type, each put in place of a key's value. */
const oddValues: unknown[] = [
  null,
  0,
  -1,
  1.5,
  1e12,
  '',
  'x',
  '0777',
  true,
  [],
  [1],
  ['a', ''],
  {},
];
oddValues.push({ zz: 1 }, { perSecond: -1 }, { onLimit: 'banner' }, 'SIGKILL', 'tcp:1:2');

const bases: Record<string, unknown>[] = [
  { listen: 'tcp:127.0.0.1:7', exec: ['/bin/true'] },
  { listen: ['udp:127.0.0.1:7'], accept: false, exec: ['/bin/true'] },
  { listen: 'unix:/run/x.sock', proxy: 'tcp:127.0.0.1:8' },
  { listen: 'tcp:9', builtin: 'echo' },
];

/** Every service: the bases, each key of the schema (and of its nested objects) set to each odd value. */
function corpus(): unknown[] {
  const out: unknown[] = [...bases, {}, [], null, 'x', { exec: ['/bin/true'] }];
  out.push({ ...bases[0], proxy: 'tcp:1.2.3.4:5' }, { ...bases[0], unknwon: 1, limts: {} });
  const service = loadServiceSchema() as { properties: Record<string, { properties?: object }> };
  const limits = loadLimitsSchema() as { definitions: Record<string, { properties?: object }> };
  const nested: Record<string, string[]> = {
    limits: Object.keys(limits.definitions.limits?.properties ?? {}),
    access: Object.keys(limits.definitions.access?.properties ?? {}),
  };
  for (const [key, sub] of Object.entries(service.properties))
    nested[key] ??= Object.keys(sub.properties ?? {});
  for (const base of bases)
    for (const key of Object.keys(service.properties))
      for (const value of oddValues) {
        out.push({ ...base, [key]: value });
        for (const inner of nested[key] ?? []) out.push({ ...base, [key]: { [inner]: value } });
      }
  return out;
}

t.test('standalone code says what the schema compiled at run time says', async (t) => {
  const atRunTime = compileAtRunTime();
  let differences = 0;
  const all = corpus();
  for (const service of all) {
    const [a, b] = [structuredClone(service), structuredClone(service)];
    const expected = atRunTime(a);
    const valid = standalone(b);
    const same =
      valid === expected.valid &&
      JSON.stringify([b, standalone.errors ?? null]) === JSON.stringify([a, expected.errors]);
    if (!same && differences++ < 5)
      t.fail('differs', { service, expected: expected.errors, got: standalone.errors });
  }
  t.equal(differences, 0, `every one of ${all.length} services alike (defaults filled in too)`);
  t.ok(all.length > 2000, 'the corpus covers every key');
});
