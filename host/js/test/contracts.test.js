// The JS host speaks contracts 0.1.0 and 0.2.0: the deployed 0.1.0 build loads and decides as
// before, and a component of any other version is refused naming both, at load and at swap, with
// the running policy kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ContractError, Policy, SwapError, VirtualClock } from '../src/index.js';
import { QUOTA_429 } from './mock-provider.js';
import { initCooldownConfig, SECRETS } from './configs.js';
import { broken, NO_CARGO, ROOT } from './broken.js';

const V0_1 = `${ROOT}tests/policies/v0.1.0/failover_policy.wasm`;
const PACKAGED = readFileSync(new URL('../src/policy.wasm', import.meta.url));
// Nothing is sent in these tests: decisions only, on a port no one listens on.
const MOCK = { baseUrl: (provider) => `http://127.0.0.1:9/${provider}/v1` };
const REFUSAL = /exports failover:policy\/policy@0\.3\.0; this host speaks 0\.1\.0 and 0\.2\.0/;

/** A policy whose primary key is in quota cooldown: later selects fall back. */
async function cooledPolicy(options = {}) {
  const events = [];
  const policy = await Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS, clock: new VirtualClock(), onEvent: (e) => events.push(e), ...options });
  const action = policy.onFailure(policy.select(), { status: QUOTA_429.status, body: JSON.stringify(QUOTA_429.body) });
  assert.equal(action.kind, 'fall-back', action.why);
  return { policy, events };
}

test('the packaged policy speaks 0.2.0', async () => {
  assert.equal((await Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS })).contract, '0.2.0');
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
  await assert.rejects(Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS, wasm: broken('contract-0-3') }),
    (e) => e instanceof ContractError && REFUSAL.test(e.message));
});

test('another contract version is refused at swap and the running policy stays', { skip: NO_CARGO }, async () => {
  const { policy } = await cooledPolicy();
  const [before, version] = [policy.snapshot(), policy.version()];
  await assert.rejects(policy.swap(broken('contract-0-3')), (e) => e instanceof SwapError && REFUSAL.test(e.message));
  assert.deepEqual([policy.version(), policy.contract, policy.snapshot()], [version, '0.2.0', before]);
  assert.equal(policy.select().provider, 'tencent-token-plan');
});

test('a swap to the 0.1.0 fixture and back carries the state', async () => {
  const { policy } = await cooledPolicy();
  await policy.swap(V0_1);
  assert.equal(policy.contract, '0.1.0');
  assert.equal(policy.select().provider, 'tencent-token-plan', '0.1.0 holds the cooldown 0.2.0 wrote');
  await policy.swap(PACKAGED);
  assert.equal(policy.contract, '0.2.0');
  assert.equal(policy.select().provider, 'tencent-token-plan', 'and 0.2.0 again after 0.1.0');
});
