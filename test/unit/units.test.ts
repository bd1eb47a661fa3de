import t from 'tap';
import { defaultUnitDir, quoteArg, renderUnit } from '../../src/commands/install-units.js';
import { statusText } from '../../src/daemon/notify.js';

t.test('unit paths: %-escaped, quoted only when they must be', async (t) => {
  t.equal(quoteArg('/usr/bin/node'), '/usr/bin/node');
  t.equal(quoteArg('/opt/50%/node'), '/opt/50%%/node');
  t.equal(quoteArg('/opt/my apps/"x"\\y'), '"/opt/my apps/\\"x\\"\\\\y"');
  t.equal(
    renderUnit('ExecStart=@NODE@ @MAIN@ serve\nExecReload=@NODE@ @MAIN@ reload\n', {
      node: '/n',
      main: '/m a/main.js',
    }),
    'ExecStart=/n "/m a/main.js" serve\nExecReload=/n "/m a/main.js" reload\n',
  );
});

t.test('default unit directories', async (t) => {
  t.equal(defaultUnitDir(false, {}), '/etc/systemd/system');
  t.equal(defaultUnitDir(true, { XDG_CONFIG_HOME: '/x' }), '/x/systemd/user');
});

t.test('STATUS= text sums every service', async (t) => {
  const service = (name: string, listeners: number, active: number) => ({
    name,
    state: 'running' as const,
    listeners: Array.from({ length: listeners }, (_, i) => `tcp:127.0.0.1:${i}`),
    counters: { accepted: 10, refused: { rate: 2, denied: 1 }, active, spawnFailed: 0 },
    connections: [],
  });
  const status = {
    pid: 1,
    startedAt: '',
    configDir: '/c',
    services: [service('a', 1, 1), service('b', 2, 0)],
  };
  t.equal(statusText(status), '2 services, 3 listeners; 1 running, 20 accepted, 6 refused');
  t.equal(
    statusText({ ...status, services: [] }),
    '0 services, 0 listeners; 0 running, 0 accepted, 0 refused',
  );
});
