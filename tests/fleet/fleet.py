#!/usr/bin/env python3
"""The fleet test and benchmark: worker processes of all three hosts on one store.

    python3 tests/fleet/fleet.py check   # every record arrives: 64 writers on Redis, 16 on a file
    python3 tests/fleet/fleet.py bench   # propagation, Redis commands and save time at 8/32/64

Workers are the hosts' own programs (tests/fleet/README.md says what each does); hosts take
turns by worker index, so every run mixes Rust, Python and JS processes. The stored state is
read back raw (base plus log) and folded by the packaged policy, so what is checked is what any
new process of any host would load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host/python/src"))

import redis  # noqa: E402
from failover_policy import Policy  # noqa: E402

HOSTS = ("rust", "python", "js")
WORKER_TIMEOUT_S = 240
COOLDOWN_REASON = "billing"


def worker_command(host: str) -> list[str]:
    if host == "rust":
        return [str(ROOT / "target/release/examples/fleet_worker")]
    if host == "python":
        return [sys.executable, str(ROOT / "host/python/bench/fleet_worker.py")]
    return ["node", str(ROOT / "host/js/bench/fleet-worker.mjs")]


def build_rust_worker() -> None:
    subprocess.run(["cargo", "build", "--quiet", "--release", "--locked", "-p", "failover-host", "--example",
                    "fleet_worker"], cwd=ROOT, check=True)


def fleet_config(workers: int, keys: int) -> dict:
    credentials = [{"id": f"w{i}-k{j}"} for i in range(workers) for j in range(keys)]
    return {
        "providers": {"fleet": {"family": "openai", "base_url": "http://127.0.0.1:9/v1", "credentials": credentials}},
        "primary": {"provider": "fleet", "model": "m"},
    }


def secrets_for(config: dict) -> dict[str, str]:
    return {c["id"]: f"sk-fleet-{c['id']}" for c in config["providers"]["fleet"]["credentials"]}


class RedisServer:
    """A throwaway redis-server on a free port of 127.0.0.1, persistence off."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--maxclients", "1000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start within 10 s") from None
                time.sleep(0.05)

    def command_calls(self) -> dict[str, int]:
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@dataclass
class Run:
    reports: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_workers(store: str, name: str, config_path: Path, workers: int, keys: int, mode: str,
                hosts: tuple[str, ...]) -> Run:
    """Starts `workers` processes (hosts taking turns), waits for all, collects reports. `record`
    starts them all at once, the storm the check is about; `watch` (the benchmark) 150 ms apart,
    as a fleet's processes start, so that start-up CPU on a small machine is not what is timed."""
    stagger_s = 0.15 if mode == "watch" else 0.0
    # Every worker loaded before anyone writes.
    start_at = int(time.time() * 1000) + 3000 + int((250 + 1000 * stagger_s) * workers)
    procs = []
    # Python workers reuse wasmtime's compiled code instead of each compiling the component.
    env = {**os.environ, "FAILOVER_PY_COMPILE_CACHE": "on"}
    began = time.monotonic()
    for i in range(workers):
        host = hosts[i % len(hosts)]
        args = ["--store", store, "--name", name, "--config", str(config_path), "--worker", str(i),
                "--keys", str(keys), "--mode", mode]
        if mode == "watch":
            args += ["--peers", str(workers), "--timeout-ms", "20000", "--start-at", str(start_at)]
        procs.append((i, host, subprocess.Popen(worker_command(host) + args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True, env=env)))
        time.sleep(stagger_s)
    run = Run()
    for i, host, proc in procs:
        try:
            out, err = proc.communicate(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            run.failures.append(f"worker {i} ({host}) did not finish within {WORKER_TIMEOUT_S} s")
            continue
        if proc.returncode != 0:
            run.failures.append(f"worker {i} ({host}) exited {proc.returncode}: {err.strip()[-600:]}")
            continue
        lines = [line for line in out.splitlines() if line.strip()]
        try:
            report = json.loads(lines[-1])
        except (IndexError, ValueError):
            run.failures.append(f"worker {i} ({host}) printed no JSON report: {out[-300:]!r} {err[-300:]!r}")
            continue
        report["host"] = host
        run.reports.append(report)
    run.wall_s = time.monotonic() - began
    return run


def stored_states_redis(client: redis.Redis, name: str) -> list[str]:
    key = f"failover-policy:{name}"
    base = client.get(key)
    entries = client.xrange(f"{key}:log", "-", "+")
    states = [] if base is None else [base.decode()]
    return states + [fields[b"state"].decode() for _, fields in entries]


def stored_states_file(path: Path) -> list[str]:
    states = [path.read_text()] if path.exists() else []
    log = path.with_name(path.name + ".log")
    if log.exists():
        text = log.read_text()
        states += [line for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]
    return states


def missing_records(policy: Policy, states: list[str], workers: int, keys: int) -> list[str]:
    """The credentials whose cooldown did not reach the store, folded as a new process would."""
    if not states:
        return [f"w{i}-k{j}" for i in range(workers) for j in range(keys)]
    merged = states[0]
    for s in states[1:]:
        merged = policy.merge(merged, s)
    records = json.loads(merged).get("credentials", {})
    now = int(time.time() * 1000)
    # OpenAI's `insufficient_quota` 429 is out of credit: the key rests as `billing`.
    return [f"w{i}-k{j}" for i in range(workers) for j in range(keys)
            if not (records.get(f"w{i}-k{j}", {}).get("cooldown_until_ms", 0) > now
                    and records.get(f"w{i}-k{j}", {}).get("cooldown_reason") == COOLDOWN_REASON)]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def check(args: argparse.Namespace, workdir: Path) -> int:
    if "rust" in args.hosts:
        build_rust_worker()
    problems: list[str] = []
    server = RedisServer(workdir)
    try:
        for label, workers, store_of in (
            ("redis", args.redis_writers, lambda: server.url),
            ("file", args.file_writers, lambda: f"file:{workdir / 'state' / 'fleet.json'}"),
        ):
            config = fleet_config(workers, args.keys)
            config_path = workdir / f"config-{label}.json"
            config_path.write_text(json.dumps(config))
            run = run_workers(store_of(), "fleet", config_path, workers, args.keys, "record", args.hosts)
            policy = Policy.load(config, secrets=secrets_for(config))
            states = (stored_states_redis(server.client, "fleet") if label == "redis"
                      else stored_states_file(workdir / "state" / "fleet.json"))
            missing = missing_records(policy, states, workers, args.keys)
            per_host = {h: sum(1 for r in run.reports if r["host"] == h) for h in args.hosts}
            print(f"{label}: {workers} writers ({per_host}) x {args.keys} keys in {run.wall_s:.1f} s: "
                  f"{workers * args.keys - len(missing)}/{workers * args.keys} records arrived, "
                  f"{len(states)} stored pieces (base + log)")
            problems += [f"{label}: {f}" for f in run.failures]
            if missing:
                problems.append(f"{label}: {len(missing)} records never reached the store: {missing[:10]}")
    finally:
        server.stop()
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    return 1 if problems else 0


def warm_up(hosts: tuple[str, ...], store: str, workdir: Path) -> None:
    """One worker of each host, once: Python's compiled-code cache is filled before the fleet
    starts, so what is timed is the store, not a dozen processes compiling the same component."""
    config_path = workdir / "config-warm-up.json"
    config_path.write_text(json.dumps(fleet_config(1, 1)))
    run = run_workers(store, "warm-up", config_path, len(hosts), 1, "record", hosts)
    if run.failures:
        raise SystemExit(f"warm-up failed: {run.failures}")


def bench(args: argparse.Namespace, workdir: Path) -> int:
    if "rust" in args.hosts:
        build_rust_worker()
    rows = []
    server = RedisServer(workdir)
    try:
        warm_up(args.hosts, server.url, workdir)
        for workers in args.writers:
            name = f"bench-{workers}"
            config = fleet_config(workers, args.keys)
            config_path = workdir / f"config-{workers}.json"
            config_path.write_text(json.dumps(config))
            before = server.command_calls()
            run = run_workers(server.url, name, config_path, workers, args.keys, "watch", args.hosts)
            after = server.command_calls()
            calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            seen = [float(ms) for r in run.reports for ms in r.get("seen_ms", {}).values()]
            save_ms = [float(ms) for r in run.reports for ms in r.get("save_ms", [])]
            saves = sum(r.get("saves", 0) for r in run.reports)
            # The watch loop's selects plus each worker's on-failure decisions.
            decisions = sum(r.get("decisions", 0) + args.keys for r in run.reports)
            save_cmds = calls.get("xadd", 0) + calls.get("pexpire", 0)
            refresh_cmds = 2 * calls.get("xread", 0)  # each refresh: GET P:folded and XREAD, pipelined
            rest = sum(calls.values()) - save_cmds - refresh_cmds - calls.get("info", 0)
            expected_seen = workers * (workers - 1) * args.keys
            store_failures = sum(r.get("failures", 0) for r in run.reports)
            rows.append((workers, percentile(seen, 0.5), percentile(seen, 0.99), len(seen), expected_seen,
                         save_cmds / max(saves, 1), refresh_cmds / max(decisions, 1), rest / workers,
                         percentile(save_ms, 0.5), percentile(save_ms, 0.99), store_failures, len(run.failures)))
            for f in run.failures:
                print(f"FAIL {workers} writers: {f}", file=sys.stderr)
        # The file store at the scale one machine runs: Redis's columns do not apply.
        name, workers = "bench-file", args.file_writers
        config = fleet_config(workers, args.keys)
        config_path = workdir / "config-file.json"
        config_path.write_text(json.dumps(config))
        run = run_workers(f"file:{workdir / 'file-state' / 'fleet.json'}", name, config_path, workers, args.keys,
                          "watch", args.hosts)
        seen = [float(ms) for r in run.reports for ms in r.get("seen_ms", {}).values()]
        save_ms = [float(ms) for r in run.reports for ms in r.get("save_ms", [])]
        file_row = (workers, percentile(seen, 0.5), percentile(seen, 0.99), len(seen), workers * (workers - 1) * args.keys,
                    percentile(save_ms, 0.5), percentile(save_ms, 0.99), len(run.failures))
        for f in run.failures:
            print(f"FAIL file store, {workers} writers: {f}", file=sys.stderr)
    finally:
        server.stop()
    print(f"\nFleet on one redis-server (127.0.0.1), {args.keys} keys per writer, hosts taking turns "
          f"({', '.join(args.hosts)}), {os.cpu_count()} cores\n")
    print("| writers | propagation p50 | p99 | peers' records seen | Redis commands per save | "
          "per decision (refreshes) | per process (load, folds) | save p50 | save p99 | store errors | failed workers |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for w, p50, p99, n, expected, per_save, per_decision, per_process, s50, s99, errors, failed in rows:
        print(f"| {w} | {p50:.0f} ms | {p99:.0f} ms | {n}/{expected} | {per_save:.2f} | {per_decision:.3f} | "
              f"{per_process:.1f} | {s50:.2f} ms | {s99:.2f} ms | {errors} | {failed} |")
    w, p50, p99, n, expected, s50, s99, failed = file_row
    print(f"\nThe same on one file (`file:`), {w} writers:\n")
    print("| writers | propagation p50 | p99 | peers' records seen | save p50 | save p99 | failed workers |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {w} | {p50:.0f} ms | {p99:.0f} ms | {n}/{expected} | {s50:.2f} ms | {s99:.2f} ms | {failed} |")
    return 1 if any(r[-1] for r in rows) or failed else 0


def hosts_list(text: str) -> tuple[str, ...]:
    hosts = tuple(h.strip() for h in text.split(",") if h.strip())
    unknown = [h for h in hosts if h not in HOSTS]
    if unknown or not hosts:
        raise argparse.ArgumentTypeError(f"unknown hosts {unknown}: choose from {', '.join(HOSTS)}")
    return hosts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("check", help="every record of every writer arrives (Redis and file store)")
    c.add_argument("--redis-writers", type=int, default=64)
    c.add_argument("--file-writers", type=int, default=16)
    c.add_argument("--keys", type=int, default=10)
    b = sub.add_parser("bench", help="propagation, Redis commands and save time by number of writers")
    b.add_argument("--writers", type=lambda s: [int(x) for x in s.split(",")], default=[8, 32, 64])
    b.add_argument("--keys", type=int, default=5)
    b.add_argument("--file-writers", type=int, default=16)
    for p in (c, b):
        p.add_argument("--hosts", type=hosts_list, default=HOSTS, help="whose workers take turns (default: all)")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (scripts/setup.sh installs it)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        return check(args, Path(tmp)) if args.what == "check" else bench(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
