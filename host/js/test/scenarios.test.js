// (a) Every scenario through the JS host: expectations met, trace equal to the golden file. The
// current scenarios run on the packaged (0.3.0) policy, the frozen 0.1 and 0.2 scenarios on the
// deployed 0.1.0 and 0.2.0 builds (tests/policies/v0.1.0, v0.2.0), which this host keeps loading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runScenario } from './scenario-runner.js';

const CURRENT = new URL('../../../tests/scenarios/', import.meta.url);
const V0_1 = new URL('../../../tests/policies/v0.1.0/', import.meta.url);
const V0_2 = new URL('../../../tests/policies/v0.2.0/', import.meta.url);
const SUITES = [
  { dir: CURRENT, prefix: '', wasm: undefined },
  { dir: new URL('scenarios/', V0_1), prefix: 'v0.1.0 ', wasm: fileURLToPath(new URL('failover_policy.wasm', V0_1)) },
  { dir: new URL('scenarios/', V0_2), prefix: 'v0.2.0 ', wasm: fileURLToPath(new URL('failover_policy.wasm', V0_2)) },
];
const scenarios = (dir) => readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

for (const { dir, prefix } of SUITES) {
  test(`there are ${prefix}scenarios`, () => assert.ok(scenarios(dir).length > 0, fileURLToPath(dir)));
}

for (const { dir, prefix, wasm } of SUITES) {
  for (const file of scenarios(dir)) {
    test(`${prefix}scenario ${file}`, async () => {
      const sc = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
      const { trace, failures } = await runScenario(sc, { wasm });
      assert.deepEqual(failures, []);
      const golden = new URL(`golden/${file.replace(/\.json$/, '.jsonl')}`, dir);
      assert.ok(existsSync(golden), `no golden trace ${fileURLToPath(golden)}; write it with the Rust harness (failover simulate --bless)`);
      const want = readFileSync(golden, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
      for (let i = 0; i < Math.max(want.length, trace.length); i += 1) {
        assert.deepEqual(trace[i], want[i], `${sc.name}: trace line ${i + 1} differs from golden`);
      }
    });
  }
}
