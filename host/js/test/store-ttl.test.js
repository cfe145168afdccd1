// The TTL rule of the Redis store (tests/fleet/README.md, "TTL of every key"): the guest's
// keep-until minus now, at least forgetAfterMs; no TTL at all when forgetAfterMs is 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyTtlMs } from '../src/redis-store.js';

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

test('keyTtlMs: the later of the keep-until and the forget bound, none when nothing is forgotten', () => {
  const cases = [
    // [why, keepUntilMs, nowMs, forgetAfterMs, expected]
    ['nothing cooling (0): the forget bound', 0n, NOW, 7 * DAY, 7 * DAY],
    ['a cooldown already over: the forget bound', BigInt(NOW - 1000), NOW, 7 * DAY, 7 * DAY],
    ['a cooldown ending before the bound: the bound', BigInt(NOW + DAY), NOW, 7 * DAY, 7 * DAY],
    ['a cooldown ending exactly at the bound: the bound', BigInt(NOW + 7 * DAY), NOW, 7 * DAY, 7 * DAY],
    ['a cooldown past the bound: until it ends', BigInt(NOW + 30 * DAY), NOW, 7 * DAY, 30 * DAY],
    ['a short bound, an hour of cooldown: the hour', BigInt(NOW + 3_600_000), NOW, 1000, 3_600_000],
    ['keep-until as a number works the same', NOW + 30 * DAY, NOW, 7 * DAY, 30 * DAY],
    ['forgetAfterMs 0: no TTL, whatever is cooling', BigInt(NOW + 30 * DAY), NOW, 0, undefined],
    ['forgetAfterMs 0 and nothing cooling: no TTL', 0n, NOW, 0, undefined],
    ['a cooldown end at u64 max: capped to a TTL Redis accepts', (1n << 64n) - 1n, NOW, 7 * DAY, Number.MAX_SAFE_INTEGER],
  ];
  for (const [why, keep, now, forget, expected] of cases) {
    assert.equal(keyTtlMs(keep, now, forget), expected, why);
  }
});

test('keyTtlMs: a value that is no time in ms is a TypeError naming it', () => {
  const cases = [
    [[-1n, NOW, DAY], /^TypeError: keepUntilMs must be an integer >= 0 \(ms\), not -1n$/],
    [[undefined, NOW, DAY], /^TypeError: keepUntilMs must be an integer >= 0 \(ms\), not undefined$/],
    [['5', NOW, DAY], /^TypeError: keepUntilMs must be an integer >= 0 \(ms\), not "5"$/],
    [[0n, 1.5, DAY], /^TypeError: nowMs must be an integer >= 0 \(ms\), not 1.5$/],
    [[0n, NOW, Number.NaN], /^TypeError: forgetAfterMs must be an integer >= 0 \(ms\), not NaN$/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => keyTtlMs(...args), (e) => e instanceof TypeError && message.test(String(e)), String(args[0]));
  }
});
