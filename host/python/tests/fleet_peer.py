"""A process of the store tests (run as a script): loads a policy with a shared store, then

- `record W K FOLD_AFTER`: records a quota cooldown for each key `wW-k<j>` (j < K), each saved as
  the package saves, and exits at once with no close (the exit hook flushes what is owed);
- `call ROLE SECONDS`: calls the mock provider (incident config) every 50 ms for SECONDS, with
  ROLE in the request body (the mock answers by it), printing nothing.

    python3 fleet_peer.py <file:/path | redis://...> <config.json> record|call ...
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from failover_policy import FailoverError, FileStore, Policy, RedisStore, Request, Route

QUOTA = ('{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota",'
         '"code":"quota_exceeded"}}')


def store(spec: str, fold_after: int) -> FileStore | RedisStore:
    if spec.startswith("file:"):
        return FileStore(spec[5:], fold_after=fold_after, lock_timeout_ms=1000)
    return RedisStore(spec, "peers", fold_after=fold_after, timeout_ms=2000)


def main() -> None:
    spec, config_path, mode, *rest = sys.argv[1:]
    config = json.loads(Path(config_path).read_text())
    secrets = {c["id"]: f"sk-{c['id']}" for p in config["providers"].values() for c in p["credentials"]}
    if mode == "record":
        worker, keys, fold_after = (int(x) for x in rest)
        policy = Policy.load(config, secrets=secrets, store=store(spec, fold_after))
        for j in range(keys):
            policy.on_failure(Route("fleet", "m", f"w{worker}-k{j}", 0), 429, body=QUOTA)
        return  # no close: the exit hook must flush
    role, seconds = rest[0], float(rest[1])
    policy = Policy.load(config, secrets=secrets, store=store(spec, 256))
    print("ready", flush=True)
    if role == "a":
        sys.stdin.readline()  # go
    body = json.dumps({"model": "x", "messages": [{"role": "user", "content": role}]}).encode()
    deadline = time.monotonic() + seconds
    while True:
        try:
            policy.call(Request(body=body))
        except FailoverError:
            pass
        if role == "a" or time.monotonic() > deadline:
            return
        time.sleep(0.05)


if __name__ == "__main__":
    main()
