"""The state stores in the fleet layout (tests/fleet/README.md), against real processes, a real
file system and a real redis-server on 127.0.0.1: a running worker stops using a key within a
second of a peer's 429, writers that exit right after saving lose nothing, old records expire at a
fold while running cooldowns stay, a down or silent Redis costs a call its timeout once and is
caught up after, TLS with an ACL user works, unreadable state is set aside and newer state left
alone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import fallback_config
from redis_server import RedisServer

from failover_policy import (
    ActionKind,
    Delta,
    FileStore,
    Folded,
    Policy,
    RedisStore,
    Route,
    StoreRefused,
    StoreUnavailable,
    VirtualClock,
)
from failover_policy.codec import SUPPORTED
from failover_policy.mock import MockProviders, completion
from failover_policy.store.file_log import FOLD_BYTES, Position
from failover_policy.store.layout import WEEK_MS, ttl_ms

HERE = Path(__file__).parent
SRC = HERE.parents[0] / "src"
PEER = HERE / "fleet_peer.py"
START_MS = 1_795_528_800_000
HOUR_MS = 3_600_000
QUOTA = '{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}'
DAY_MS = 24 * HOUR_MS
CONFIG = {
    "providers": {
        "alibaba-coding-plan": {"base_url": "https://coding.example/v1", "credentials": [{"id": "ali-1"}, {"id": "ali-2"}]},
        "tencent-token-plan": {"base_url": "https://tokens.example/v1/", "credentials": [{"id": "ten-1"}]},
    },
    "primary": {"provider": "alibaba-coding-plan", "model": "qwen3.6-plus"},
    "fallback_providers": [{"provider": "tencent-token-plan", "model": "kimi2.5"}],
}
SECRETS = {"ali-1": "sk-ali", "ali-2": "sk-ali-2", "ten-1": "sk-ten"}

# The fleet's process tests exercise no codec path of their own (each process runs the default
# one), so the suite's second run, with wasmtime-py's call path, skips them.
processes = pytest.mark.skipif(not SUPPORTED, reason="process tests run once, in the compiled-codec run")


def peer_env() -> dict[str, str]:
    # Each process would compile the component (about 1.3 s of CPU); wasmtime's cache makes it ms.
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{HERE}", "FAILOVER_PY_COMPILE_CACHE": "on"}


def store_for(kind: str, where: str, **options: Any) -> FileStore | RedisStore:
    return FileStore(where, **options) if kind == "file" else RedisStore(where, "peers", **options)


def where_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(the store's location for the Python API, for a peer's command line)."""
    if kind == "file":
        path = str(tmp_path / "state" / "policy.json")
        return path, f"file:{path}"
    url = request.getfixturevalue("redis_server").url
    return url, url


def stored(kind: str, where: str) -> dict[str, Any]:
    """What a new process loads from the store, as JSON."""
    policy = Policy.load(CONFIG, secrets=SECRETS)
    loaded = store_for(kind, where).load(_guest(policy))
    return json.loads(loaded.state or "{}")


def _guest(policy: Policy) -> Any:
    from failover_policy.policy import _StoreGuest
    return _StoreGuest(policy)


# ---- live propagation: the two-worker test ----

