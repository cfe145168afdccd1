import sys
from pathlib import Path

# The scenario runner and the mock provider are test helpers next to this file.
sys.path.insert(0, str(Path(__file__).parent))

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from redis_server import RedisServer

from failover_policy.mock import MockProviders


@pytest.fixture
def mock() -> Iterator[MockProviders]:
    with MockProviders() as m:
        yield m


def fallback_config(mock: MockProviders) -> dict[str, Any]:
    """Incident 1: the primary's single key, and a fallback provider."""
    return {
        "providers": {
            "alibaba-coding-plan": {"base_url": mock.base_url("ali"), "credentials": [{"id": "ali-1"}]},
            "tencent-token-plan": {"base_url": mock.base_url("ten"), "credentials": [{"id": "ten-1"}]},
        },
        "primary": {"provider": "alibaba-coding-plan", "model": "qwen3.6-plus"},
        "fallback_providers": [{"provider": "tencent-token-plan", "model": "kimi2.5"}],
        "seed": 7,
    }


def deepseek_config(base_url: str) -> dict[str, Any]:
    """Incident 2: one DeepSeek key and no fallback."""
    return {
        "providers": {"deepseek": {"base_url": base_url, "credentials": [{"id": "ds-1"}]}},
        "primary": {"provider": "deepseek", "model": "deepseek-chat"},
        "retry": {"max_wait_ms": 600000},
        "seed": 7,
    }


SECRETS = {"ali-1": "sk-ali", "ten-1": "sk-ten", "ds-1": "sk-ds"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROOT = Path(__file__).resolve().parents[3]
BROKEN = ROOT / "tests" / "policies" / "broken"
BROKEN_TARGET = ROOT / "target" / "broken-policies-py"
# The deployed policy built for contract 0.1.0, which this host keeps loading.
V0_1_WASM = ROOT / "tests" / "policies" / "v0.1.0" / "failover_policy.wasm"
V0_2_WASM = ROOT / "tests" / "policies" / "v0.2.0" / "failover_policy.wasm"


def broken(feature: str) -> Path:
    """The broken policy built with `feature`, built once per feature and kept under target/."""
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is needed to build the misbehaving test policies")
    out = BROKEN_TARGET / f"broken-{feature}.wasm"
    sources = [BROKEN / "src" / "lib.rs", BROKEN / "build.rs", BROKEN / "Cargo.toml", ROOT / "wit" / "policy.wit"]
    if not out.exists() or out.stat().st_mtime < max(s.stat().st_mtime for s in sources):
        env = {k: v for k, v in os.environ.items() if k not in ("CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS")}
        subprocess.run(
            [cargo, "build", "--release", "--locked", "--target", "wasm32-wasip2", "--features", feature,
             "--manifest-path", str(BROKEN / "Cargo.toml"), "--target-dir", str(BROKEN_TARGET)],
            check=True, env=env, capture_output=True,
        )
        shutil.copy(BROKEN_TARGET / "wasm32-wasip2" / "release" / "broken_policy.wasm", out)
    return out


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free port of 127.0.0.1, for the store and echoed-key tests."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def tls_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server speaking only TLS (certificates made with openssl here, for 127.0.0.1) with
    the default user off and one ACL user limited to the store's keys and commands."""
    server = RedisServer(tls_dir=tmp_path / "tls")
    try:
        yield server
    finally:
        server.kill()
