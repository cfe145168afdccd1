#!/usr/bin/env bash
# Installs what building and testing need on a fresh machine: the wasm target, the default policy
# component (copied into the packages that ship it), and the Python and Node host packages that
# exist. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
# The lint gates (scripts/lint.sh).
rustup component add rustfmt clippy
# The fleet state store's tests start a real redis-server on 127.0.0.1.
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
fi
scripts/build-wasm.sh
if [ -f host/python/pyproject.toml ]; then
  python3 -m pip install --quiet --disable-pip-version-check -e "host/python[test]"
fi
if [ -f host/js/package.json ]; then
  (cd host/js && npm ci --no-audit --no-fund --loglevel=error)
fi