@processes
@pytest.mark.parametrize("kind", ["file", "redis"])
def test_a_running_worker_sends_the_exhausted_primary_nothing_a_second_after_a_peers_429(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Worker B is already running and calling when worker A meets the primary's 429 quota: from
    1 s after that 429 on, B sends the primary's key not one request."""
    _, spec = where_for(kind, tmp_path, request)
    with MockProviders() as mock:
        mock.answers["ali"] = lambda body: ((429, json.loads(QUOTA)) if "\"a\"" in json.dumps(body)
                                            else (200, completion("hello from ali")))
        config = tmp_path / "config.json"
        config.write_text(json.dumps(fallback_config(mock)))
        b = subprocess.Popen([sys.executable, str(PEER), spec, str(config), "call", "b", "4"], env=peer_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        a = subprocess.Popen([sys.executable, str(PEER), spec, str(config), "call", "a", "0"], env=peer_env(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert a.stdout is not None and b.stdout is not None and a.stdin is not None
            assert a.stdout.readline() == "ready\n" and b.stdout.readline() == "ready\n"
            time.sleep(0.5)  # B calls the primary meanwhile
            a.stdin.write("go\n")
            a.stdin.flush()
            assert a.wait(timeout=30) == 0, a.stderr.read() if a.stderr else ""
            assert b.wait(timeout=30) == 0, b.stderr.read() if b.stderr else ""
        finally:
            for p in (a, b):
                if p.poll() is None:
                    p.kill()
        seen = list(mock.seen)
    hit = [s.at for s in seen if s.provider == "ali" and "\"a\"" in json.dumps(s.body)]
    assert len(hit) == 1, "A met the 429 once"
    b_primary = [s.at for s in seen if s.provider == "ali" and "\"b\"" in json.dumps(s.body)]
    b_fallback = [s.at for s in seen if s.provider == "ten" and "\"b\"" in json.dumps(s.body)]
    assert [t for t in b_primary if t < hit[0]], "B was calling the primary before A's 429"
    late = [round(t - hit[0], 3) for t in b_primary if t > hit[0] + 1.0]
    assert not late, f"B sent the exhausted primary requests {late} s after A's 429"
    assert [t for t in b_fallback if t > hit[0] + 1.0], "B went on calling, on the fallback"


# ---- nothing lost ----

def _fleet_config(workers: int, keys: int) -> dict[str, Any]:
    creds = [{"id": f"w{i}-k{j}"} for i in range(workers) for j in range(keys)]
    return {"providers": {"fleet": {"family": "openai", "base_url": "http://127.0.0.1:9/v1", "credentials": creds}},
            "primary": {"provider": "fleet", "model": "m"}}


@processes
@pytest.mark.parametrize("kind, writers", [("file", 16), ("redis", 32)])
def test_writers_exiting_right_after_their_saves_lose_nothing(kind: str, writers: int, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    """Every writer records its keys and exits at once (no close), while others fold the log
    (`fold_after` 8): every cooldown is in what a new process loads."""
    keys = 4
    where, spec = where_for(kind, tmp_path, request)
    config = _fleet_config(writers, keys)
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(config))
    procs = [subprocess.Popen([sys.executable, str(PEER), spec, str(path), "record", str(w), str(keys), "8"],
                              env=peer_env(), stderr=subprocess.PIPE, text=True) for w in range(writers)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    loader = Policy.load(config, secrets={c["id"]: "x" for c in config["providers"]["fleet"]["credentials"]})
    loaded = store_for(kind, where).load(_guest(loader))
    creds = json.loads(loaded.state or "{}").get("credentials", {})
    missing = [f"w{w}-k{j}" for w in range(writers) for j in range(keys)
               if not creds.get(f"w{w}-k{j}", {}).get("cooldown_until_ms")]
    assert not missing, f"{len(missing)} of {writers * keys} cooldowns never reached the store: {missing[:8]}"
    if kind == "file":
        assert Path(where).exists(), "the log was folded into a base meanwhile"


# ---- bounded state ----

@pytest.mark.parametrize("kind", ["file", "redis"])
def test_a_fold_forgets_records_not_seen_for_forget_after_but_never_a_running_cooldown(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    where, _ = where_for(kind, tmp_path, request)
    config = {**CONFIG, "cooldown": {"quota_ms": 30 * 24 * HOUR_MS}}
    clock = VirtualClock(START_MS)
    first = Policy.load(config, secrets=SECRETS, clock=clock, store=store_for(kind, where, fold_after=0))
    # ali-1: a rate limit with a short retry-after (its cooldown ends in a second); ali-2: quota, 30 days.
    first.on_failure(Route("alibaba-coding-plan", "qwen3.6-plus", "ali-1", 0), 429,
                     headers={"retry-after": "1"}, body='{"error":{"message":"rate limited","type":"rate_limit"}}')
    first.on_failure(Route("alibaba-coding-plan", "qwen3.6-plus", "ali-2", 0), 429, body=QUOTA)
    first.close()
    before = stored(kind, where)["credentials"]
    assert before["ali-1"].get("last_error_ms") and before["ali-2"]["cooldown_until_ms"] > START_MS + 24 * HOUR_MS
    # Eight days on, a process whose store forgets after a week folds (fold_after 0: at its first save).
    later = VirtualClock(START_MS + 8 * 24 * HOUR_MS)
    second = Policy.load(config, secrets=SECRETS, clock=later,
                         store=store_for(kind, where, fold_after=0, forget_after_ms=7 * 24 * HOUR_MS))
    second.on_failure(Route("tencent-token-plan", "kimi2.5", "ten-1", 1), 503)
    assert second.store_stats is not None and second.store_stats.folds == 1
    second.close()
    after = stored(kind, where)["credentials"]
    assert "ali-1" not in after or not after["ali-1"].get("last_error_ms"), "not seen for 8 days: forgotten"
    assert after["ali-2"]["cooldown_until_ms"] == before["ali-2"]["cooldown_until_ms"], "still cooling: kept"


# ---- TTLs: from the guest's keep_until_ms, never from reading a snapshot ----

NOW = 1_000_000_000


@pytest.mark.parametrize("keep_until_ms, forget_after_ms, expected", [
    (0, WEEK_MS, WEEK_MS),                            # nothing cooling: forget_after_ms
    (NOW - DAY_MS, WEEK_MS, WEEK_MS),                 # a cooldown already over: the same
    (NOW + 3 * DAY_MS, WEEK_MS, WEEK_MS),             # one ending within the week: at least the week
    (NOW + WEEK_MS, WEEK_MS, WEEK_MS),                # ending as the week does
    (NOW + 30 * DAY_MS, WEEK_MS, 30 * DAY_MS),        # a 30-day quota: kept until it ends
    (NOW + 5, 1, 5),                                  # the rule, not the default: keep - now
    (NOW + 30 * DAY_MS, 0, None),                     # forget_after_ms 0: no TTL at all
    (0, 0, None),
])
def test_the_ttl_is_keep_until_minus_now_at_least_forget_after_and_none_when_nothing_is_forgotten(
        keep_until_ms: int, forget_after_ms: int, expected: int | None) -> None:
    assert ttl_ms(keep_until_ms, NOW, forget_after_ms) == expected


class _KeepGuest:
    """A guest whose fold answers `keep_until_ms` whatever the states say, and runs `during` (a
    peer's write) first: what a store sets TTLs from must be the guest's answer alone."""

    def __init__(self, keep_until_ms: int, during: Any = None) -> None:
        self.keep_until_ms, self.during = keep_until_ms, during

    def fold(self, states: list[str], forget_after_ms: int) -> Folded:
        if self.during is not None:
            self.during()
        return Folded('{"folded": true}', self.keep_until_ms, [], 0)

    def changes(self, since: str, now: str) -> Delta | None:
        raise AssertionError("not used")

    def merge(self, a: str, b: str) -> str:
        raise AssertionError("not used")


def _near(pttl: int, expected_ms: int) -> bool:
    """Within a minute: the test's clock is read around the store's, not at the same instant."""
    return abs(pttl - expected_ms) < 60_000


def test_redis_ttls_come_from_the_deltas_and_the_folds_keep_until(redis_server: RedisServer) -> None:
    import redis
    client = redis.Redis.from_url(redis_server.url)
    store = RedisStore(redis_server.url, "ttl", forget_after_ms=WEEK_MS)
    now = int(time.time() * 1000)
    # Not JSON: a host reading the snapshot for its TTL would find nothing and use the week.
    store.append(Delta("not read by the host", now + 30 * DAY_MS))
    assert _near(client.pttl("failover-policy:ttl:log"), 30 * DAY_MS)
    store.append(Delta("not read either", 0))
    assert _near(client.pttl("failover-policy:ttl:log"), WEEK_MS), "each append sets the log's TTL"
    assert store.fold(_KeepGuest(now + 40 * DAY_MS))
    assert client.get("failover-policy:ttl") == b'{"folded": true}'
    for key in ("failover-policy:ttl", "failover-policy:ttl:folded"):
        assert _near(client.pttl(key), 40 * DAY_MS), key

    forever = RedisStore(redis_server.url, "forever", forget_after_ms=0)
    forever.append(Delta("{}", now + 30 * DAY_MS))
    assert client.pttl("failover-policy:forever:log") == -1, "forget_after_ms 0: no PEXPIRE"
    assert forever.fold(_KeepGuest(now + 30 * DAY_MS))
    for key in ("failover-policy:forever", "failover-policy:forever:folded"):
        assert client.pttl(key) == -1, f"forget_after_ms 0: {key} SET without PX"


def test_a_redis_fold_that_another_process_overtook_is_dropped(redis_server: RedisServer) -> None:
    """The fold's reads go pipelined on the watching connection: the WATCH still holds, so a base
    written meanwhile by a peer makes the EXEC nil, and the peer's base stays."""
    import redis
    client = redis.Redis.from_url(redis_server.url)
    store = RedisStore(redis_server.url, "race")
    store.append(Delta("{}", 0))
    assert not store.fold(_KeepGuest(0, during=lambda: client.set("failover-policy:race", "a peer's fold")))
    assert client.get("failover-policy:race") == b"a peer's fold"
    assert client.xlen("failover-policy:race:log") == 1, "nothing trimmed"
    assert store.fold(_KeepGuest(0)), "the next fold goes through"
    assert client.xlen("failover-policy:race:log") == 0


def test_a_policys_appends_keep_its_whole_states_latest_cooldown(redis_server: RedisServer) -> None:
    """The first save into an empty store (the whole state) and a later delta without the long
    cooldown in it both keep the log until the 30-day cooldown ends, not just the week."""
    import redis
    client = redis.Redis.from_url(redis_server.url)
    config = {**CONFIG, "cooldown": {"quota_ms": 30 * DAY_MS}}
    policy = Policy.load(config, secrets=SECRETS, store=RedisStore(redis_server.url, "keep"))
    policy.on_failure(Route("alibaba-coding-plan", "qwen3.6-plus", "ali-1", 0), 429, body=QUOTA)
    until = json.loads(policy.snapshot())["credentials"]["ali-1"]["cooldown_until_ms"]
    expected = until - int(time.time() * 1000)
    assert expected > 29 * DAY_MS
    assert _near(client.pttl("failover-policy:keep:log"), expected)
    policy.on_failure(Route("tencent-token-plan", "kimi2.5", "ten-1", 1), 503)
    assert policy.store_stats is not None and policy.store_stats.saves == 2
    assert _near(client.pttl("failover-policy:keep:log"), until - int(time.time() * 1000))
    policy.close()


def test_a_file_log_past_256_kib_is_due_for_a_fold_by_its_size_even_unread(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "policy.json", fold_after=1000)
    store.append(Delta("{}", 0))
    assert not store.fold_due(1, Position(None, 0))
    store.append(Delta("x" * FOLD_BYTES, 0))
    assert store.fold_due(1, Position(None, 0)), "a writer that never read the log folds it too"


# ---- a down store ----

def test_a_silent_redis_costs_one_call_its_timeout_then_the_store_is_left_alone(tmp_path: Path) -> None:
    """A server that accepts and never answers: the load pays the 200 ms timeout once; the calls
    that follow, state changes included, pay nothing while `retry_ms` runs."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        began = time.monotonic()
        policy = Policy.load(CONFIG, secrets=SECRETS, clock=VirtualClock(START_MS),
                             store=RedisStore(url, "silent", timeout_ms=200, retry_ms=60_000, refresh_ms=0))
        loaded_in = time.monotonic() - began
        assert isinstance(policy.store_error, StoreUnavailable) and "unavailable" in str(policy.store_error)
        began = time.monotonic()
        start = policy.start_call()
        assert policy.on_failure(start.route, 429, body=QUOTA, progress=start.progress).kind == ActionKind.ROTATE
        for _ in range(20):
            policy.select()
        calls_in = time.monotonic() - began
        policy.close(wait_s=0)  # what is owed stays owed: the store never answers
    assert 0.15 < loaded_in < 1.0, f"the load took {loaded_in:.3f} s (timeout 200 ms)"
    assert calls_in < 0.2, f"22 decisions took {calls_in:.3f} s while the store was paused"


def test_redis_down_decisions_go_on_and_the_first_save_after_it_returns_catches_up(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, "outage", retry_ms=300)
    policy = Policy.load(CONFIG, secrets=SECRETS, clock=VirtualClock(START_MS), store=store)
    redis_server.kill()
    start = policy.start_call()
    policy.on_failure(start.route, 429, body=QUOTA, progress=start.progress)
    policy.on_failure(Route("alibaba-coding-plan", "qwen3.6-plus", "ali-2", 0), 429, body=QUOTA)
    assert isinstance(policy.store_error, StoreUnavailable), "the failed save is reported"
    assert policy.select().provider == "tencent-token-plan", "decisions go on from memory"
    redis_server.restart()
    time.sleep(0.35)
    policy.select()  # a call's start: the owed save goes through
    assert policy.store_error is None
    creds = json.loads(RedisStore(redis_server.url, "outage").load(_guest(policy)).state or "{}")["credentials"]
    assert creds["ali-1"]["cooldown_until_ms"] > START_MS and creds["ali-2"]["cooldown_until_ms"] > START_MS


# ---- TLS and an ACL user ----

def test_rediss_with_an_acl_user_and_a_ca_file(tls_redis_server: RedisServer) -> None:
    url, ca = tls_redis_server.url, tls_redis_server.ca_file
    writer = Policy.load(CONFIG, secrets=SECRETS, clock=VirtualClock(START_MS),
                         store=RedisStore(url, "tls", ca_file=ca, timeout_ms=1000))
    writer.on_failure(Route("alibaba-coding-plan", "qwen3.6-plus", "ali-1", 0), 429, body=QUOTA)
    assert writer.store_error is None
    reader = Policy.load(CONFIG, secrets=SECRETS, clock=VirtualClock(START_MS),
                         store=RedisStore(url, "tls", ca_file=ca, timeout_ms=1000))
    assert reader.store_error is None
    assert json.loads(reader.snapshot())["credentials"]["ali-1"]["cooldown_until_ms"] > START_MS
    # Without the CA the server's certificate is not trusted; without the password, no access.
    untrusted = Policy.load(CONFIG, secrets=SECRETS, store=RedisStore(url, "tls", timeout_ms=1000))
    assert isinstance(untrusted.store_error, StoreUnavailable) and "certificate" in str(untrusted.store_error)
    anonymous = Policy.load(CONFIG, secrets=SECRETS, store=RedisStore(url.replace("fleet:s3cret-fleet@", ""), "tls",
                                                                      ca_file=ca, timeout_ms=1000))
    assert anonymous.store_error is not None
    assert "s3cret" not in str(untrusted.store_error) + str(anonymous.store_error), "no password in a message"
    with pytest.raises(ValueError, match="rediss://"):
        RedisStore(url.replace("rediss://", "redis://"), "tls", ca_file=ca)


# ---- unreadable and newer state ----

def test_a_corrupt_base_and_corrupt_log_lines_are_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    truncated = '{"schema": 2, "credentials": {"ali-1": {"cooldown_until'
    path.write_text(truncated)
    policy = Policy.load(CONFIG, secrets=SECRETS, clock=VirtualClock(START_MS), store=FileStore(path, fold_after=1))
    aside = list(tmp_path.glob("policy.json.corrupt-*"))
    assert [p.read_text() for p in aside] == [truncated], "the base is kept aside, byte for byte"
    assert not path.exists()
    with open(tmp_path / "policy.json.log", "a") as log:
        log.write("not json at all\n")
    policy.on_failure(Route("alibaba-coding-plan", "qwen3.6-plus", "ali-1", 0), 429, body=QUOTA)
    policy.on_failure(Route("alibaba-coding-plan", "qwen3.6-plus", "ali-2", 0), 429, body=QUOTA)
    bad_lines = list(tmp_path.glob("policy.json.log.corrupt-*"))
    assert [p.read_text() for p in bad_lines] == ["not json at all\n"], "the unreadable line is kept aside"
    assert json.loads(path.read_text())["credentials"]["ali-1"]["cooldown_until_ms"] > START_MS, "folded"
    assert policy.store_error is None


def test_a_corrupt_redis_base_is_moved_aside(redis_server: RedisServer) -> None:
    import redis
    client = redis.Redis.from_url(redis_server.url)
    client.set("failover-policy:peers", "{truncated")
    policy = Policy.load(CONFIG, secrets=SECRETS, store=RedisStore(redis_server.url, "peers"))
    assert policy.store_error is None
    assert client.get("failover-policy:peers") is None
    aside = client.keys("failover-policy:peers:corrupt-*")
    assert len(aside) == 1 and client.get(aside[0]) == b"{truncated" and client.pttl(aside[0]) > 0


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_a_newer_schema_base_is_refused_and_left_untouched(kind: str, tmp_path: Path,
                                                           request: pytest.FixtureRequest) -> None:
    where, _ = where_for(kind, tmp_path, request)
    newer = '{"schema": 99, "credentials": {}}'
    if kind == "file":
        Path(where).parent.mkdir(parents=True)
        Path(where).write_text(newer)
    else:
        import redis
        redis.Redis.from_url(where).set("failover-policy:peers", newer)
    policy = Policy.load(CONFIG, secrets=SECRETS, clock=VirtualClock(START_MS),
                         store=store_for(kind, where, fold_after=0))
    assert isinstance(policy.store_error, StoreRefused) and "newer" in str(policy.store_error)
    policy.on_failure(Route("alibaba-coding-plan", "qwen3.6-plus", "ali-1", 0), 429, body=QUOTA)
    policy.close()
    if kind == "file":
        assert Path(where).read_text() == newer
    else:
        import redis
        assert redis.Redis.from_url(where).get("failover-policy:peers") == newer.encode()
