// The @anthropic-ai/sdk over failoverFetch against a loopback provider speaking the Messages
// stream: an `overloaded_error` event before the first content falls back unseen; a cut after it
// reaches the SDK as an `event: error` it raises; a whole answer passes through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { Policy, failoverFetch } from '../src/index.js';
import { startStreamMock } from './stream-mock.js';

const ev = (event, data) => ({ event, data: { type: event, ...data } });
const START = ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude', content: [], stop_reason: null, usage: { input_tokens: 1, output_tokens: 0 } } });
const text = (t) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } });
const ANSWER = {
  events: [START, ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }), text('Claude '), text('here.'),
    ev('content_block_stop', { index: 0 }), ev('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }), ev('message_stop', {})],
};

async function client(mock) {
  const config = {
    providers: {
      claude: { family: 'anthropic', base_url: mock.baseUrl('claude'), credentials: [{ id: 'c-1' }] },
      spare: { family: 'anthropic', base_url: mock.baseUrl('spare'), credentials: [{ id: 's-1' }] },
    },
    primary: { provider: 'claude', model: 'claude-big' },
    fallback_providers: [{ provider: 'spare', model: 'claude-small' }],
    retry: { route_retries: 0 },
    seed: 1,
  };
  const policy = await Policy.load(config, { secrets: { 'c-1': 'sk-ant-claude-0001', 's-1': 'sk-ant-spare-0002' } });
  return new Anthropic({ baseURL: 'http://failover.local', apiKey: 'unused', fetch: failoverFetch(policy), maxRetries: 0 });
}

const ask = { model: 'x', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] };

async function streamed(anthropic) {
  let out = '';
  try {
    const stream = await anthropic.messages.create({ ...ask, stream: true });
    for await (const e of stream) if (e.type === 'content_block_delta') out += e.delta.text;
    return { out };
  } catch (error) {
    return { out, error };
  }
}

test('anthropic: an overloaded_error event before the first content falls back unseen', async () => {
  const mock = await startStreamMock({ claude: [{ events: [START, ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } })] }], spare: [ANSWER] });
  try {
    const { out, error } = await streamed(await client(mock));
    assert.equal(error, undefined, String(error));
    assert.equal(out, 'Claude here.');
    assert.deepEqual(mock.requests.map((r) => [r.provider, r.body.model]), [['claude', 'claude-big'], ['spare', 'claude-small']]);
  } finally {
    await mock.close();
  }
});

test('anthropic: a cut after the first content is an error event the SDK raises', async () => {
  const mock = await startStreamMock({ claude: [{ events: ANSWER.events.slice(0, 3), then: 'cut' }] });
  try {
    const { out, error } = await streamed(await client(mock));
    assert.equal(out, 'Claude ');
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.match(error.message, /broke off/);
  } finally {
    await mock.close();
  }
});

test('anthropic: a whole answer passes through', async () => {
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-big', content: [{ type: 'text', text: 'whole' }], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 1 } };
  const mock = await startStreamMock({ claude: [{ body: message }] });
  try {
    const answer = await (await client(mock)).messages.create(ask);
    assert.equal(answer.content[0].text, 'whole');
  } finally {
    await mock.close();
  }
});
