#!/usr/bin/env bash
# Formatting and lints, gates of scripts/test.sh: rustfmt and clippy (warnings denied) for the
# guest, the Rust host and the test policies; ruff for the Python host and the fleet test; tsc over the JS host's
# sources against index.d.ts. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo fmt --manifest-path guest/Cargo.toml -- --check
cargo fmt --manifest-path tests/policies/broken/Cargo.toml -- --check
cargo clippy --manifest-path guest/Cargo.toml --all-targets --locked -- -D warnings
cargo clippy --release --locked -p failover-host --all-targets -- -D warnings
(cd host/python && ruff check .)
ruff check --config host/python/pyproject.toml tests/fleet
(cd host/js && npm run --silent lint)
