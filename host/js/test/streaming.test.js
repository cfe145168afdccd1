// Streamed answers judged before the caller sees them, end to end: the openai SDK over
// failoverFetch against a loopback provider that delays, cuts, stalls, sends an error event
// first, sends a malformed event and never answers. Limits are short (hundreds of ms) so that
// each breach shows in well under a second; no test measures speed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { Policy, PolicyError, failoverFetch } from '../src/index.js';
import { startStreamMock, openaiStream, chunk } from './stream-mock.js';

const SECRETS = { 'p-1': 'sk-primary-0001', 'b-1': 'sk-backup-0002' };
const MESSAGES = [{ role: 'user', content: 'hi' }];
const ROLE = { data: { ...chunk(''), choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] } };

function config(mock, timeouts = {}) {
  return {
    providers: {
      primary: { base_url: mock.baseUrl('primary'), credentials: [{ id: 'p-1' }], timeouts: { headers_ms: 3000, first_content_ms: 3000, idle_ms: 3000, ...timeouts } },
      backup: { base_url: mock.baseUrl('backup'), credentials: [{ id: 'b-1' }] },
    },
    primary: { provider: 'primary', model: 'big' },
    fallback_providers: [{ provider: 'backup', model: 'other' }],
    retry: { route_retries: 0 },
    seed: 1,
  };
}

async function withMock(scripts, fn) {
  const mock = await startStreamMock(scripts);
  try {
    return await fn(mock);
  } finally {
    await mock.close();
  }
}

async function load(mock, timeouts, fetchOptions) {
  const events = [];
  const policy = await Policy.load(config(mock, timeouts), { secrets: SECRETS, onEvent: (e) => events.push(e) });
  const openai = new OpenAI({ baseURL: 'http://failover.local/v1', apiKey: 'unused', fetch: failoverFetch(policy, fetchOptions), maxRetries: 0 });
  return { policy, openai, events };
}

/** The streamed text as the SDK yields it, and the error it raised (if any). */
async function streamText(openai, options) {
  let text = '';
  try {
    const stream = await openai.chat.completions.create({ model: 'x', stream: true, messages: MESSAGES }, options);
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    return { text };
  } catch (error) {
    return { text, error };
  }
}

const backupAnswers = { backup: [openaiStream(['Backup ', 'answer.'])] };

test('events reach the caller as they arrive, not when the stream ends', () => {
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const script = { primary: [{ events: [ROLE, { data: chunk('first ') }, { data: chunk('last', 'stop'), after: gate }, { raw: 'data: [DONE]\n\n' }] }] };
  return withMock(script, async (mock) => {
    const { openai } = await load(mock);
    const stream = await openai.chat.completions.create({ model: 'x', stream: true, messages: MESSAGES });
    const seen = [];
    for await (const c of stream) {
      const content = c.choices[0]?.delta?.content;
      if (content) seen.push(content);
      if (content === 'first ') release(); // the provider sends the rest only once this came through
    }
    assert.deepEqual(seen, ['first ', 'last']);
    assert.equal(mock.requests[0].body.model, 'big');
  });
});

const unseenFailures = [
  ['an error event first', { events: [ROLE, { data: { error: { message: 'Provider returned error', code: 502 } } }] }, {}],
  ['a cut before any content', { events: [ROLE], then: 'cut' }, {}],
  ['a malformed event first', { events: [{ raw: 'data: {"choices": [unterminated\n\n' }] }, {}],
  ['a stall before the first content', { events: [ROLE], then: 'stall' }, { first_content_ms: 300 }],
  ['a provider that never answers', { silent: true }, { headers_ms: 300 }],
];

for (const [what, primary, timeouts] of unseenFailures) {
  test(`${what} on the primary is fallen back from unseen: the SDK streams the backup's answer`, () =>
    withMock({ primary: [primary], ...backupAnswers }, async (mock) => {
      const { openai, policy } = await load(mock, timeouts);
      const { text, error } = await streamText(openai);
      assert.equal(error, undefined, String(error));
      assert.equal(text, 'Backup answer.');
      assert.deepEqual(mock.requests.map((r) => [r.provider, r.body.model]), [['primary', 'big'], ['backup', 'other']]);
      const state = JSON.parse(policy.snapshot());
      assert.ok(JSON.stringify(state).includes('primary'), 'the primary failure is in the state');
    }));
}

