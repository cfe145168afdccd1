// The JS host speaks contracts 0.1.0, 0.2.0 and 0.3.0: the deployed 0.1.0 and 0.2.0 builds load
// and decide as before (their scenarios replay in scenarios.test.js), what they lack of 0.3.0 has
// its stand-in, and a component of any other version is refused naming all three, at load and at
// swap, with the running policy kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ContractError, Policy, SwapError, Unsupported, VirtualClock } from '../src/index.js';
import { QUOTA_429 } from './mock-provider.js';
import { initCooldownConfig, SECRETS } from './configs.js';
import { broken, FUTURE, NO_CARGO, ROOT } from './broken.js';

const V0_1 = `${ROOT}tests/policies/v0.1.0/failover_policy.wasm`;
const V0_2 = `${ROOT}tests/policies/v0.2.0/failover_policy.wasm`;
const PACKAGED = readFileSync(new URL('../src/policy.wasm', import.meta.url));
// Nothing is sent in these tests: decisions only, on a port no one listens on.
const MOCK = { baseUrl: (provider) => `http://127.0.0.1:9/${provider}/v1` };
const REFUSAL = new RegExp(`exports failover:policy/policy@${FUTURE.version.replace(/\./g, '\\.')}; this host speaks 0\\.1\\.0, 0\\.2\\.0 and 0\\.3\\.0`);

/** A policy whose primary key is in quota cooldown: later selects fall back. */
async function cooledPolicy(options = {}) {
  const events = [];
  const policy = await Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS, clock: new VirtualClock(), onEvent: (e) => events.push(e), ...options });
  const action = policy.onFailure(policy.select(), { status: QUOTA_429.status, body: JSON.stringify(QUOTA_429.body) });
  assert.equal(action.kind, 'fall-back', action.why);
  return { policy, events };
}

test('the packaged policy speaks 0.3.0', async () => {
  assert.equal((await Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS })).contract, '0.3.0');
});

test('the 0.2.0 fixture loads, says its version and decides', async () => {
  const { policy, events } = await cooledPolicy({ wasm: V0_2 });
  assert.equal(policy.contract, '0.2.0');
  assert.ok(policy.version().policy.startsWith('0.2.'), policy.version().policy);
  assert.ok(events.some((e) => e.kind === 'credential-cooldown'), JSON.stringify(events.map((e) => e.kind)));
  assert.equal(policy.select().provider, 'tencent-token-plan');
  assert.ok(policy.begin({ body: { model: 'x', messages: [] } }), '0.2.0 has the driven call');
});

test('a policy before 0.3.0: absorb is refused by name, changes is the whole state, fold merges pairwise', async () => {
  const { policy } = await cooledPolicy({ wasm: V0_2 });
  const { policy: fresh } = { policy: await Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS, wasm: V0_2, clock: new VirtualClock() }) };
  const [cooled, empty] = [policy.snapshot(), fresh.snapshot()];
  assert.throws(() => fresh.absorb(cooled), (e) => e instanceof Unsupported && e instanceof ContractError
    && e.message === 'absorb needs a policy of contract 0.3.0; the running policy speaks 0.2.0');
  assert.deepEqual(fresh.changes(empty, cooled), { state: cooled, keepUntilMs: 0n }, 'no keep-until before 0.3.0');
  assert.equal(fresh.changes(cooled, cooled), undefined);
  const folded = fresh.fold([empty, 'not json', cooled], Date.now(), 1);
  assert.deepEqual([folded.forgotten, folded.keepUntilMs, folded.unreadable.map((u) => [u.index, u.newer])], [0, 0n, [[1, false]]]);
  assert.match(folded.unreadable[0].message, /./);
  assert.equal(JSON.parse(folded.state).credentials['ali-1'].cooldown_reason, 'quota-exhausted', 'the cooldown survives the fold');
});

