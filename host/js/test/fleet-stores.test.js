// The fleet stores (tests/fleet/README.md) through real processes and a real redis-server:
// nothing lost with many writers exiting right after their saves, expiry, the keys' TTLs, a down
// Redis, TLS with an ACL user, and what the file store sets aside or refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileStore, Policy, RedisStore, StoreRefused, VirtualClock } from '../src/index.js';
import { WORKER, cooling, fleetConfig, freePort, makeCerts, runNode, startRedis, tempDir } from './fleet-helpers.js';

const QUOTA = { status: 429, body: JSON.stringify({ error: { message: 'You exceeded your current quota.', type: 'insufficient_quota', code: 'insufficient_quota' } }) };
const route = (credential) => ({ provider: 'fleet', model: 'm', credential, position: 0 });

let unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

/** `workers` record-mode processes at once, each exiting right after its saves; what the store then holds. */
async function recordAll(storeSpec, workers, keys, extra = []) {
  const dir = tempDir();
  const { path, config, secrets } = fleetConfig(dir, workers, keys);
  const runs = await Promise.all(Array.from({ length: workers }, (_, i) => runNode(WORKER, [
    '--store', storeSpec, '--name', 'lost', '--config', path, '--worker', String(i), '--keys', String(keys), '--mode', 'record', ...extra])));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const lines = runs.map((r) => JSON.parse(r.stdout.trim()));
  return { lines, config, secrets };
}

function expected(workers, keys) {
  const ids = [];
  for (let i = 0; i < workers; i += 1) for (let j = 0; j < keys; j += 1) ids.push(`w${i}-k${j}`);
  return ids.sort();
}

test('file store: 16 writer processes exiting right after their saves lose nothing', async () => {
  const dir = tempDir();
  const state = join(dir, 'state.json');
  const { lines, config, secrets } = await recordAll(`file:${state}`, 16, 4);
  assert.ok(lines.every((l) => l.host === 'js' && l.saves >= 1), JSON.stringify(lines));
  const reader = await Policy.load(config, { secrets, store: new FileStore(state) });
  assert.deepEqual(cooling(reader.snapshot()), expected(16, 4));
  await reader.close();
});

test('Redis: 32 writer processes exiting right after their saves lose nothing', async () => {
  const redis = await startRedis();
  try {
    const { config, secrets } = await recordAll(redis.url, 32, 4);
    const reader = await Policy.load(config, { secrets, store: new RedisStore(redis.url, { name: 'lost' }) });
    assert.deepEqual(cooling(reader.snapshot()), expected(32, 4));
    await reader.close();
  } finally {
    await redis.stop();
  }
});

test('file store: process.exit() right after a change still appends it (synchronously, on exit)', async () => {
  const dir = tempDir();
  const state = join(dir, 'state.json');
  const { path, config, secrets } = fleetConfig(dir, 1, 1);
  const script = join(dir, 'exit.mjs');
  writeFileSync(script, `import { Policy, FileStore } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
import { readFileSync } from 'node:fs';
const p = await Policy.load(JSON.parse(readFileSync(${JSON.stringify(path)}, 'utf8')), { secrets: ${JSON.stringify(secrets)}, store: new FileStore(${JSON.stringify(state)}) });
p.onFailure({ provider: 'fleet', model: 'm', credential: 'w0-k0', position: 0 }, ${JSON.stringify(QUOTA)});
process.exit(0);
`);
  const r = await runNode(script, []);
  assert.equal(r.code, 0, r.stderr);
  const reader = await Policy.load(config, { secrets, store: new FileStore(state) });
  assert.deepEqual(cooling(reader.snapshot()), ['w0-k0']);
});

test('expiry: a fold forgets records idle past forgetAfterMs and keeps the live ones', async () => {
  const dir = tempDir();
  const state = join(dir, 'state.json');
  const { config, secrets } = fleetConfig(dir, 1, 2);
  // w0-k0 failed 10 days ago (its cooldown long over); w0-k1 fails now.
  const old = await Policy.load(config, { secrets, clock: new VirtualClock(Date.now() - 10 * 86_400_000) });
  old.onFailure(route('w0-k0'), QUOTA);
  writeFileSync(state, old.snapshot());
  const p = await Policy.load(config, { secrets, store: new FileStore(state, { foldAfter: 0 }) });
  p.onFailure(route('w0-k1'), QUOTA);
  await p.close();
  const base = JSON.parse(readFileSync(state, 'utf8'));
  assert.equal(base.credentials['w0-k0']?.last_error_ms, undefined, 'the idle record was forgotten');
  assert.ok(base.credentials['w0-k1'].cooldown_until_ms > Date.now(), 'the live cooldown stays');
  assert.equal(readFileSync(`${state}.log`, 'utf8'), '', 'the folded log is empty');
});

