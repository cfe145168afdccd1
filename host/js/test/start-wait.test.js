// (d) Rule 7 at the start of a host-driven call: Policy.call and failoverFetch start as the
// guest's startCall says. The only key rests (rate-limited) until a time set in the snapshot:
// within the wait budget the call waits and then sends once; beyond it the call fails at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Policy, PolicyError, VirtualClock, SystemClock, failoverFetch, fingerprint } from '../src/index.js';
import { startMockProvider } from './mock-provider.js';

const SECRET = 'sk-acme';
const START_MS = 1795528800000;
const BODY = { model: 'placeholder', messages: [{ role: 'user', content: 'hi' }] };

const config = (mock) => ({
  providers: { acme: { base_url: mock.baseUrl('acme'), credentials: [{ id: 'acme-1' }] } },
  primary: { provider: 'acme', model: 'a-large' },
  retry: { max_wait_ms: 60000 },
  seed: 7,
});

/** A snapshot whose only key is rate-limited until `untilMs` (same secret, so it stays so). */
const restingUntil = (nowMs, untilMs) => ({
  schema: 1, saved_at_ms: nowMs, active_position: 0, rng: 7,
  credentials: {
    'acme-1': {
      cooldown_until_ms: untilMs, cooldown_reason: 'rate-limit', last_reason: 'rate-limit',
      last_error: '429 Rate limit reached for requests', last_error_ms: nowMs, fingerprint: fingerprint(SECRET),
    },
  },
});

/** A virtual clock that records how long it was asked to wait. */
class RecordingClock extends VirtualClock {
  waited = 0;

  async wait(ms) {
    this.waited += ms;
    return super.wait(ms);
  }
}

const load = (mock, clock, restMs, events = []) => {
  const now = Math.floor(clock.now());
  return Policy.load(config(mock), {
    secrets: { 'acme-1': SECRET }, clock, state: restingUntil(now, now + restMs), onEvent: (e) => events.push(e),
  });
};

async function withMock(fn, handlers) {
  const mock = await startMockProvider(handlers);
  try {
    await fn(mock);
  } finally {
    await mock.close();
  }
}

test('startCall: a wait within the budget, now, or the final error', () => withMock(async (mock) => {
  const start = (await load(mock, new VirtualClock(START_MS), 2000)).startCall();
  assert.equal(start.route.credential, 'acme-1');
  assert.equal(start.delayMs, 2000n);
  assert.equal(start.progress.waitedMs, 2000n);
  assert.equal(start.rule, 'chain.wait-earliest');
  assert.match(start.why, /within the wait budget of 60000 ms/);

  const now = (await load(mock, new VirtualClock(START_MS), 0)).startCall();
  assert.deepEqual([now.delayMs, now.rule, now.progress.waitedMs], [0n, 'chain.select', 0n]);

  const resting = await load(mock, new VirtualClock(START_MS), 600000);
  const error = (() => { try { resting.startCall(); } catch (e) { return e; } })();
  assert.ok(error instanceof PolicyError, String(error));
  assert.equal(error.reason, 'rate-limit');
  assert.match(error.message, /beyond the call's wait budget/);
  assert.equal(error.retryAtMs, BigInt(START_MS + 600000));
  assert.equal(error.providers[0].credentials[0].id, 'acme-1');
  assert.deepEqual(error.attempts, []);
}));

test('Policy.call waits for the resting key on the virtual clock, then sends once', () => withMock(async (mock) => {
  const clock = new RecordingClock(START_MS);
  const events = [];
  const policy = await load(mock, clock, 2000, events);
  const { response, route, ended } = await policy.call({ body: BODY });
  assert.equal(response.status, 200);
  await response.text();
  const { attempts } = await ended;
  assert.equal(route.credential, 'acme-1');
  assert.equal(clock.waited, 2000);
  assert.equal(clock.now(), START_MS + 2000);
  assert.equal(mock.requests.length, 1);
  assert.deepEqual(attempts.map((a) => [a.outcome, a.atMs]), [['200', BigInt(START_MS + 2000)]]);
  assert.ok(events.some((e) => e.rule === 'chain.wait-earliest'));
}));

test('the first failure after the start wait carries the waited time', () => withMock(async (mock) => {
  const policy = await load(mock, new RecordingClock(START_MS), 2000);
  const error = await policy.call({ body: BODY }).catch((e) => e);
  assert.ok(error instanceof PolicyError, String(error));
  const first = error.attempts[0].action;
  assert.ok(first.progress.waitedMs >= 2000n, String(first.progress.waitedMs));
  assert.equal(first.progress.attempts, 1);
  assert.equal(mock.requests.length, 1);
}, { acme: () => ({ status: 400, body: { error: { message: 'bad request', type: 'invalid_request_error' } } }) }));

test('failoverFetch under the openai SDK really waits ~2 s, then one request', () => withMock(async (mock) => {
  const policy = await load(mock, new SystemClock(), 2000);
  const openai = new OpenAI({ baseURL: 'http://failover.local/v1', apiKey: 'unused', fetch: failoverFetch(policy), maxRetries: 0 });
  let ticks = 0;
  const ticker = setInterval(() => { ticks += 1; }, 100);
  const started = Date.now();
  try {
    const answer = await openai.chat.completions.create(BODY);
    assert.equal(answer.choices[0].message.content, 'ok');
  } finally {
    clearInterval(ticker);
  }
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 1800 && elapsed < 6000, `elapsed ${elapsed} ms`);
  assert.ok(ticks >= 10, 'the event loop was blocked during the wait');
  assert.equal(mock.requests.length, 1);
}));

test('failoverFetch fails at once beyond the wait budget, with the per-provider message', () => withMock(async (mock) => {
  const clock = new RecordingClock(START_MS);
  const policy = await load(mock, clock, 600000);
  const response = await failoverFetch(policy)('http://failover.local/v1/chat/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(BODY),
  });
  assert.equal(response.status, 503);
  assert.equal(response.headers.get('x-failover-reason'), 'rate-limit');
  const { error } = await response.json();
  assert.match(error.message, /beyond the call's wait budget/);
  assert.match(error.message, /acme-1/);
  assert.equal(error.retry_at_ms, START_MS + 600000);
  assert.equal(clock.waited, 0);
  assert.equal(mock.requests.length, 0);

  const openai = new OpenAI({ baseURL: 'http://failover.local/v1', apiKey: 'unused', fetch: failoverFetch(policy), maxRetries: 0 });
  await assert.rejects(openai.chat.completions.create(BODY), /beyond the call's wait budget/);
}));
