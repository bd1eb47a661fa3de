// The refuse90 scenario (issue 4): 9 of every 10 offered connections are refused, by access
// rules or by a per-source rate, so the cost of a refusal is visible next to the cost of a spawn.
// The loadgen binds its connections round-robin to 127.0.0.1 ... 127.0.0.10; only 127.0.0.1 is
// allowed. This file says which servers take part, how each is told to refuse, and where each
// one decides.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { findProgram } from './toolchain.mjs';

export const refusalSources = 10;
export const allowedSource = '127.0.0.1';
export const expectedServedFraction = 1 / refusalSources;
/** How far (absolute) the served fraction may stray from 10% before the report flags it. */
export const servedFractionTolerance = 0.02;

/** Servers without a way to refuse by source: no row in the refuse90 table, and why. */
const unsupported = {
  'null-server': 'answers every connection without spawning; it has no access control',
  vfork: 'the C vfork floor has no access control',
  'node-spawn': 'the minimal reference server has no access control',
  'systemd-socket-activate':
    'has no access control (no allow/deny option; IPAddressAllow= belongs to systemd units, not to this tool), so it cannot refuse anyone',
};

/** What refuses, and where, per server and variant: the table's "refused by" column. */
export function describeRefusal(id, refusal) {
  if (id === 'socketeer' && refusal.by === 'rate') {
    const { perSecond, burst } = refusal.rate;
    return `limits.perSourceRate ${perSecond}/s burst ${burst}, before fork`;
  }
  if (id === 'socketeer') return `access.allow ${allowedSource}, before fork`;
  if (id === 'xinetd') return `only_from ${allowedSource}, in the forked child`;
  if (id === 'tcpserver') return `rules cdb (-x), in the forked child`;
  return refusal.by;
}

/** The runs of the scenario, in order: socketeer's access variant before its rate variant. */
export function expandRefusalRuns(options) {
  const runs = [];
  for (const id of options.servers) {
    if (unsupported[id] !== undefined) {
      runs.push({ id, spawner: null, refusal: null, skip: unsupported[id] });
      continue;
    }
    const spawners = id === 'socketeer' && options.spawners.length > 0 ? options.spawners : [null];
    for (const spawner of spawners) runs.push({ id, spawner, refusal: { by: 'access' } });
    if (id !== 'socketeer') continue;
    for (const spawner of spawners) {
      for (const concurrency of options.refuseConcurrencies) {
        runs.push({ id, spawner, refusal: { by: 'rate' }, concurrencies: [concurrency] });
      }
    }
  }
  return runs;
}

/** `socketeer (by access)`, `socketeer (native, by rate)`; other servers keep their label. */
export function labelRefusalRun(id, label, refusal) {
  if (id !== 'socketeer') return label;
  const match = /^(.*) \((.*)\)$/.exec(label);
  return match === null
    ? `${label} (by ${refusal.by})`
    : `${match[1]} (${match[2]}, by ${refusal.by})`;
}

/**
 * The per-source bucket for socketeer's rate variant at one concurrency: a tenth of the offered
 * rate its access variant (same spawner) reached there, split over the sources. If a rate
 * refusal costs what a denial costs, ~10% of the offered connections are then served. Returns
 * { rate: {perSecond, burst} } or { skip: reason }.
 */
export function calibrateRate(measured, { spawner, concurrency }) {
  const access = measured.find(
    (s) => s.id === 'socketeer' && s.spawner === spawner && s.refusal?.by === 'access',
  );
  const offered = access?.cells.find((c) => c.concurrency === concurrency)?.loadgen.offered_per_s;
  const perSecond = Number(
    (((offered ?? 0) * expectedServedFraction) / refusalSources).toPrecision(2),
  );
  if (!(perSecond > 0)) {
    return {
      skip: `the rate is a tenth of the access variant's offered conn/s at c=${concurrency}, which was not measured`,
    };
  }
  return { rate: { perSecond, burst: 1 } };
}

/** Service keys that make socketeer refuse: none (spawn scenario), access.allow or a rate. */
export function socketeerRefusalKeys(refusal) {
  if (refusal === null || refusal === undefined) return {};
  if (refusal.by === 'access') return { access: { allow: [allowedSource] } };
  return { limits: { perSourceRate: refusal.rate } };
}

/** xinetd service lines for the refusal (checked by the forked child, before the exec). */
export function xinetdRefusalLines(refusal) {
  return refusal === null || refusal === undefined ? [] : [`only_from = ${allowedSource}`];
}

/**
 * Compiles `127.0.0.1:allow` and `:deny` with tcprules into WORKDIR/SLUG.cdb for `tcpserver -x`.
 * Returns { cdb, config } (config: the rules text and how it was compiled) or { skip: reason }.
 */
export function writeTcpRules(workDir, slug) {
  const tcprules = findProgram('tcprules');
  if (tcprules === null) return { skip: 'tcprules not found (Debian package ucspi-tcp)' };
  const rules = `${allowedSource}:allow\n:deny\n`;
  const cdb = join(workDir, `${slug}.cdb`);
  const result = spawnSync(tcprules, [cdb, `${cdb}.tmp`], { input: rules, encoding: 'utf8' });
  if (result.status !== 0) {
    const said = (result.stderr || result.error?.message || '').trim();
    return { skip: `tcprules failed (${result.signal ?? `exit ${result.status}`}): ${said}` };
  }
  return { cdb, config: `${rules}# compiled: tcprules ${cdb} ${cdb}.tmp < rules\n` };
}