test('file store: a corrupt base and corrupt log lines are set aside, the rest is read', async () => {
  const dir = tempDir();
  const state = join(dir, 'state.json');
  const { config, secrets } = fleetConfig(dir, 1, 2);
  const peer = await Policy.load(config, { secrets });
  peer.onFailure(route('w0-k1'), QUOTA);
  writeFileSync(state, '{"schema": 2, "credentials": [');
  writeFileSync(`${state}.log`, `not json\n${peer.snapshot()}\n`);
  const notices = [];
  const p = await Policy.load(config, { secrets, store: new FileStore(state, { foldAfter: 0 }), onEvent: (e) => notices.push(e) });
  assert.deepEqual(cooling(p.snapshot()), ['w0-k1'], 'the good log line was read');
  const aside = readdirSync(dir).filter((f) => f.startsWith('state.json.corrupt-'));
  assert.equal(aside.length, 1, readdirSync(dir).join(' '));
  assert.equal(readFileSync(join(dir, aside[0]), 'utf8'), '{"schema": 2, "credentials": [');
  assert.ok(notices.some((e) => e.rule === 'host.store-set-aside' && e.message.includes(aside[0])), notices.map((e) => e.message).join('; '));
  p.onFailure(route('w0-k0'), QUOTA); // a save, then a fold (foldAfter 0)
  await p.close();
  const lines = readdirSync(dir).filter((f) => f.startsWith('state.json.log.corrupt-'));
  assert.equal(lines.length, 1, readdirSync(dir).join(' '));
  assert.equal(readFileSync(join(dir, lines[0]), 'utf8'), 'not json\n');
  assert.deepEqual(cooling(readFileSync(state, 'utf8')), ['w0-k0', 'w0-k1']);
});

test('file store: a base of a newer schema is refused and left untouched', async () => {
  const dir = tempDir();
  const state = join(dir, 'state.json');
  const { config, secrets } = fleetConfig(dir, 1, 1);
  const newer = '{"schema": 99, "credentials": {}}';
  writeFileSync(state, newer);
  await assert.rejects(Policy.load(config, { secrets, store: new FileStore(state) }),
    (e) => e instanceof StoreRefused && e.message.includes(state) && /schema/.test(e.message));
  assert.equal(readFileSync(state, 'utf8'), newer);
  assert.ok(!readdirSync(dir).some((f) => f.includes('corrupt')));
});

