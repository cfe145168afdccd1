// What the Policy does per call and per swap: a snapshot only after calls that changed the
// state, yet a fault restores the last good state with no change a caller saw lost; a trapped
// instance is never called again; swapping back to a seen build reuses its instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Policy, VirtualClock } from '../src/index.js';
import { compile, instanceCount } from '../src/bindings.js';
import { QUOTA_429 } from './mock-provider.js';
import { initCooldownConfig, SECRETS } from './configs.js';

const WASM = readFileSync(new URL('../src/policy.wasm', import.meta.url));
/** The same policy with a custom section appended: a different hash, so another build. */
const VARIANT = Buffer.concat([WASM, Buffer.from([0, 7, 6, ...Buffer.from('build2')])]);
const MOCK = { baseUrl: (provider) => `http://127.0.0.1:9/${provider}/v1` };
const PRIMARY = { provider: 'alibaba-coding-plan', model: 'qwen3.6-plus', credential: 'ali-1', position: 0 };
const QUOTA = { status: QUOTA_429.status, body: JSON.stringify(QUOTA_429.body) };
const REQUEST = { path: '/chat/completions', body: { model: 'x', messages: [] } };

/**
 * The compiled policy with every instance's engine methods observed: `calls` lists
 * `[instance, method]`; `arm(method, {after})` makes the next call of `method` throw as a trap
 * would (`after`: once the real call has run, so the state is changed but the result is lost).
 */
async function observed() {
  const entry = await compile(new Uint8Array(WASM));
  const calls = [];
  const armed = new Map();
  let instances = 0;
  const wrapEngine = (engine, n) => new Proxy(engine, {
    get(target, key) {
      const value = target[key];
      if (typeof value !== 'function') return value;
      return (...args) => {
        const name = typeof key === 'symbol' ? 'drop' : key;
        calls.push([n, name]);
        const trap = armed.get(name);
        if (trap) armed.delete(name);
        if (trap && !trap.after) throw new WebAssembly.RuntimeError('unreachable (injected)');
        const out = value.apply(target, args);
        if (trap) throw new WebAssembly.RuntimeError('unreachable (injected)');
        return out;
      };
    },
  });
  const instantiate = (getCore, imports) => {
    const n = ++instances;
    const api = entry.instantiate(getCore, imports)[entry.exportName];
    const Engine = { create: (...args) => wrapEngine(api.Engine.create(...args), n) };
    return { [entry.exportName]: { ...api, Engine } };
  };
  return {
    entry: { ...entry, instantiate },
    calls,
    arm: (method, { after = false } = {}) => armed.set(method, { after }),
    instances: () => instances,
    snapshots: () => calls.filter(([, m]) => m === 'snapshot').length,
  };
}

async function load(options = {}) {
  const o = await observed();
  const events = [];
  const clock = new VirtualClock(1_795_528_800_000);
  const policy = new Policy(o.entry, initCooldownConfig(MOCK), {
    secrets: SECRETS, clock, onEvent: (e) => events.push(e), ...options,
  });
  return { policy, events, clock, ...o };
}

function snapshotsDuring(o, fn) {
  const before = o.snapshots();
  fn();
  return o.snapshots() - before;
}

test('a snapshot after on-failure and the like, after select or start-call only with an event, never after reads', async () => {
  const o = await load();
  const { policy } = o;
  let route;
  assert.equal(snapshotsDuring(o, () => { route = policy.select(); }), 0, 'a quiet select changed nothing');
  assert.equal(snapshotsDuring(o, () => policy.startCall()), 0, 'nor a quiet start-call');
  assert.equal(snapshotsDuring(o, () => policy.onFailure(route, QUOTA)), 1, 'ali-1 cools down: fall back');
  assert.equal(snapshotsDuring(o, () => { route = policy.select(); }), 0, 'still quiet on the fallback');
  assert.equal(route.position, 1);
  o.clock.advance(2 * 24 * 3_600_000);
  const events = o.events.length;
  assert.equal(snapshotsDuring(o, () => { route = policy.select(); }), 1, 'a select with an event (primary back)');
  assert.ok(o.events.slice(events).some((e) => e.kind === 'primary-restored'));
  assert.equal(route.position, 0);
  assert.equal(snapshotsDuring(o, () => policy.onSuccess(route)), 1);
  assert.equal(snapshotsDuring(o, () => policy.setCredentials([{ id: 'ali-1', fingerprint: 'f1' }, { id: 'ten-1', fingerprint: 'f2' }])), 1);
  assert.equal(snapshotsDuring(o, () => policy.prepare(route, REQUEST)), 0);
  assert.equal(snapshotsDuring(o, () => policy.classify('alibaba-coding-plan', QUOTA)), 0);
  assert.equal(snapshotsDuring(o, () => policy.check()), 0);
  assert.equal(snapshotsDuring(o, () => policy.version()), 0);
  assert.equal(snapshotsDuring(o, () => policy.snapshot()), 1, 'snapshot() calls the guest once');
});

