import { symlinkSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { escapeName } from '../../src/config/escape.js';
import {
  DaemonUnderTest,
  exchange,
  isRoot,
  makeConfDir,
  writeServices,
  type LogRecord,
} from '../helpers/daemon.js';

const self = userInfo().username;
const mine = escapeName(self);

t.test(
  'a template instance served over a real socket whose path and user come from %i',
  async (t) => {
    const conf = makeConfDir({});
    const d = conf.confDir;
    writeServices(d, {
      'echo-as@.json': {
        listen: `unix:${conf.dir}/%i.sock`,
        user: '%I',
        exec: ['/bin/sh', '-c', 'echo "%n $(id -un) $SOCKETEER_SERVICE"'],
        stderr: 'null',
      },
      [`echo-as@${mine}.json`]: {},
      ...(isRoot ? { 'echo-as@nobody.json': {} } : {}),
    });
    if (isRoot) symlinkSync('echo-as@.json', join(d, 'echo-as@daemon.json'));
    const daemon = await DaemonUnderTest.start(d);
    t.teardown(async () => {
      await daemon.stop();
      conf.cleanup();
    });

    await t.test('the instance named after the daemon user', async (t) => {
      t.same(daemon.addresses.get(`echo-as@${mine}`), [`unix:${conf.dir}/${mine}.sock`]);
      const reply = await exchange({ path: join(conf.dir, `${mine}.sock`) }, null);
      t.equal(reply.toString(), `echo-as@${mine} ${self} echo-as@${mine}\n`);
      const end = await daemon.waitForLog(
        (r: LogRecord) => r.event === 'end' && r.service === `echo-as@${mine}`,
      );
      t.equal(end.exitCode, 0, 'the handler ran and exited 0');
    });

    await t.test(
      'instances named nobody and daemon (a symlink to the template) run as those users',
      { skip: isRoot ? false : 'needs root: only a root daemon can switch user' },
      async (t) => {
        const nobody = await exchange({ path: join(conf.dir, 'nobody.sock') }, null);
        t.equal(nobody.toString(), 'echo-as@nobody nobody echo-as@nobody\n');
        const daemonUser = await exchange({ path: join(conf.dir, 'daemon.sock') }, null);
        t.equal(daemonUser.toString(), 'echo-as@daemon daemon echo-as@daemon\n');
      },
    );
  },
);
