// A worker of test/fleet-two-workers.test.js: real calls through a Policy on a store, `--calls` of them
// `--every-ms` apart, each tagged with `x-worker: <tag>` so the mock can tell the workers apart.
// Prints one JSON line: each call's answering provider.
import { readFileSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Policy, openStore } from '../src/index.js';

const { values: o } = parseArgs({
  options: { store: { type: 'string' }, config: { type: 'string' }, tag: { type: 'string' }, calls: { type: 'string' }, 'every-ms': { type: 'string' } },
});
const store = openStore(o.store, o.store.startsWith('redis') ? { name: 'two-workers' } : {});
const policy = await Policy.load(JSON.parse(readFileSync(o.config, 'utf8')), { secrets: { 'p-1': 'sk-primary', 'f-1': 'sk-fallback' }, store });
writeSync(1, 'ready\n');
const answered = [];
for (let i = 0; i < Number(o.calls); i += 1) {
  const { route, response } = await policy.call({ headers: { 'x-worker': o.tag }, body: { model: 'x', messages: [{ role: 'user', content: 'hi' }] } });
  await response.arrayBuffer();
  answered.push(route.provider);
  await new Promise((r) => setTimeout(r, Number(o['every-ms'])));
}
await policy.close();
writeSync(1, `${JSON.stringify({ answered })}\n`);
