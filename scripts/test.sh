#!/usr/bin/env bash
# Every test of every part, after the formatting and lint gates (scripts/lint.sh): the guest's
# native unit tests, the Rust host (scenarios, corpus, end-to-end HTTP, CLI) through the
# component, then the Python and JS hosts where present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/lint.sh
cargo test --manifest-path guest/Cargo.toml --locked
cargo test --release --locked -p failover-host
if [ -f host/python/pyproject.toml ]; then
  python3 -m pytest -q host/python/tests
  # Once more through wasmtime-py's own call path, as if its internals had changed under codec.py.
  FAILOVER_PY_CONVERTERS=off python3 -m pytest -q host/python/tests
fi
if [ -f host/js/package.json ]; then
  (cd host/js && npm test)
fi
# Processes of all three hosts on one store: 64 on Redis, 16 on a file; every record arrives.
python3 tests/fleet/fleet.py check
