"""The state stores across processes: eight writers lose nothing (a file, then a real
redis-server on 127.0.0.1 started here), the first incident carries over from one process to
the next, a corrupt file is set aside, and a Redis outage fails fast, then catches up."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import socket
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from failover_policy import ActionKind, FileStore, Policy, RedisStore, StoreRefused, StoreUnavailable, VirtualClock

SPAWN = multiprocessing.get_context("spawn")
WRITERS, UPDATES = 8, 12
START_MS = 1_795_528_800_000
QUOTA = '{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}'
CONFIG = {
    "providers": {
        "alibaba-coding-plan": {"base_url": "https://coding.example/v1", "credentials": [{"id": "ali-1"}]},
        "tencent-token-plan": {"base_url": "https://tokens.example/v1/", "credentials": [{"id": "ten-1"}]},
    },
    "primary": {"provider": "alibaba-coding-plan", "model": "qwen3.6-plus"},
    "fallback_providers": [{"provider": "tencent-token-plan", "model": "kimi2.5"}],
}
SECRETS = {"ali-1": "sk-ali", "ten-1": "sk-ten"}


class RedisServer:
    """A throwaway redis-server on a free 127.0.0.1 port; `kill`/`restart` for outages."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: scripts/setup.sh installs it (Debian's redis-server)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self.restart()

    def restart(self) -> None:
        self._proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
                                       "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not listen on 127.0.0.1:{self.port} within 5 s") from exc
                time.sleep(0.01)

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None




def _store(kind: str, where: str, name: str) -> FileStore | RedisStore:
    return FileStore(where, lock_timeout=0.02) if kind == "file" else RedisStore(where, name)


def _update(w: int, u: int) -> str:
    """Writer `w`'s update `u`: its own keys cooling down and, every third, one dead."""
    return json.dumps({"schema": 2, "saved_at_ms": u, "credentials": {f"w{w}-k{u % 4}": {
        "cooldown_until_ms": 1000 * (u + 1), "cooldown_reason": "quota-exhausted",
        "dead": u % 3 == 0, "auth_failures": 0, "fingerprint": f"fp-{w}"}},
        "budgets": {f"p{w}": 1000 * (UPDATES - u)}})


def _writer(kind: str, where: str, w: int) -> None:
    """One process: like an engine, its state only grows; a skipped write is carried by the next."""
    from failover_policy import StoreContended, StoreLocked
    policy = Policy.load(CONFIG, secrets=SECRETS)
    store = _store(kind, where, "writers")
    ours, pending = _update(w, 0), True
    for u in range(UPDATES):
        ours = policy.merge(ours, _update(w, u))
        try:
            store.save(policy.merge, ours)
            pending = False
        except (StoreLocked, StoreContended):
            pending = True
    while pending:
        try:
            store.save(policy.merge, ours)
            pending = False
        except (StoreLocked, StoreContended):
            pass


def _eight_writers(kind: str, where: str) -> None:
    procs = [SPAWN.Process(target=_writer, args=(kind, where, w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0, "a writer process failed"
    policy = Policy.load(CONFIG, secrets=SECRETS)
    expected = _update(0, 0)
    for w in range(WRITERS):
        for u in range(UPDATES):
            expected = policy.merge(expected, _update(w, u))
    stored = _store(kind, where, "writers").load(policy.merge).state
    assert stored is not None and json.loads(stored) == json.loads(expected)


def test_eight_processes_on_one_file_lose_no_cooldown_and_no_dead_key(tmp_path: Path) -> None:
    _eight_writers("file", str(tmp_path / "policy.json"))


def test_eight_processes_on_one_redis_key_lose_no_cooldown_and_no_dead_key(redis_server: RedisServer) -> None:
    _eight_writers("redis", redis_server.url)


def _incident(kind: str, where: str, name: str, offset_ms: int) -> int:
    """One fresh process, loaded with the store (so saved after each state change): start a
    call, (A) get the 429 quota. Returns the chain position it started on."""
    policy = Policy.load(CONFIG, secrets=SECRETS, clock=VirtualClock(START_MS + offset_ms),
                         store=_store(kind, where, "incident"))
    start = policy.start_call()
    if name == "a":
        assert policy.on_failure(start.route, 429, body=QUOTA, progress=start.progress).kind == ActionKind.FALL_BACK
    else:
        policy.on_success(start.route)
    assert policy.store_error is None
    return start.route.position


def _run_incident(kind: str, where: str, name: str, offset_ms: int) -> int:
    with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as process:
        return process.submit(_incident, kind, where, name, offset_ms).result(timeout=120)


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_the_first_incident_carries_over_to_the_next_processes(kind: str, tmp_path: Path,
                                                               request: pytest.FixtureRequest) -> None:
    where = str(tmp_path / "policy.json") if kind == "file" else request.getfixturevalue("redis_server").url
    assert _run_incident(kind, where, "a", 0) == 0, "A starts on the primary and gets the 429 quota"
    assert _run_incident(kind, where, "b", 60_000) == 1, "B starts on the fallback without touching the primary"
    merger = Policy.load(CONFIG, secrets=SECRETS)
    state = json.loads(_store(kind, where, "incident").load(merger.merge).state or "{}")
    until = state["credentials"]["ali-1"]["cooldown_until_ms"]
    assert _run_incident(kind, where, "c", until - START_MS + 1) == 0, "C, after the cooldown, is on the primary"


def test_a_corrupt_file_is_set_aside_and_a_newer_schema_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    truncated = '{"schema": 2, "credentials": {"ali-1": {"cooldown_until'
    path.write_text(truncated)
    policy = Policy.load(CONFIG, secrets=SECRETS)
    store = FileStore(path)
    loaded = store.load(policy.merge)
    assert loaded.state is None and loaded.set_aside is not None
    assert "not valid JSON" in loaded.set_aside.why
    assert Path(loaded.set_aside.aside).read_text() == truncated, "kept aside, byte for byte"
    ours = _update(1, 1)
    assert store.save(policy.merge, ours).state == ours
    path.write_text('{"schema": 3}')
    with pytest.raises(StoreRefused):
        store.save(policy.merge, ours)
    assert path.read_text() == '{"schema": 3}'


def test_redis_down_fails_fast_decisions_go_on_and_the_next_change_catches_up(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, "outage")
    policy = Policy.load(CONFIG, secrets=SECRETS, clock=VirtualClock(START_MS), store=store)
    redis_server.kill()
    began = time.monotonic()
    start = policy.start_call()
    policy.on_failure(start.route, 429, body=QUOTA, progress=start.progress)
    assert isinstance(policy.store_error, StoreUnavailable), "the failed save is reported"
    with pytest.raises(StoreUnavailable):
        store.load(policy.merge)
    assert time.monotonic() - began < 1.0
    assert policy.select().position == 1, "decisions go on from the in-memory state"
    redis_server.restart()
    policy.select()
    assert policy.store_error is None, "the owed save went through"
    stored = json.loads(store.load(policy.merge).state or "{}")
    assert stored["credentials"]["ali-1"]["cooldown_until_ms"] > START_MS
