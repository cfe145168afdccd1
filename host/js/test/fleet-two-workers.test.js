// Done-when of issue 18, in the JS host: two real worker processes on one store; worker B, already
// running, sends the exhausted primary no request once 1 s has passed since worker A's 429. A
// loopback provider counts requests per key and worker; only A's request is answered 429, so B
// avoids the primary only by learning it from the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMockProvider, completion } from './mock-provider.js';
import { startRedis, tempDir, runNode } from './fleet-helpers.js';

const CALLER = fileURLToPath(new URL('../bench/call-worker.mjs', import.meta.url));
const QUOTA = { status: 429, body: { error: { message: 'usage allocated quota exceeded.', type: 'insufficient_quota', code: 'insufficient_quota' } } };

async function twoWorkers(storeSpec, dir) {
  const sent = [];
  const mock = await startMockProvider({
    primary: (r) => {
      sent.push({ worker: r.worker, at: Date.now() });
      return r.worker === 'a' ? QUOTA : completion('m');
    },
  });
  const config = {
    providers: {
      primary: { base_url: mock.baseUrl('primary'), family: 'openai', credentials: [{ id: 'p-1' }] },
      fallback: { base_url: mock.baseUrl('fallback'), family: 'openai', credentials: [{ id: 'f-1' }] },
    },
    primary: { provider: 'primary', model: 'm' },
    fallback_providers: [{ provider: 'fallback', model: 'm' }],
  };
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config));
  try {
    const b = spawn(process.execPath, [CALLER, '--store', storeSpec, '--config', path, '--tag', 'b', '--calls', '50', '--every-ms', '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    b.stdout.on('data', (d) => { out += d; });
    while (!out.includes('ready')) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 500)); // B is running, answered by the primary
    const a = await runNode(CALLER, ['--store', storeSpec, '--config', path, '--tag', 'a', '--calls', '1', '--every-ms', '0']);
    assert.equal(a.code, 0, a.stderr);
    await new Promise((resolve) => b.on('exit', resolve));
    const answered = JSON.parse(out.trim().split('\n').at(-1)).answered;
    const at429 = sent.find((s) => s.worker === 'a')?.at;
    assert.ok(at429, 'worker A met the 429');
    const late = sent.filter((s) => s.worker === 'b' && s.at > at429 + 1000);
    assert.ok(sent.some((s) => s.worker === 'b' && s.at < at429), 'B used the primary before A\'s 429');
    assert.deepEqual(late, [], 'B sent the exhausted primary requests more than 1 s after A\'s 429');
    assert.ok(answered.filter((p) => p === 'fallback').length >= 5, `B went on answering from the fallback: ${answered}`);
  } finally {
    await mock.close();
  }
}

test('two workers on a file store: B stops using the primary A found exhausted', async () => {
  const dir = tempDir();
  await twoWorkers(`file:${join(dir, 'state.json')}`, dir);
});

test('two workers on Redis: B stops using the primary A found exhausted', async () => {
  const redis = await startRedis();
  try {
    await twoWorkers(redis.url, tempDir());
  } finally {
    await redis.stop();
  }
});
