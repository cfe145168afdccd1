"""One worker of the fleet test (tests/fleet/README.md, "Fleet workers"): loads the policy with a
shared store, records a quota failure for each of its keys through `on_failure` (each saved as the
host saves), and in `watch` mode then decides every 10 ms until it has seen every peer's records.

    python3 host/python/bench/fleet_worker.py --store redis://127.0.0.1:6379/0 --name fleet \\
        --config config.json --worker 3 --keys 10 --mode record|watch [--peers 8] \\
        [--timeout-ms 10000] [--ca-file ca.pem] [--start-at <unix ms>]

Prints one JSON line (host, worker, saves, save_ms, refreshes, decisions, seen_ms) and exits 0;
on any error, a message on stderr and exit 1. In `record` mode it exits with no explicit close:
the package's exit hook flushes what is owed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # a source checkout

from failover_policy import FileStore, Policy, RedisStore, Route  # noqa: E402

QUOTA_BODY = ('{"error":{"message":"You exceeded your current quota, please check your plan and billing details.",'
              '"type":"insufficient_quota","code":"insufficient_quota"}}')


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="redis://..., rediss://... or file:/abs/path")
    p.add_argument("--name", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--worker", type=int, required=True)
    p.add_argument("--keys", type=int, required=True)
    p.add_argument("--mode", choices=("record", "watch"), required=True)
    p.add_argument("--peers", type=int, default=0)
    p.add_argument("--timeout-ms", type=int, default=10000)
    p.add_argument("--ca-file")
    p.add_argument("--start-at", type=int, help="unix ms to start recording at (watch mode)")
    return p.parse_args()


def store(spec: str, name: str, ca_file: str | None) -> FileStore | RedisStore:
    if spec.startswith("file:"):
        if ca_file is not None:
            raise ValueError("--ca-file is for a rediss:// store")
        return FileStore(spec[len("file:"):])
    if spec.startswith(("redis://", "rediss://")):
        return RedisStore(spec, name, ca_file=ca_file)
    raise ValueError(f"--store must be redis://..., rediss://... or file:/abs/path, got {spec!r}")


def cooling(snapshot: str, now_ms: int) -> dict[str, int]:
    """Credential id -> its record's last_error_ms, for every credential cooling at `now_ms`."""
    creds = json.loads(snapshot).get("credentials") or {}
    return {cid: rec.get("last_error_ms", 0) for cid, rec in creds.items()
            if isinstance(rec, dict) and (rec.get("cooldown_until_ms") or 0) > now_ms}


def main() -> int:
    args = parse()
    config = json.loads(Path(args.config).read_text())
    ids = [c["id"] for p in config["providers"].values() for c in p["credentials"]]
    policy = Policy.load(config, secrets={cid: f"sk-fleet-{cid}" for cid in ids},
                         store=store(args.store, args.name, args.ca_file))
    if args.mode == "watch" and args.start_at is not None:
        time.sleep(max(0.0, args.start_at / 1000 - time.time()))
    for j in range(args.keys):
        policy.on_failure(Route("fleet", "m", f"w{args.worker}-k{j}", 0), 429, body=QUOTA_BODY)
    stats = policy.store_stats  # kept by this process after close()
    if stats is None:
        raise RuntimeError("the policy has no store")
    decisions, seen_ms = 0, {}
    if args.mode == "watch":
        peers = {f"w{p}-k{j}" for p in range(args.peers) for j in range(args.keys) if p != args.worker}
        deadline = time.monotonic() + args.timeout_ms / 1000
        checked = -1
        while time.monotonic() < deadline:
            try:
                policy.select()
            except Exception:  # noqa: BLE001 -- every key cooling is no route: a decision all the same
                pass
            decisions += 1
            # Only a refresh brings peers' records: reading the snapshot after every select would
            # make dozens of workers on a few cores time their own CPU, not the store.
            if stats.refreshes == checked:
                time.sleep(0.01)
                continue
            checked = stats.refreshes
            now = int(time.time() * 1000)
            for cid, at in cooling(policy.snapshot(), now).items():
                if cid in peers and cid not in seen_ms:
                    seen_ms[cid] = now - at
            if len(seen_ms) == len(peers):
                break
            time.sleep(0.01)
        policy.close()
    print(json.dumps({"host": "python", "worker": args.worker, "saves": stats.saves,
                      "save_ms": [round(ms, 3) for ms in stats.save_ms], "refreshes": stats.refreshes,
                      "failures": stats.failures,
                      "decisions": decisions, "seen_ms": seen_ms}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 -- the protocol: a message on stderr and exit 1
        print(f"fleet_worker: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
