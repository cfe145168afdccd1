// What the JS host's driven call adds to a streamed answer: time to first token over loopback
// HTTP, directly with fetch and through failoverFetch (rounds in turns, the first token 20 ms
// after the head), and the cost per event after the commit (an in-memory carrier, one event per
// read, so only the executor and the guest are timed). Run: node host/js/bench/stream.mjs
import { Policy, failoverFetch } from '../src/index.js';
import { startStreamMock, openaiStream, chunk } from '../test/stream-mock.js';

const ROUNDS = 30;
const EVENTS = 20000;
const BODY = JSON.stringify({ model: 'x', stream: true, messages: [{ role: 'user', content: 'hi' }] });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Milliseconds from the request to the first body bytes holding content. */
async function firstToken(fetchFn, url) {
  const t0 = performance.now();
  const response = await fetchFn(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
  let at;
  for await (const c of response.body) if (at === undefined && Buffer.from(c).includes('"content"')) at = performance.now() - t0;
  return at;
}

const script = { events: [{ data: { ...chunk(''), choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] } }, ...openaiStream(['Hello', ' there.']).events] };
script.events[1].delayMs = 20;
const mock = await startStreamMock({ p: [script] });
const config = { providers: { p: { base_url: mock.baseUrl('p'), credentials: [{ id: 'p-1' }] } }, primary: { provider: 'p', model: 'm' }, seed: 1 };
const policy = await Policy.load(config, { secrets: { 'p-1': 'sk-bench-0001' } });
const through = failoverFetch(policy);
const direct = [];
const viaPolicy = [];
for (let i = 0; i < ROUNDS; i += 1) {
  direct.push(await firstToken(fetch, `${mock.baseUrl('p')}/chat/completions`));
  viaPolicy.push(await firstToken(through, 'http://failover.local/v1/chat/completions'));
}
await mock.close();

const event = Buffer.from(`data: ${JSON.stringify(chunk('word '))}\n\n`);
const carrier = {
  async open() {
    let left = EVENTS;
    return {
      head: { status: 200, headers: [['content-type', 'text/event-stream']] },
      body: { async read() { return left-- > 0 ? { data: event } : { end: true }; }, close() {} },
    };
  },
};
const costs = [];
for (let round = 0; round < 5; round += 1) {
  const { response } = await policy.call({ body: BODY }, { carrier });
  const t0 = performance.now();
  for await (const c of response.body) void c;
  costs.push(((performance.now() - t0) * 1000) / EVENTS);
}

const ms = (x) => `${x.toFixed(2)} ms`;
console.log(`| time to first token over loopback (${ROUNDS} rounds in turns, first token 20 ms after the head) | median |`);
console.log('|---|---|');
console.log(`| directly (fetch) | ${ms(median(direct))} |`);
console.log(`| through \`failoverFetch\` (driven call) | ${ms(median(viaPolicy))} |`);
console.log(`| added by the policy | ${ms(median(viaPolicy) - median(direct))} |`);
console.log(`\n| per event after commit (${EVENTS} events of ${event.length} B, one per read, in memory) | ${median(costs).toFixed(1)} µs |`);