test('Redis down: calls go on, the first costs at most the timeout, later ones nothing; the first save after it returns catches up', async () => {
  unhandled = [];
  const port = await freePort();
  const dir = tempDir();
  const { config, secrets } = fleetConfig(dir, 1, 3);
  const url = `redis://127.0.0.1:${port}`;
  const notices = [];
  let t = performance.now();
  const p = await Policy.load(config, { secrets, store: new RedisStore(url, { name: 'down', retryMs: 300 }), onEvent: (e) => notices.push(e) });
  assert.ok(performance.now() - t < 1500, `load took ${performance.now() - t} ms`);
  p.onFailure(route('w0-k0'), QUOTA);
  t = performance.now();
  for (let i = 0; i < 20; i += 1) p.select();
  assert.ok(performance.now() - t < 100, `20 selects while down took ${performance.now() - t} ms`);
  assert.ok(notices.some((e) => e.rule === 'host.store-unavailable' && e.message.includes(`127.0.0.1:${port}`)), JSON.stringify(notices.map((e) => e.message)));
  const redis = await startRedis({ port });
  try {
    // The change made during the pause goes out when the pause ends, with no change after it.
    const deadline = Date.now() + 5000;
    while (Number(redis.cli('XLEN', 'failover-policy:down:log')) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const early = await Policy.load(config, { secrets, store: new RedisStore(redis.url, { name: 'down' }) });
    assert.deepEqual(cooling(early.snapshot()), ['w0-k0'], 'the save owed through the pause went out when it ended');
    await early.close();
    p.onFailure(route('w0-k1'), QUOTA);
    await new Promise((r) => setTimeout(r, 300));
    const reader = await Policy.load(config, { secrets, store: new RedisStore(redis.url, { name: 'down' }) });
    assert.deepEqual(cooling(reader.snapshot()), ['w0-k0', 'w0-k1'], 'what was learned while down reached the store');
    await reader.close();
    await p.close();
    assert.deepEqual(unhandled, []);
  } finally {
    await redis.stop();
  }
});

/** The latest cooldown end in a snapshot: what the policy's keep-until says, read here only to check the TTLs. */
function latestCooldown(state) {
  return Math.max(0, ...Object.values(JSON.parse(state).credentials ?? {}).map((c) => c.cooldown_until_ms ?? 0));
}

test('Redis: every key lives until the latest cooldown ends, at least forgetAfterMs; none expire with forgetAfterMs 0', async () => {
  const redis = await startRedis();
  try {
    const { config, secrets } = fleetConfig(tempDir(), 1, 2);
    for (const forgetAfterMs of [1000, 0]) {
      const name = `ttl-${forgetAfterMs}`;
      const P = `failover-policy:${name}`;
      const pttl = (key) => Number(redis.cli('PTTL', key));
      const writer = await Policy.load(config, { secrets, store: new RedisStore(redis.url, { name, forgetAfterMs }) });
      writer.onFailure(route('w0-k0'), QUOTA);
      await writer.close();
      const appended = latestCooldown(writer.snapshot()) - Date.now();
      assert.ok(appended > 60_000, `a quota cooldown outlasts the 1 s bound by far (${appended} ms)`);
      // A second process folds (foldAfter 0) after its own append.
      const folder = await Policy.load(config, { secrets, store: new RedisStore(redis.url, { name, forgetAfterMs, foldAfter: 0 }) });
      folder.onFailure(route('w0-k1'), QUOTA);
      await folder.close();
      assert.equal(folder.storeStats?.folds, 1, JSON.stringify(folder.storeStats));
      const folded = latestCooldown(folder.snapshot()) - Date.now();
      const keys = { [`${P}:log`]: folded, [P]: folded, [`${P}:folded`]: folded };
      for (const [key, expected] of Object.entries(keys)) {
        const ttl = pttl(key);
        if (forgetAfterMs === 0) assert.equal(ttl, -1, `${key}: no TTL with forgetAfterMs 0`);
        else assert.ok(ttl <= expected && ttl > expected - 5000, `${key}: PTTL ${ttl} ms, the cooldown ends in ${expected} ms`);
      }
    }
  } finally {
    await redis.stop();
  }
});

test('Redis over TLS with an ACL user: records arrive; a wrong password is named', async () => {
  const dir = tempDir();
  const tls = makeCerts(dir);
  const redis = await startRedis({ tls, user: { name: 'fleet', password: 's3cret' } });
  try {
    const { config, secrets } = fleetConfig(dir, 1, 1);
    const writer = await Policy.load(config, { secrets, store: new RedisStore(redis.url, { name: 'tls', caFile: tls.ca }) });
    writer.onFailure(route('w0-k0'), QUOTA);
    await writer.close();
    const reader = await Policy.load(config, { secrets, store: new RedisStore(redis.url, { name: 'tls', caFile: tls.ca }) });
    assert.deepEqual(cooling(reader.snapshot()), ['w0-k0']);
    await reader.close();
    const notices = [];
    const wrong = redis.url.replace('s3cret', 'nope');
    const denied = await Policy.load(config, { secrets, store: new RedisStore(wrong, { name: 'tls', caFile: tls.ca }), onEvent: (e) => notices.push(e) });
    assert.deepEqual(cooling(denied.snapshot()), [], 'nothing loaded');
    const message = notices.find((e) => e.rule === 'host.store-unavailable')?.message ?? '';
    assert.match(message, /WRONGPASS/);
    assert.ok(!message.includes('nope'), 'the password is never printed');
    await denied.close();
  } finally {
    await redis.stop();
  }
});
