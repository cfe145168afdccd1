// What every host must agree on: the contract's enums spelled as in wit/policy.wit (in the
// validation sets of bindings.js and the types of index.d.ts), the fields of the fleet's records
// (as jco names them, in index.d.ts), and the shared data of tests/hosts/
// (secret variable names, the messages a host writes itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { REASONS, TRANSPORT_KINDS } from '../src/bindings.js';
import { FAIL_OPEN_DELAY_MS, closedMessage, crashLoopMessage, failedAction, finalError } from '../src/fault.js';
import { defaultEnvName } from '../src/secrets.js';

const root = new URL('../../../', import.meta.url);
const read = (path) => readFileSync(new URL(path, root), 'utf8');
const WIT = read('wit/policy.wit');
const DTS = read('host/js/src/index.d.ts');

function witEnum(name) {
  const body = WIT.match(new RegExp(`enum ${name} \\{([^}]*)\\}`));
  assert.ok(body, `no enum ${name} in wit/policy.wit`);
  return body[1].split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('//')).map((l) => l.replace(/,$/, ''));
}

/** The string literals of the union that follows `anchor` in index.d.ts, up to `;`. */
function dtsUnion(anchor) {
  const at = DTS.indexOf(anchor);
  assert.ok(at >= 0, `no ${anchor} in index.d.ts`);
  const union = DTS.slice(at + anchor.length, DTS.indexOf(';', at));
  return [...union.matchAll(/'([^']+)'/g)].map((m) => m[1]);
}

test('every enum is spelled as in the WIT, in bindings.js and index.d.ts', () => {
  const cases = [
    ['reason', [...REASONS], 'export type Reason ='],
    ['transport-kind', [...TRANSPORT_KINDS], 'export type TransportKind ='],
    ['credential-state', null, "state:"],
    ['action-kind', null, 'export interface Action {\n  kind:'],
    ['event-kind', null, 'export interface PolicyEvent {\n  kind:'],
  ];
  for (const [wit, set, anchor] of cases) {
    const expected = witEnum(wit);
    if (set) assert.deepEqual(set, expected, `bindings.js ${wit}`);
    assert.deepEqual(dtsUnion(anchor), expected, `index.d.ts ${wit}`);
  }
});

/** A WIT record's field names as jco spells them (kebab-case to camelCase). */
function witRecord(name) {
  const body = WIT.match(new RegExp(`record ${name} \\{([^}]*)\\}`));
  assert.ok(body, `no record ${name} in wit/policy.wit`);
  return body[1].split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('//'))
    .map((l) => l.split(':')[0].trim().replace(/-([a-z])/g, (_, c) => c.toUpperCase()));
}

/** The field names of `export interface <name> { ... }` in index.d.ts (one line, no nesting). */
function dtsInterface(name) {
  const body = DTS.match(new RegExp(`export interface ${name} \\{([^}\n]*)\\}`));
  assert.ok(body, `no one-line interface ${name} in index.d.ts`);
  return [...body[1].matchAll(/(\w+)\??:/g)].map((m) => m[1]);
}

test('the fleet\'s records have the WIT\'s fields in index.d.ts', () => {
  for (const [wit, dts] of [['delta', 'Delta'], ['folded', 'Folded'], ['unreadable-state', 'UnreadableState']]) {
    assert.deepEqual(dtsInterface(dts).sort(), witRecord(wit).sort(), `index.d.ts ${dts} against WIT ${wit}`);
  }
});

test('secret variable names match the shared cases', () => {
  for (const { id, env } of JSON.parse(read('tests/hosts/secret-env-names.json')).cases) {
    assert.equal(defaultEnvName(id), env, id);
  }
});

test('the messages a host writes itself match the shared templates', () => {
  const { fields: f, templates } = JSON.parse(read('tests/hosts/host-messages.json'));
  const render = (name) => templates[name].replace(/\{(\w+)\}/g, (_, k) => String(f[k]));
  const route = { provider: 'p', model: 'm', credential: 'c', position: 0 };
  const retry = failedAction('open', route, { kind: 'http', response: { status: 503, headers: [], body: new Uint8Array() } }, undefined, f.why);
  const gaveUp = failedAction('open', route, { kind: 'http', response: { status: 400, headers: [], body: new Uint8Array() } }, undefined, f.why);
  assert.equal(FAIL_OPEN_DELAY_MS, BigInt(f.delay_ms));
  assert.equal(finalError(f.why).message, render('fault-gave-up'));
  assert.equal(gaveUp.classified.message, render('fault-not-classified'));
  assert.equal(retry.why, render('fault-retry'));
  assert.equal(crashLoopMessage(f.faults, f.window_s, f.why), render('crash-loop'));
  assert.equal(closedMessage(f.faults, f.window_s, f.why), render('closed'));
});
