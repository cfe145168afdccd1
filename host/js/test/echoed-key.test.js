// A provider that echoes the key it was sent (in its error body, in a header, in a stream's error
// event split across chunks, in an answer), through the openai SDK over failoverFetch on loopback
// HTTP: the key reaches no SDK error, event or snapshot, and the messages still say what went
// wrong. The keys have no documented prefix, so the guest's own masking cannot hide them: only
// the host's scrubbing does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import OpenAI from 'openai';
import { Policy, failoverFetch } from '../src/index.js';
import { Scrub } from '../src/secrets.js';
import { send } from '../src/http.js';

const OPENAI_KEY = 'proxy-7Hq2Wm9x-Lr4tZc8v-0001';
const STREAM_KEY = 'relay-Kp3Vd8Ns-Qy6Gh1Bw-0002';
const SECRETS = { 'oa-1': OPENAI_KEY, 'st-1': STREAM_KEY, 'ok-1': OPENAI_KEY };

/**
 * `/openai`: a 401 naming the key; `/stream`: an event stream whose error event names it, the key
 * split across writes; anything else: an answer naming it, in its status line too. Every reply
 * carries the whole header value sent in `x-echo-key`.
 */
async function startEcho() {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const header = req.headers.authorization ?? req.headers['x-api-key'] ?? '';
      const sent = header.replace(/^Bearer /, ''); // the bare key: the guest cannot tell it from text
      const provider = req.url.split('/')[1];
      if (provider === 'openai') {
        res.writeHead(401, { 'content-type': 'application/json', 'x-echo-key': header });
        res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${sent}.`, type: 'invalid_request_error', code: 'invalid_api_key' } }));
      } else if (provider === 'stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'x-echo-key': header });
        const chunk = { id: 'c', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta: { content: 'par' } }] };
        const error = `data: ${JSON.stringify({ error: { message: `Overloaded; retry later with ${sent}`, type: 'overloaded_error' } })}\n\n`;
        // The key in three writes, the middle one nothing but more of its beginning.
        const at = error.indexOf(sent);
        res.write(`data: ${JSON.stringify(chunk)}\n\n${error.slice(0, at + 5)}`);
        setTimeout(() => res.write(error.slice(at + 5, at + 15)), 30);
        setTimeout(() => res.end(error.slice(at + 15)), 60);
      } else {
        res.writeHead(200, `OK ${sent}`, { 'content-type': 'application/json', 'x-echo-key': header });
        res.end(JSON.stringify({
          id: 'x', object: 'chat.completion', created: 0, model: 'm',
          choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: `you sent ${sent}` } }],
        }));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    config: (primary) => ({
      providers: Object.fromEntries([['openai', 'oa-1'], ['stream', 'st-1'], ['ok', 'ok-1']].map(([name, id]) => [
        name, { base_url: `http://127.0.0.1:${port}/${name}/v1`, credentials: [{ id }] }])),
      primary: { provider: primary, model: 'm' },
      seed: 1,
    }),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

const client = (policy) => new OpenAI({ baseURL: 'http://failover.local/v1', apiKey: 'unused', fetch: failoverFetch(policy), maxRetries: 0 });
const MESSAGES = [{ role: 'user', content: 'hi' }];

function assertNoKey(what, text) {
  for (const key of [OPENAI_KEY, STREAM_KEY]) assert.ok(!text.includes(key), `${what} holds the key ${key}: ${text}`);
}

test('a key echoed in a 401 body and header reaches no SDK error, event or snapshot', async () => {
  const echo = await startEcho();
  try {
    const events = [];
    const policy = await Policy.load(echo.config('openai'), { secrets: SECRETS, onEvent: (e) => events.push(e) });
    const error = await client(policy).chat.completions.create({ model: 'x', messages: MESSAGES }).catch((e) => e);
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 401);
    assertNoKey('the SDK error', `${error.message} ${JSON.stringify(error.error)} ${JSON.stringify([...error.headers])}`);
    assert.ok(events.length > 0);
    for (const e of events) assertNoKey('an event', e.message);
    assertNoKey('the snapshot', policy.snapshot());
    // Still says what went wrong, with the key recognisable by its tail.
    assert.match(error.message, /key appears invalid or expired \(401 Incorrect API key provided: \.\.\.0001\.\)/);
  } finally {
    await echo.close();
  }
});