test('0.3.0: changes holds only what differs, fold merges and absorb cools a running engine', async () => {
  const { policy } = await cooledPolicy();
  const fresh = await Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS, clock: new VirtualClock() });
  const [cooled, empty] = [policy.snapshot(), fresh.snapshot()];
  const until = BigInt(JSON.parse(cooled).credentials['ali-1'].cooldown_until_ms);
  assert.ok(until > 0n, cooled);
  const delta = fresh.changes(empty, cooled);
  assert.deepEqual(Object.keys(delta ?? {}).sort(), ['keepUntilMs', 'state'], 'WIT delta');
  assert.ok(JSON.parse(delta.state).credentials['ali-1'], delta.state);
  assert.equal(JSON.parse(delta.state).credentials['ten-1'], undefined, 'an unchanged record is not in the delta');
  assert.equal(delta.keepUntilMs, until, 'keep until the cooldown ends');
  assert.equal(fresh.changes(cooled, cooled), undefined);
  assert.equal(fresh.select().provider, 'alibaba-coding-plan');
  fresh.absorb(delta.state);
  assert.equal(fresh.select().provider, 'tencent-token-plan', 'the peer\'s cooldown holds here');
  const folded = fresh.fold([empty, delta.state], Date.now(), 0);
  assert.deepEqual(Object.keys(folded).sort(), ['forgotten', 'keepUntilMs', 'state', 'unreadable'], 'WIT folded');
  assert.deepEqual(folded.unreadable, []);
  assert.equal(BigInt(JSON.parse(folded.state).credentials['ali-1'].cooldown_until_ms), until);
  assert.equal(folded.keepUntilMs, until);
  assert.equal(fresh.fold([empty], Date.now(), 0).keepUntilMs, 0n, 'nothing cooling: 0');
});

test('0.3.0: a delta keeps until the appender\'s latest cooldown, even one the delta does not hold', async () => {
  const { policy } = await cooledPolicy();
  const cooled = policy.snapshot();
  policy.onSuccess(policy.select()); // the fallback answers: a route record changes, no cooldown
  const delta = policy.changes(cooled, policy.snapshot());
  assert.ok(delta, 'the success is a change');
  assert.equal(JSON.parse(delta.state).credentials?.['ali-1'], undefined, 'the cooldown is not in the delta');
  assert.equal(delta.keepUntilMs, BigInt(JSON.parse(cooled).credentials['ali-1'].cooldown_until_ms));
});

test('the 0.1.0 fixture loads, says its version and decides', async () => {
  const { policy, events } = await cooledPolicy({ wasm: V0_1 });
  assert.equal(policy.contract, '0.1.0');
  const { policy: name, schema } = policy.version();
  assert.ok(name.startsWith('0.1.') && schema === 2, `${name} ${schema}`);
  assert.ok(events.some((e) => e.kind === 'credential-cooldown'), JSON.stringify(events.map((e) => e.kind)));
  assert.equal(policy.select().provider, 'tencent-token-plan');
});

test('another contract version is refused at load naming both', { skip: NO_CARGO }, async () => {
  await assert.rejects(Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS, wasm: broken(FUTURE.feature) }),
    (e) => e instanceof ContractError && REFUSAL.test(e.message));
});

test('another contract version is refused at swap and the running policy stays', { skip: NO_CARGO }, async () => {
  const { policy } = await cooledPolicy();
  const [before, version] = [policy.snapshot(), policy.version()];
  await assert.rejects(policy.swap(broken(FUTURE.feature)), (e) => e instanceof SwapError && REFUSAL.test(e.message));
  assert.deepEqual([policy.version(), policy.contract, policy.snapshot()], [version, '0.3.0', before]);
  assert.equal(policy.select().provider, 'tencent-token-plan');
});

for (const [fixture, version] of [[V0_1, '0.1.0'], [V0_2, '0.2.0']]) {
  test(`a swap to the ${version} fixture and back carries the state`, async () => {
    const { policy } = await cooledPolicy();
    await policy.swap(fixture);
    assert.equal(policy.contract, version);
    assert.equal(policy.select().provider, 'tencent-token-plan', `${version} holds the cooldown 0.3.0 wrote`);
    await policy.swap(PACKAGED);
    assert.equal(policy.contract, '0.3.0');
    assert.equal(policy.select().provider, 'tencent-token-plan', `and 0.3.0 again after ${version}`);
  });
}