test('a cut after the first content ends the SDK stream with the policy\'s error, after the text so far', () =>
  withMock({ primary: [{ events: [ROLE, { data: chunk('Half an ') }], then: 'cut' }], ...backupAnswers }, async (mock) => {
    const { openai, events } = await load(mock);
    const { text, error } = await streamText(openai);
    assert.equal(text, 'Half an ');
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.match(error.message, /broke off/);
    assert.ok(events.some((e) => e.kind === 'stream-failed'));
    assert.equal(mock.requests.length, 1, 'the caller had seen part of it: no fallback behind its back');
  }));

test('a stall after the first content ends the stream with an error after the idle limit', () =>
  withMock({ primary: [{ events: [ROLE, { data: chunk('Stalled ') }], then: 'stall' }] }, async (mock) => {
    const { openai } = await load(mock, { idle_ms: 300 });
    const { text, error } = await streamText(openai);
    assert.equal(text, 'Stalled ');
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.match(error.message, /stalled|idle|nothing for/i);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(mock.requests[0].closedEarly, true, 'the stalled connection was closed');
  }));

test('a cut resumes on a provider that allows it: one answer, spliced', () =>
  withMock({ primary: [{ events: [ROLE, { data: chunk('Half ') }], then: 'cut' }, openaiStream(['and the rest.'])] }, async (mock) => {
    const cfg = config(mock);
    cfg.providers.primary.resume = {};
    const policy = await Policy.load(cfg, { secrets: SECRETS });
    const openai = new OpenAI({ baseURL: 'http://failover.local/v1', apiKey: 'unused', fetch: failoverFetch(policy), maxRetries: 0 });
    const { text, error } = await streamText(openai);
    assert.equal(error, undefined, String(error));
    assert.equal(text, 'Half and the rest.');
    const prefill = mock.requests[1].body.messages.at(-1);
    assert.deepEqual([prefill.role, prefill.content], ['assistant', 'Half ']);
  }));

test('the caller\'s deadline bounds the whole call, and the error says so', () =>
  withMock({ primary: [{ silent: true }], backup: [{ silent: true }] }, async (mock) => {
    const { openai } = await load(mock, {}, { timeoutMs: 400 });
    const started = Date.now();
    const { error } = await streamText(openai);
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.match(error.message, /deadline/);
    assert.ok(Date.now() - started < 2500, 'ended at the deadline, not at a head limit');
  }));

test('the caller\'s AbortSignal cancels the attempt in flight', () =>
  withMock({ primary: [{ silent: true }] }, async (mock) => {
    const { openai } = await load(mock);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const { error } = await streamText(openai, { signal: controller.signal });
    assert.ok(error instanceof OpenAI.APIUserAbortError, String(error));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(mock.requests[0].closedEarly, true, 'the request in flight was aborted');
  }));

test('not streamed: a slow whole answer comes back through the SDK', () =>
  withMock({ primary: [{ headDelayMs: 150, body: { id: 'c', object: 'chat.completion', created: 0, model: 'big', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'whole' } }] } }] }, async (mock) => {
    const { openai } = await load(mock);
    const answer = await openai.chat.completions.create({ model: 'x', messages: MESSAGES });
    assert.equal(answer.choices[0].message.content, 'whole');
  }));

test('not streamed: a whole answer cut after the policy committed to it makes the caller\'s read fail', () => {
  const big = `{"choices":[{"message":{"content":"${'x'.repeat(100 * 1024)}`; // past the 64 KiB judged, then cut
  return withMock({ primary: [{ events: [{ raw: big }], then: 'cut', headers: { 'content-type': 'application/json' } }] }, async (mock) => {
    const { policy } = await load(mock);
    const { response, ended } = await policy.call({ body: { model: 'x', messages: MESSAGES } });
    assert.equal(response.status, 200);
    await assert.rejects(response.text(), PolicyError);
    assert.ok((await ended).error instanceof PolicyError);
  });
});

