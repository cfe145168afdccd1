// The streaming example runs and tells its story: the fallback's answer streamed after an error
// event on the primary, then the caller's deadline ending a call nothing answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

test('examples/js/streaming-agent.js', async () => {
  const script = fileURLToPath(new URL('../../../examples/js/streaming-agent.js', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 30_000 });
  const streamed = stdout.split('\n').find((line) => line.includes('first event after'));
  assert.match(streamed ?? stdout, /ms: The fallback streams this answer\. /, "only the fallback's text was streamed");
  assert.match(stdout, /after \d+ ms: 503 .*deadline/);
});
