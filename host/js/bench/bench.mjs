// Per-call latency of the policy from Node (jco-transpile), load and swap time, memory after 100
// swaps. Prints the table format of the Rust benches; `--json FILE` also writes the rows for
// scripts/bench.sh. Decisions are timed through the public `Policy` (what users call) and, for
// select, on-failure and snapshots, through the bare guest too: the difference is what the
// package adds per call. `swap to first decision: cached` alternates two builds, so each swap
// goes back to the build it replaced and reuses its kept instance; the `not the build replaced`
// row cycles three, so each swap instantiates the cached modules afresh.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Policy, VirtualClock } from '../src/index.js';
import { compile, instantiate, encodeFailure, encodeRoute } from '../src/bindings.js';
import { hostImports } from '../src/host.js';
import { Events } from '../src/events.js';

const ROOT = new URL('../../../', import.meta.url);
const HOUR_MS = 3_600_000;
const CHAIN = {
  providers: {
    openai: { base_url: 'https://o.example/v1', credentials: [{ id: 'oa-1' }, { id: 'oa-2' }] },
    anthropic: { base_url: 'https://a.example/v1', credentials: [{ id: 'an-1' }] },
  },
  primary: { provider: 'openai', model: 'gpt-4o' },
  fallback_providers: [{ provider: 'anthropic', model: 'claude-sonnet' }],
  seed: 3,
};
const SECRETS = { 'oa-1': 'sk-1', 'oa-2': 'sk-2', 'an-1': 'sk-3' };
const JSON_HEADERS = [['content-type', 'application/json']];
const RATE_429 = '{"error":{"message":"Rate limit reached for requests per min","type":"requests","code":"rate_limit_exceeded"}}';
const OVERLOADED_503 = '{"error":{"message":"The server is overloaded, please try again later","type":"server_error"}}';
const QUOTA_429 = '{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}';
const PRIMARY = { provider: 'openai', model: 'gpt-4o', credential: 'oa-1', position: 0 };
const REQUEST = { path: '/chat/completions', method: 'POST', headers: [], body: '{"model":"x","messages":[{"role":"user","content":"hi"}]}' };

const args = process.argv.slice(2);
const budgetMs = 1000 * Number(args[args.indexOf('--budget') + 1] ?? 1) || 1000;
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : null;
const rows = [];

/** Batches of about 1 ms; records (median, p10, p90) ns per call and the calls made. */
function row(operation, fn, budget = budgetMs) {
  fn();
  let t0 = process.hrtime.bigint();
  fn();
  const batch = Math.max(1, Math.floor(1e6 / Math.max(1, Number(process.hrtime.bigint() - t0))));
  const samples = [];
  let calls = 0;
  const end = Date.now() + budget;
  while (Date.now() < end || samples.length < 5) {
    t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t0) / batch);
    calls += batch;
  }
  record(operation, samples, calls);
}

async function timed(operation, fn, repeat) {
  const samples = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    samples.push(Number(process.hrtime.bigint() - t0));
  }
  record(operation, samples, repeat);
}

function record(operation, samples, iterations) {
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  rows.push({ operation, median_ns: at(0.5), p10_ns: at(0.1), p90_ns: at(0.9), iterations });
}

function fmt(ns) {
  for (const [unit, scale] of [['s', 1e9], ['ms', 1e6], ['µs', 1e3]]) {
    if (ns >= scale) return `${(ns / scale).toPrecision(3)} ${unit}`;
  }
  return `${ns.toPrecision(3)} ns`;
}

/** The same component with a custom section appended: new bytes, so nothing is cached. */
function uniqueWasm(base, n) {
  const payload = Buffer.concat([Buffer.from([5]), Buffer.from('bench'), Buffer.from(String(n).padStart(8, '0'))]);
  return new Uint8Array(Buffer.concat([base, Buffer.from([0, payload.length]), payload]));
}

function corpus() {
  const dir = new URL('tests/corpus/', ROOT);
  const cases = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()) {
    for (const line of readFileSync(new URL(file, dir), 'utf8').split('\n').filter((l) => l.trim())) {
      const c = JSON.parse(line);
      let failure;
      if (c.transport) failure = { transport: c.transport, message: c.message ?? '' };
      else {
        const body = c.body_base64 ? Buffer.from(c.body_base64, 'base64')
          : c.body == null ? '' : typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
        failure = { status: c.status, headers: Object.entries(c.headers ?? {}), body };
      }
      cases.push([c.provider, failure]);
    }
  }
  return cases;
}

function poolConfig(keys) {
  const credentials = Array.from({ length: keys }, (_, i) => ({ id: `k${i}` }));
  return JSON.stringify({ providers: { openai: { base_url: 'https://o.example/v1', credentials } },
    primary: { provider: 'openai', model: 'gpt-4o' }, seed: 3 });
}

const clock = new VirtualClock(1_795_528_800_000);
let next429 = false;
// The in-memory provider: every other request is a 429, the rest a 200.
const fakeSend = () => {
  next429 = !next429;
  return next429 ? { status: 429, headers: JSON_HEADERS, body: RATE_429 } : { status: 200, headers: JSON_HEADERS, body: '{"choices":[]}' };
};
const policy = await Policy.load(CHAIN, { secrets: SECRETS, clock, send: fakeSend });