test('a 0.1.0 policy has no driven call: its stream is handed on unread, as before; 0.2.0 judges it', () =>
  withMock({ primary: [{ events: [ROLE, { data: { error: { message: 'Provider returned error', code: 502 } } }] }], ...backupAnswers }, async (mock) => {
    const wasm = new URL('../../../tests/policies/v0.1.0/failover_policy.wasm', import.meta.url);
    const request = { body: { model: 'x', stream: true, messages: MESSAGES } };
    const cfg = config(mock);
    delete cfg.providers.primary.timeouts; // 0.1.0 knows only connect_ms and read_ms
    const old = await Policy.load(cfg, { secrets: SECRETS, wasm: fileURLToPath(wasm) });
    assert.equal(old.begin(request), undefined);
    const before = await old.call(request);
    assert.equal(before.route.provider, 'primary');
    assert.match(await before.response.text(), /Provider returned error/);
    const current = await Policy.load(cfg, { secrets: SECRETS });
    const now = await current.call(request);
    assert.equal(now.route.provider, 'backup');
    assert.doesNotMatch(await now.response.text(), /Provider returned error/);
  }));

test('nothing is read upstream ahead of the caller (backpressure)', async () => {
  const policy = await Policy.load(config({ baseUrl: (p) => `http://${p}.invalid/v1` }), { secrets: SECRETS });
  let reads = 0;
  const event = Buffer.from(`data: ${JSON.stringify(chunk('word '))}\n\n`);
  const carrier = {
    async open() {
      return { head: { status: 200, headers: [['content-type', 'text/event-stream']] }, body: { async read() { reads += 1; return { data: event }; }, close() {} } };
    },
  };
  const { response } = await policy.call({ body: { model: 'x', stream: true, messages: MESSAGES } }, { carrier });
  const atCommit = reads;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(reads, atCommit, 'no read before the caller asks');
  const reader = response.body.getReader();
  await reader.read(); // the events held until the commit
  await reader.read();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(reads, atCommit + 1, 'one read upstream per read of the caller');
  await reader.cancel();
});

test('the caller\'s AbortSignal after the commit errors the body it is reading', () =>
  withMock({ primary: [{ events: [ROLE, { data: chunk('Some ') }], then: 'stall' }] }, async (mock) => {
    const policy = await Policy.load(config(mock), { secrets: SECRETS });
    const controller = new AbortController();
    const { response, ended } = await policy.call({ body: { model: 'x', stream: true, messages: MESSAGES } }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(response.text(), { name: 'AbortError' });
    assert.equal((await ended).error?.name, 'AbortError');
  }));

test('a key echoed in a streamed answer, split across reads, reaches the caller masked', async () => {
  const key = SECRETS['p-1'];
  const policy = await Policy.load(config({ baseUrl: (p) => `http://${p}.invalid/v1` }), { secrets: SECRETS });
  const wire = `data: ${JSON.stringify(chunk(`you sent ${key}`, 'stop'))}\n\ndata: [DONE]\n\n`;
  const at = wire.indexOf(key);
  // The middle read is nothing but more of the key's beginning: it is held back, then masked.
  const reads = [wire.slice(0, at + 3), wire.slice(at + 3, at + 8), wire.slice(at + 8)].map((s) => ({ data: Buffer.from(s) }));
  const carrier = {
    async open() {
      return { head: { status: 200, headers: [['content-type', 'text/event-stream'], ['x-echo', key]] }, body: { async read() { return reads.shift() ?? { end: true }; }, close() {} } };
    },
  };
  const { response } = await policy.call({ body: { model: 'x', stream: true, messages: MESSAGES } }, { carrier });
  const text = await response.text();
  assert.ok(!text.includes(key) && !response.headers.get('x-echo').includes(key), text);
  assert.match(text, /"you sent \.\.\."/, 'a key under 16 characters is masked as ... alone');
});
