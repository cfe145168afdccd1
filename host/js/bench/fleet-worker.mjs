// The JS fleet worker of tests/fleet/README.md ("Fleet workers"): records this worker's
// cooldowns through the store and, in watch mode, times how soon peers' records arrive here.
// One JSON line on stdout; any error: a message on stderr and exit 1.
import { readFileSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Policy, openStore } from '../src/index.js';

const QUOTA_BODY = JSON.stringify({
  error: { message: 'You exceeded your current quota, please check your plan and billing details.', type: 'insufficient_quota', code: 'insufficient_quota' },
});

function fail(message) {
  process.stderr.write(`fleet-worker: ${message}\n`);
  process.exit(1);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        store: { type: 'string' }, name: { type: 'string' }, config: { type: 'string' }, worker: { type: 'string' },
        keys: { type: 'string' }, mode: { type: 'string' }, peers: { type: 'string' }, 'timeout-ms': { type: 'string', default: '10000' },
        'ca-file': { type: 'string' }, 'start-at': { type: 'string' },
      },
      strict: true,
    }));
  } catch (e) {
    fail(e.message);
  }
  for (const required of ['store', 'name', 'config', 'worker', 'keys', 'mode']) {
    if (values[required] === undefined) fail(`--${required} is required`);
  }
  const int = (name, value) => {
    if (!/^\d+$/.test(value ?? '')) fail(`--${name} must be a non-negative integer, not ${JSON.stringify(value)}`);
    return Number(value);
  };
  if (values.mode !== 'record' && values.mode !== 'watch') fail(`--mode must be record or watch, not ${JSON.stringify(values.mode)}`);
  if (values.mode === 'watch' && values.peers === undefined) fail('--peers is required in watch mode');
  return {
    store: values.store, name: values.name, config: values.config, mode: values.mode, caFile: values['ca-file'],
    worker: int('worker', values.worker), keys: int('keys', values.keys), peers: values.peers === undefined ? 0 : int('peers', values.peers),
    timeoutMs: int('timeout-ms', values['timeout-ms']), startAt: values['start-at'] === undefined ? undefined : int('start-at', values['start-at']),
  };
}

async function main() {
  const o = options();
  let config;
  try {
    config = JSON.parse(readFileSync(o.config, 'utf8'));
  } catch (e) {
    fail(`cannot read the config ${o.config}: ${e.message}`);
  }
  const ids = Object.values(config.providers ?? {}).flatMap((p) => p.credentials ?? []).map((c) => c.id);
  const secrets = Object.fromEntries(ids.map((id) => [id, `sk-fleet-${id}`]));
  const store = openStore(o.store, o.store.startsWith('redis') ? { name: o.name, ...(o.caFile ? { caFile: o.caFile } : {}) } : {});
  const errors = [];
  const policy = await Policy.load(config, { secrets, store, onEvent: (e) => { if (e.rule === 'host.store-unavailable') errors.push(e.message); } });
  const report = { host: 'js', worker: o.worker, saves: 0, save_ms: [], refreshes: 0, decisions: 0, seen_ms: {} };
  const finish = () => {
    const stats = policy.storeStats;
    Object.assign(report, { saves: stats.saves, save_ms: stats.saveMs, refreshes: stats.refreshes, failures: stats.failures, errors });
    writeSync(1, `${JSON.stringify(report)}\n`);
  };

  if (o.mode === 'watch' && o.startAt !== undefined) await new Promise((r) => setTimeout(r, Math.max(0, o.startAt - Date.now())));
  for (let j = 0; j < o.keys; j += 1) {
    const route = { provider: 'fleet', model: 'm', credential: `w${o.worker}-k${j}`, position: 0 };
    policy.onFailure(route, { status: 429, headers: { 'content-type': 'application/json' }, body: QUOTA_BODY });
  }
  if (o.mode === 'record') {
    // Exit at once, no close: the host's exit hooks flush what is owed; the line comes after them.
    process.on('exit', finish);
    return;
  }

  const wanted = [];
  for (let p = 0; p < o.peers; p += 1) for (let j = 0; j < o.keys; j += 1) wanted.push(`w${p}-k${j}`);
  const deadline = Date.now() + o.timeoutMs;
  let missing = wanted;
  let checked = -1;
  while (missing.length > 0 && Date.now() < deadline) {
    try {
      policy.select();
    } catch {
      // every key cooling is a decision too (no route)
    }
    report.decisions += 1;
    // Only a refresh brings peers' records: reading the snapshot after every select would make
    // dozens of workers on a few cores time their own CPU, not the store.
    const { refreshes } = policy.storeStats;
    if (refreshes === checked) {
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    checked = refreshes;
    const now = Date.now();
    const credentials = JSON.parse(policy.snapshot()).credentials ?? {};
    missing = missing.filter((id) => {
      const c = credentials[id];
      if (!(c?.cooldown_until_ms > now)) return true;
      if (!id.startsWith(`w${o.worker}-`)) report.seen_ms[id] = now - c.last_error_ms;
      return false;
    });
    await new Promise((r) => setTimeout(r, 10));
  }
  await policy.close();
  finish();
}

main().catch((e) => fail(e?.message ?? String(e)));
