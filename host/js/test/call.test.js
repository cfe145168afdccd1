// (b) The async driver against a real HTTP server on 127.0.0.1: decisions from the guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Policy, PolicyError, VirtualClock } from '../src/index.js';
import { startMockProvider, QUOTA_429, DEEPSEEK_401 } from './mock-provider.js';
import { initCooldownConfig, expiredKeyConfig, SECRETS } from './configs.js';

const REQUEST = { path: '/chat/completions', body: { model: 'placeholder', messages: [{ role: 'user', content: 'hi' }] } };

test('429 quota on the primary falls back, with the secret and model of each route', async () => {
  const mock = await startMockProvider({ 'alibaba-coding-plan': () => QUOTA_429 });
  try {
    const policy = await Policy.load(initCooldownConfig(mock), { secrets: SECRETS });
    const { response, route, ended } = await policy.call(REQUEST);
    assert.equal(response.status, 200);
    assert.equal(route.provider, 'tencent-token-plan');
    await response.text();
    const { attempts } = await ended;
    assert.deepEqual(attempts.map((a) => [a.route.provider, a.outcome, a.action?.kind]),
      [['alibaba-coding-plan', '429', 'fall-back'], ['tencent-token-plan', '200', undefined]]);
    assert.equal(attempts[0].classified.reason, 'quota-exhausted');
    assert.deepEqual(mock.requests.map((r) => [r.provider, r.path, r.authorization, r.model]), [
      ['alibaba-coding-plan', '/v1/chat/completions', 'Bearer sk-ali', 'qwen3.6-plus'],
      ['tencent-token-plan', '/v1/chat/completions', 'Bearer sk-ten', 'kimi2.5'],
    ]);
  } finally {
    await mock.close();
  }
});

test('401 on a lone key: 2 attempts, auth-permanent, no waiting', async () => {
  const mock = await startMockProvider({ deepseek: () => DEEPSEEK_401 });
  try {
    const policy = await Policy.load(expiredKeyConfig(mock), { secrets: SECRETS });
    const started = Date.now();
    const error = await policy.call(REQUEST).catch((e) => e);
    assert.ok(error instanceof PolicyError);
    assert.equal(error.reason, 'auth-permanent');
    assert.match(error.message, /key appears invalid or expired/);
    assert.equal(mock.requests.length, 2);
    assert.equal(error.attempts.length, 2);
    assert.ok(Date.now() - started < 2000, 'no backoff on auth');
  } finally {
    await mock.close();
  }
});

test('the retry after a 401 goes over a new connection; other attempts use the pool', async () => {
  let reject401 = 0;
  const mock = await startMockProvider({ deepseek: () => (reject401-- > 0 ? DEEPSEEK_401 : undefined) });
  try {
    const policy = await Policy.load(expiredKeyConfig(mock), { secrets: SECRETS });
    const fresh = [];
    const spy = (url, init) => { fresh.push(init.dispatcher !== undefined); return fetch(url, init); };
    for (let i = 0; i < 4; i += 1) await (await policy.call(REQUEST, { fetch: spy })).response.text();
    reject401 = 1;
    const { response, ended } = await policy.call(REQUEST, { fetch: spy });
    assert.equal((await response.json()).choices[0].message.content, 'ok', 'the body outlives the closed dispatcher');
    const { attempts } = await ended;
    assert.deepEqual(attempts.map((a) => [a.outcome, a.action?.rule]), [['401', 'auth.fresh-retry'], ['200', undefined]]);
    assert.deepEqual(fresh, [false, false, false, false, false, true]);
    const ports = mock.requests.map((r) => r.port);
    assert.ok(!ports.slice(0, 5).includes(ports[5]), `the retry reused a connection: ports ${ports}`);
  } finally {
    await mock.close();
  }
});

test('an error document inside a 200 is no answer: retried, then the fallback answers', async () => {
  const overloaded = { status: 200, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } };
  const mock = await startMockProvider({ 'alibaba-coding-plan': () => overloaded });
  try {
    const policy = await Policy.load(initCooldownConfig(mock), { secrets: SECRETS, clock: new VirtualClock() });
    const { response, route, ended } = await policy.call(REQUEST);
    assert.equal(route.provider, 'tencent-token-plan');
    assert.equal(response.headers.get('content-length'), null, 'the answer was judged and handed back');
    assert.equal((await response.json()).model, 'kimi2.5');
    const { attempts } = await ended;
    assert.deepEqual(attempts.map((a) => [a.route.provider, a.outcome, a.classified?.reason, a.action?.kind]), [
      ['alibaba-coding-plan', '200', 'overloaded', 'retry'],
      ['alibaba-coding-plan', '200', 'overloaded', 'retry'],
      ['alibaba-coding-plan', '200', 'overloaded', 'fall-back'],
      ['tencent-token-plan', '200', undefined, undefined],
    ]);
  } finally {
    await mock.close();
  }
});

