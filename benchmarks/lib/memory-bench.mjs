// The `memory` scenario (issue 15's footprint goal): a fresh socketeer, its RSS once it is ready
// (idle), then right after --memory-connections connections at c=8 and again 2 s later, with
// the anonymous part (RssAnon: what is socketeer's own, not the shared `node` binary).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runLoadgen } from './measure.mjs';
import { stopDaemon } from './processes.mjs';
import { serverTable, startServer } from './servers.mjs';

const memoryConcurrency = 8;
const settleMs = 2000;

/** VmRSS and RssAnon of a process in KiB ({ rss, anon }), or null when it is gone. */
export function readMemoryKiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1]);
    return { rss: field('VmRSS'), anon: field('RssAnon') };
  } catch {
    return null;
  }
}

/** One socketeer run: { label, command, idle, loaded, settled, load } or { label, failed }. */
async function measureOne(ctx, spawner, { connections, timeout, say }) {
  const run = { ...ctx, spawner, refusal: null, slug: `memory-${spawner ?? 'default'}` };
  const label = serverTable.socketeer.label(run);
  const plan = serverTable.socketeer.plan(run);
  if (plan.skip !== undefined) return { label, failed: plan.skip };
  const logPath = join(ctx.logDir, `${run.slug}.log`);
  const started = await startServer(plan, { logPath });
  try {
    if (started.error !== undefined) return { label, failed: started.error.message };
    const { child, port } = started;
    const idle = readMemoryKiB(child.pid);
    say(`memory: ${label}: idle ${describe(idle)}; ${connections} connections at c=8`);
    const load = await runLoadgen({
      loadgen: ctx.programs.loadgen,
      port,
      concurrency: memoryConcurrency,
      // the count ends the run; the duration is only a guard
      seconds: 3600,
      timeout,
      sources: 0,
      count: connections,
    });
    const loaded = readMemoryKiB(child.pid);
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const settled = readMemoryKiB(child.pid);
    say(
      `memory: ${label}: after ${load.count} served: ${describe(loaded)}, 2 s later ${describe(settled)}`,
    );
    return { label, command: plan.argv.join(' '), idle, loaded, settled, load };
  } catch (error) {
    return { label, failed: error.message };
  } finally {
    await stopDaemon(started.child);
  }
}

function describe(memory) {
  if (memory === null) return 'n/a';
  return `RSS ${(memory.rss / 1024).toFixed(1)} MiB (anonymous ${(memory.anon / 1024).toFixed(1)})`;
}

/**
 * Runs the scenario for each requested spawner (once without the flag when none is given).
 * Resolves with { connections, concurrency, settleMs, runs }.
 */
export async function runMemoryScenario(ctx, { options, say }) {
  const spawners = options.spawners.length > 0 ? options.spawners : [null];
  const runs = [];
  for (const spawner of spawners) {
    const connections = options.memoryConnections;
    runs.push(await measureOne(ctx, spawner, { connections, timeout: options.timeout, say }));
  }
  return { connections: options.memoryConnections, concurrency: memoryConcurrency, settleMs, runs };
}
