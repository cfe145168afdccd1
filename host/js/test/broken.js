// The misbehaving test policies of tests/policies/broken, built with cargo once per feature and
// kept under target/ (rebuilt when the crate or the contract changes).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CRATE = `${ROOT}tests/policies/broken`;
const TARGET = `${ROOT}target/broken-policies-js`;
const SOURCES = [`${CRATE}/src/lib.rs`, `${CRATE}/build.rs`, `${CRATE}/Cargo.toml`, `${ROOT}wit/policy.wit`];

function hasCargo() {
  try {
    execFileSync('cargo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A test's `skip` option: false, or why the broken policies cannot be built here. */
export const NO_CARGO = hasCargo() ? false : 'cargo is needed to build the misbehaving test policies (tests/policies/broken)';

/**
 * The crate's feature that builds it for a contract version no host speaks (`contract-X-Y`), and
 * that version: the refusal tests follow the crate when it moves past a version hosts learned.
 */
export const FUTURE = (() => {
  const feature = readFileSync(`${CRATE}/Cargo.toml`, 'utf8').match(/^(contract-(\d+)-(\d+))\s*=/m);
  return feature ? { feature: feature[1], version: `${feature[2]}.${feature[3]}.0` } : { feature: 'contract-future', version: 'unknown' };
})();

/** The path of the broken policy built with `feature`. */
export function broken(feature) {
  const out = `${TARGET}/broken-${feature}.wasm`;
  if (!existsSync(out) || statSync(out).mtimeMs < Math.max(...SOURCES.map((s) => statSync(s).mtimeMs))) {
    mkdirSync(TARGET, { recursive: true });
    const env = { ...process.env };
    for (const k of ['CARGO_TARGET_DIR', 'CARGO_BUILD_TARGET', 'RUSTFLAGS']) delete env[k];
    execFileSync('cargo', ['build', '--quiet', '--release', '--locked', '--target', 'wasm32-wasip2', '--features', feature,
      '--manifest-path', `${CRATE}/Cargo.toml`, '--target-dir', TARGET], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    copyFileSync(`${TARGET}/wasm32-wasip2/release/broken_policy.wasm`, out);
  }
  return out;
}