test('a fault after reads and quiet selects restores the state of the last change the caller saw', async () => {
  const o = await load();
  const { policy, events } = o;
  const action = policy.onFailure(PRIMARY, QUOTA); // acknowledged: ali-1 cools down, fall back
  assert.equal(action.route.position, 1);
  const seen = policy.snapshot();
  policy.prepare(action.route, REQUEST); // reads and a quiet select: no snapshot
  assert.equal(policy.select().position, 1);
  policy.classify('alibaba-coding-plan', QUOTA);
  policy.version();
  const faulted = o.instances();
  o.arm('select');
  assert.throws(() => policy.select(), /the failover policy failed \(RuntimeError: unreachable \(injected\)\)/);
  const mark = o.calls.length;
  assert.equal(o.instances(), faulted + 1, 'restarted in a new instance');
  assert.equal(policy.snapshot(), seen, 'the cooldown the caller saw survived');
  assert.equal(policy.select().position, 1);
  assert.equal(events.filter((e) => e.rule === 'host.policy-fault').length, 1);
  assert.deepEqual(o.calls.slice(mark).filter(([n]) => n === faulted), [], 'the trapped instance is never called again');
});

test('a fault in the middle of a changing call restores the state before that call', async () => {
  const o = await load();
  const { policy } = o;
  policy.select();
  const before = policy.snapshot();
  const faulted = o.instances();
  o.arm('onFailure', { after: true }); // the guest changed its state, then trapped
  const action = policy.onFailure(PRIMARY, QUOTA);
  assert.equal(action.rule, 'host.policy-fault.retry', 'the caller got the fail-open default, not the lost decision');
  assert.equal(policy.snapshot(), before);
  assert.equal(policy.select().position, 0, 'no half-made cooldown');
  assert.ok(o.calls.filter(([n]) => n === faulted).every(([, m]) => m !== 'drop'), 'not even dropped into');
});

test('a fault in the snapshot after a change restarts from the state before it', async () => {
  const o = await load();
  const { policy } = o;
  const before = policy.snapshot();
  o.arm('snapshot');
  const action = policy.onFailure(PRIMARY, QUOTA);
  assert.equal(action.rule, 'host.policy-fault.retry', 'the caller never saw the decision whose state was not kept');
  assert.equal(policy.snapshot(), before);
});

test('swapping back to a seen build reuses its instance and keeps the state', async () => {
  const policy = await Policy.load(initCooldownConfig(MOCK), { secrets: SECRETS, clock: new VirtualClock(1_795_528_800_000) });
  policy.onFailure(PRIMARY, QUOTA);
  const cooled = () => JSON.parse(policy.snapshot()).credentials['ali-1'].cooldown_reason;
  let n = instanceCount();
  await policy.swap(VARIANT);
  assert.equal(instanceCount(), n + 1, 'a new build instantiates');
  n = instanceCount();
  await policy.swap(WASM);
  assert.equal(instanceCount(), n, 'back to the build it replaced: its instance, no instantiation');
  assert.equal(cooled(), 'quota-exhausted');
  assert.equal(policy.select().position, 1);
  await policy.swap(VARIANT);
  assert.equal(instanceCount(), n, 'and back again');
  assert.equal(cooled(), 'quota-exhausted');
  await policy.swap(VARIANT);
  assert.equal(instanceCount(), n + 1, 'the running build again: a fresh instance, the running one untouched');
  assert.equal(policy.check().ok, true);
  assert.equal(policy.select().position, 1);
});
