// A streaming agent turn through the policy with the openai SDK: the primary opens its stream
// with an error event (as OpenRouter does when its upstream fails), so the policy falls back
// before the caller sees anything; the fallback streams the answer token by token; the next turn
// has a deadline of its own and the primary never answers, so the call ends in time with the
// policy's message. Run: node examples/js/streaming-agent.js (after scripts/setup.sh)
// The openai SDK is a dev dependency of the package (an application imports it as 'openai').
import OpenAI from '../../host/js/node_modules/openai/index.mjs';
import { Policy, failoverFetch } from '../../host/js/src/index.js';
import { startStreamMock, openaiStream, chunk } from '../../host/js/test/stream-mock.js';

const role = { data: { ...chunk(''), choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] } };
const mock = await startStreamMock({
  primary: [
    { events: [role, { data: { error: { message: 'Provider returned error', code: 502 } } }] },
    { silent: true },
  ],
  backup: [openaiStream(['The ', 'fallback ', 'streams ', 'this ', 'answer.'], 80), { silent: true }],
});
const config = {
  providers: {
    // Limits per provider (ms): the head of a streamed answer, its first content, silence after it.
    primary: { base_url: mock.baseUrl('primary'), credentials: [{ id: 'p-1' }], timeouts: { headers_ms: 2000, first_content_ms: 5000, idle_ms: 10000 } },
    backup: { base_url: mock.baseUrl('backup'), credentials: [{ id: 'b-1' }] },
  },
  primary: { provider: 'primary', model: 'big' },
  fallback_providers: [{ provider: 'backup', model: 'small' }],
  retry: { route_retries: 0 },
  deadline_ms: 300000, // every call's deadline; a caller's own timeout shortens it
};

try {
  const policy = await Policy.load(config, {
    secrets: { 'p-1': 'sk-demo-primary', 'b-1': 'sk-demo-backup' },
    onEvent: (e) => console.log(`  [${e.kind}] ${e.message}`),
  });
  // `timeoutMs`: this agent's own deadline per call, covering attempts and waits alike.
  const openai = new OpenAI({ baseURL: 'http://failover.local/v1', apiKey: 'unused', fetch: failoverFetch(policy, { timeoutMs: 1500 }), maxRetries: 0 });
  const turn = async () => {
    const started = Date.now();
    const stream = await openai.chat.completions.create({ model: 'any', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    process.stdout.write(`  first event after ${Date.now() - started} ms: `);
    for await (const c of stream) process.stdout.write(c.choices[0]?.delta?.content ?? '');
    console.log(`  (${Date.now() - started} ms)`);
  };

  console.log('turn 1: the primary opens with an error event');
  await turn();
  console.log('turn 2: nothing answers; the 1.5 s deadline ends the call');
  const started = Date.now();
  await turn().catch((e) => console.log(`  ${e.constructor.name} after ${Date.now() - started} ms: ${e.message}`));
} finally {
  await mock.close();
}