const cases = corpus();
let i = 0;
row('classify', () => policy.classify(...cases[i++ % cases.length]));
row('select', () => policy.select());
// 503s spend the retry budget and only successes refill it: the backoff row's policy has a
// budget no run exhausts, so every timed decision is a backoff (checked after the run).
const unspent = await Policy.load({ ...CHAIN, retry_budget: { max_tokens: 1_000_000, threshold: 0 } },
  { secrets: SECRETS, clock, send: fakeSend });
const onFailure = (p, status, body) => () => {
  clock.advance(HOUR_MS);
  return p.onFailure(PRIMARY, { status, headers: JSON_HEADERS, body });
};
for (const [name, p, status, body, kind] of [
  ['on-failure-429-rotate', policy, 429, RATE_429, 'rotate'],
  ['on-failure-503-backoff', unspent, 503, OVERLOADED_503, 'retry'],
]) {
  row(name, onFailure(p, status, body));
  if (onFailure(p, status, body)().kind !== kind) throw new Error(`${name} no longer decides ${kind}`);
}
row('call-429-then-200', () => {
  clock.advance(HOUR_MS);
  if (policy.callSync(REQUEST).attempts.length !== 2) throw new Error('expected a rotation then a 200');
});

// The bare guest: the decisions without the package's per-call extras.
const base = readFileSync(new URL('host/js/src/policy.wasm', ROOT));
const entry = await compile(new Uint8Array(base));
const bareHost = () => hostImports({ clock: () => clock, events: new Events(), secrets: () => new Map(), send: fakeSend, seed: 1 });
const guest = instantiate(entry, bareHost());
const creds = (ids) => ids.map((id) => ({ id, fingerprint: `fp-${id}` }));
const engine = guest.create(JSON.stringify(CHAIN), undefined, creds(Object.keys(SECRETS))).ok;
row('select (bare guest)', () => engine.select());
const rate = encodeFailure({ status: 429, headers: JSON_HEADERS, body: RATE_429 });
const primary = encodeRoute(PRIMARY);
row('on-failure-429 (bare guest)', () => {
  clock.advance(HOUR_MS);
  return engine.onFailure(primary, rate, undefined);
});
row('snapshot (bare guest, 3 keys)', () => engine.snapshot());

for (const keys of [1, 10, 1000]) {
  const cfg = poolConfig(keys);
  const kc = creds(Array.from({ length: keys }, (_, k) => `k${k}`));
  const e = guest.create(cfg, undefined, kc).ok;
  const quota = encodeFailure({ status: 429, headers: JSON_HEADERS, body: QUOTA_429 });
  for (const c of kc) e.onFailure({ provider: 'openai', model: 'gpt-4o', credential: c.id, position: 0 }, quota, undefined);
  const snap = e.snapshot();
  row(`snapshot-${keys}-keys`, () => e.snapshot());
  row(`restore-${keys}-keys`, () => guest.create(cfg, snap, kc).ok);
}

const short = Math.min(budgetMs, 500);
await timed('load: transpile + compile .wasm', (n) => compile(uniqueWasm(base, n)), 5);
row('instantiate (sync, compiled modules)', () => instantiate(entry, bareHost()), short);
await timed('swap to first decision: new .wasm', async (n) => {
  await policy.swap(uniqueWasm(base, 1000 + n));
  policy.select();
}, 5);
const alt = uniqueWasm(base, 1);
await compile(alt);
let flip = 0;
const swapCached = async () => {
  await policy.swap(flip++ % 2 ? alt : new Uint8Array(base));
  policy.select();
};
await timed('swap to first decision: cached', swapCached, 50);
// Cycling through three seen builds: each is neither the running one nor the one it replaced,
// so no kept instance fits (a fresh instance of the cached modules).
const third = uniqueWasm(base, 2);
await compile(third);
const builds = [new Uint8Array(base), alt, third];
let turn = 0;
await timed('swap to first decision: cached, not the build replaced', async () => {
  await policy.swap(builds[turn++ % 3]);
  policy.select();
}, 50);

global.gc?.();
const before = process.memoryUsage();
for (let n = 0; n < 100; n++) await swapCached();
global.gc?.();
const after = process.memoryUsage();
const memory = { rss_before_kib: before.rss >> 10, rss_after_100_swaps_kib: after.rss >> 10,
  heap_before_kib: before.heapUsed >> 10, heap_after_100_swaps_kib: after.heapUsed >> 10 };

console.log('| operation | median | p10–p90 | iterations |\n|---|---|---|---|');
for (const r of rows) console.log(`| ${r.operation} | ${fmt(r.median_ns)} | ${fmt(r.p10_ns)}–${fmt(r.p90_ns)} | ${r.iterations} |`);
console.log(`\nRSS: ${memory.rss_before_kib} KiB before, ${memory.rss_after_100_swaps_kib} KiB after 100 swaps between two cached builds (heap ${memory.heap_before_kib} -> ${memory.heap_after_100_swaps_kib} KiB)`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ rows, memory }, null, 1));