test('an answer larger than what the guest judges comes back byte for byte', async () => {
  const big = `{"choices":[{"message":{"content":"${'x'.repeat(300 * 1024)}"}}],"note":"no error"}`;
  const mock = await startMockProvider({ 'alibaba-coding-plan': () => ({ status: 200, body: big }) });
  try {
    const policy = await Policy.load(initCooldownConfig(mock), { secrets: SECRETS });
    const { response, ended } = await policy.call(REQUEST);
    assert.equal(await response.text(), big);
    assert.equal((await ended).attempts.length, 1);
  } finally {
    await mock.close();
  }
});

test('succeeded is the guest verdict; an event stream opening with an error event is fallen back from unseen', async () => {
  const stream = 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n';
  const mock = await startMockProvider({ 'alibaba-coding-plan': () => ({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: stream }) });
  try {
    const policy = await Policy.load(initCooldownConfig(mock), { secrets: SECRETS, clock: new VirtualClock() });
    const cases = [
      [{ status: 200, headers: { 'content-type': 'text/event-stream' }, body: stream }, false],
      [{ status: 200, body: '{"choices":[{"message":{"content":"an error, explained"}}]}' }, true],
      [{ status: 204 }, true],
      [{ status: 503, body: 'busy' }, false],
    ];
    for (const [response, answer] of cases) assert.equal(policy.succeeded(response), answer, JSON.stringify(response));
    const { response, route, ended } = await policy.call(REQUEST);
    assert.equal(route.provider, 'tencent-token-plan');
    const text = await response.text();
    assert.ok(!text.includes('overloaded_error'), text);
    assert.deepEqual((await ended).attempts.map((a) => [a.route.provider, a.classified?.reason]),
      [['alibaba-coding-plan', 'overloaded'], ['alibaba-coding-plan', 'overloaded'], ['alibaba-coding-plan', 'overloaded'], ['tencent-token-plan', undefined]]);
  } finally {
    await mock.close();
  }
});

test('callSync hands an answer back whole, and refuses one over 16 MiB', async () => {
  const cases = [[100 * 1024, true], [16 * 1024 * 1024 + 1, false]];
  for (const [size, whole] of cases) {
    const send = () => ({ status: 200, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(size, 0x61) });
    const policy = await Policy.load(expiredKeyConfig({ baseUrl: () => 'https://deepseek.example/v1' }),
      { secrets: SECRETS, send, clock: new VirtualClock() });
    if (whole) {
      assert.equal(policy.callSync(REQUEST).response.body.length, size);
    } else {
      const error = (() => { try { return policy.callSync(REQUEST); } catch (e) { return e; } })();
      assert.ok(error instanceof PolicyError, String(error));
      assert.match(error.attempts[0].classified.message, /over the 16777216-byte limit/);
    }
  }
});

test('connection refused is classified connection', async () => {
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const config = {
    providers: { acme: { base_url: `http://127.0.0.1:${port}/v1`, credentials: [{ id: 'acme-1' }] } },
    primary: { provider: 'acme', model: 'a' },
    retry: { route_retries: 0 },
    seed: 1,
  };
  const policy = await Policy.load(config, { secrets: { 'acme-1': 'k' } });
  const error = await policy.call(REQUEST).catch((e) => e);
  assert.ok(error instanceof PolicyError, String(error));
  assert.equal(error.attempts[0].outcome, 'connection-refused');
  assert.equal(error.attempts[0].classified.reason, 'connection');
});

test('classify is the guest classifier', async () => {
  const mock = await startMockProvider();
  try {
    const policy = await Policy.load(expiredKeyConfig(mock), { secrets: SECRETS });
    const c = policy.classify('deepseek', { status: 401, headers: {}, body: JSON.stringify(DEEPSEEK_401.body) });
    assert.equal(typeof c.rule, 'string');
    assert.ok(['auth', 'auth-permanent'].includes(c.reason));
    assert.equal(policy.classify('x', { transport: 'timeout', message: 't' }).reason, 'timeout');
    assert.throws(() => policy.classify('x', { status: 70000 }), /u16/);
  } finally {
    await mock.close();
  }
});
