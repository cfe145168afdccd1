// The generated bindings: the rewrites of jco-transpile's output (src/bindings.js) apply to the
// pinned jco, change nothing but the two costly spots, and leave unknown text alone; each
// instance runs its own copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compile, fasterBindings, instantiate } from '../src/bindings.js';
import { hostImports } from '../src/host.js';
import { Events } from '../src/events.js';
import { VirtualClock } from '../src/clock.js';

const WASM = readFileSync(new URL('../src/policy.wasm', import.meta.url));

test('both rewrites apply to the pinned jco-transpile output, and each instance gets its own copy', async () => {
  const entry = await compile(new Uint8Array(WASM));
  // If this fails after a jco upgrade, the bindings still work, only slower: see fasterBindings
  // and ownCopies in src/bindings.js.
  assert.deepEqual(entry.rewrites, ['debug-log', 'promising']);
  assert.equal(entry.copies, 'per-instance');
  const host = hostImports({ clock: () => new VirtualClock(0), events: new Events(), secrets: () => new Map(), seed: 1 });
  const [a, b] = [instantiate(entry, host), instantiate(entry, host)];
  assert.notEqual(a.api.Engine, b.api.Engine);
  assert.deepEqual(a.version(), b.version());
});

test('the rewrites touch only the debug log and the JSPI probe, and keep their behaviour', async () => {
  const generated = [
    'export function instantiate(g, i) {',
    '  const _debugLog = (...args) => {',
    '    if (!globalThis?.process?.env?.JCO_DEBUG) { return; }',
    '    console.debug(...args);',
    '  };',
    '  let f, h;',
    '  try { f = WebAssembly.promising(g); } catch { f = g; }',
    '  try { h = WebAssembly.promising(i); } catch { h = i; }',
    "  _debugLog('called', { f, h });",
    '  return [f, h];',
    '}',
  ].join('\n');
  const { source, rewrites } = fasterBindings(generated);
  assert.deepEqual(rewrites, ['debug-log', 'promising']);
  assert.match(source, /const _debugLog = globalThis\?\.process\?\.env\?\.JCO_DEBUG \? .* : \(\) => \{\};/);
  assert.equal(source.match(/_fpPromising\(/g).length, 3, 'the helper and both calls');
  assert.doesNotMatch(source, /WebAssembly\.promising\((g|i)\)/);
  const { instantiate } = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
  const g = () => 1;
  const i = () => 2;
  const [f, h] = instantiate(g, i);
  // Without JSPI the helper throws, so the generated catch takes the same fallback as before
  // (with JSPI, WebAssembly.promising refuses a JS function: the same fallback too).
  assert.equal(f, g);
  assert.equal(h, i);
  const unknown = 'const _debugLog = () => { maybe(); };\nWebAssembly.instantiate(x);';
  assert.deepEqual(fasterBindings(unknown), { source: unknown, rewrites: [] });
});

test('a component missing a function of the interface is refused at instantiation, naming it', async () => {
  const entry = await compile(new Uint8Array(WASM));
  // What a policy built before `succeeded` existed looks like to the host.
  const stale = {
    ...entry,
    instantiate: (getCoreModule, imports) => {
      const exports = entry.instantiate(getCoreModule, imports);
      return Object.fromEntries(Object.entries(exports).map(([name, api]) => {
        const older = { ...api };
        delete older.succeeded;
        return [name, older];
      }));
    },
  };
  const host = hostImports({ clock: () => new VirtualClock(0), events: new Events(), secrets: () => new Map(), seed: 1 });
  assert.throws(() => instantiate(stale, host), /not a policy component: it does not export succeeded from failover:policy\/policy@0\.3\.0/);
  assert.doesNotThrow(() => instantiate(entry, host));
});