test('a key echoed in a stream error event, split across chunks, reaches the SDK error scrubbed', { timeout: 10_000 }, async () => {
  const echo = await startEcho();
  try {
    const policy = await Policy.load(echo.config('stream'), { secrets: SECRETS });
    const stream = await client(policy).chat.completions.create({ model: 'x', messages: MESSAGES, stream: true });
    const parts = [];
    const error = await (async () => {
      for await (const chunk of stream) parts.push(chunk.choices[0].delta.content);
    })().catch((e) => e);
    assert.deepEqual(parts, ['par'], 'the stream streamed up to its error');
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assertNoKey('the SDK error', `${error.message} ${JSON.stringify(error.error)}`);
    assert.match(error.message, /Overloaded; retry later with \.\.\.0002/);
    assertNoKey('the snapshot', policy.snapshot());
  } finally {
    await echo.close();
  }
});

test('an answer that echoes the key reaches the caller without it', async () => {
  const echo = await startEcho();
  try {
    const policy = await Policy.load(echo.config('ok'), { secrets: SECRETS });
    const { data, response } = await client(policy).chat.completions.create({ model: 'x', messages: MESSAGES }).withResponse();
    assert.equal(data.choices[0].message.content, 'you sent ...0001');
    assertNoKey('the headers', JSON.stringify([...response.headers]));
    assert.equal(response.statusText, 'OK ...0001', 'the status line too');
  } finally {
    await echo.close();
  }
});

test('Scrub masks every occurrence, in any chunking, and leaves short secrets alone', () => {
  const cases = [
    [OPENAI_KEY, `bad key Bearer ${OPENAI_KEY}.`, 'bad key Bearer ...0001.'],
    [OPENAI_KEY, `${OPENAI_KEY}${OPENAI_KEY} $& $1`, '...0001...0001 $& $1'],
    ['short-key-1', 'short-key-1 rejected', '... rejected'],
    ['k', 'keep every k', 'keep every k'],
    [undefined, `no secret ${OPENAI_KEY}`, `no secret ${OPENAI_KEY}`],
  ];
  for (const [secret, text, want] of cases) {
    const scrub = new Scrub(secret);
    assert.equal(scrub.text(text), want);
    assert.equal(Buffer.from(scrub.bytes(Buffer.from(text))).toString(), want);
    const body = Buffer.from(text);
    for (let cut = 0; cut <= body.length; cut += 1) {
      const stream = scrub.stream();
      const out = Buffer.concat([stream.push(body.subarray(0, cut)), stream.push(body.subarray(cut)), stream.finish()]);
      assert.equal(out.toString(), want, `split at ${cut}`);
    }
  }
  const scrub = new Scrub(OPENAI_KEY);
  assert.equal(scrub.prefix(Buffer.from(`${'x'.repeat(90)}${OPENAI_KEY}`), 100).toString(), 'x'.repeat(90));
  assert.equal(scrub.prefix(Buffer.from('ends with proxy-7Hq'), 100).toString(), 'ends with proxy-7Hq', 'not cut: kept whole');
  assert.equal(scrub.prefix(Buffer.from('ends with proxy-7Hq'), 100, true).toString(), 'ends with ');
});

test('a stream passed on goes on when a whole chunk is held back as the beginning of the key', { timeout: 5_000 }, async () => {
  const parts = ['data: proxy', '-7Hq2Wm9x-', 'Lr4tZc8v-0001 done\n\n'];
  const fetchImpl = async () => new Response(new ReadableStream({
    pull(controller) {
      const part = parts.shift();
      if (part === undefined) controller.close();
      else controller.enqueue(Buffer.from(part));
    },
  }), { headers: { 'content-type': 'text/event-stream' } });
  const outbound = {
    url: 'http://unused.invalid/v1', method: 'POST', headers: [], body: undefined, secretHeader: 'authorization',
    secretPrefix: 'Bearer ', connectTimeoutMs: 1000n, readTimeoutMs: 1000n, freshConnection: false,
  };
  const sent = await send(outbound, OPENAI_KEY, { fetchImpl, succeeded: () => true });
  assert.equal(await sent.response.text(), 'data: ...0001 done\n\n');
});
