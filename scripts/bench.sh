#!/usr/bin/env bash
# Runs every benchmark (Rust criterion natively and through the component, the Python and JS
# hosts) and writes BENCHMARKS.md from this one run. Run scripts/setup.sh first.
# BENCH_SECONDS: criterion's measurement time and the Python/JS budget per operation (default 1;
# about 6-8 minutes in all on 2 cores once the host is built).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${BENCH_SECONDS:-1}"
target="${CARGO_TARGET_DIR:-target}"
out="$target/bench"
mkdir -p "$out"
rm -rf "$target/criterion"

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --locked -p failover-host --bench policy -- --warm-up-time 0.3 --measurement-time "$secs" \
  --noplot | tee "$out/rust.txt"
python3 host/python/bench/bench.py --budget "$secs" --json "$out/python.json" 2>/dev/null | tee "$out/python.txt"
node host/js/bench/bench.mjs --budget "$secs" --json "$out/js.json" | tee "$out/js.txt"
cargo run --quiet --release --locked -p failover-host --example stream_costs | tee "$out/streams.md"
node host/js/bench/stream.mjs | tee "$out/js-streams.md"
python3 tests/fleet/fleet.py bench | tee "$out/fleet.md"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$target" "$load_before" "$load_after" <<'EOF'
import datetime, json, statistics, subprocess, sys
from pathlib import Path

target, load_before, load_after = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
out = target / "bench"

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e:
        return f"? ({e})"

def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"

def criterion(group, fn):
    """Median, p10, p90 of criterion's per-sample mean time per iteration, and iterations."""
    s = json.loads((target / "criterion" / group / fn / "new" / "sample.json").read_text())
    per = sorted(t / i for t, i in zip(s["times"], s["iters"]))
    q = statistics.quantiles(per, n=10)
    return {"median_ns": statistics.median(per), "p10_ns": q[0], "p90_ns": q[-1], "iterations": int(sum(s["iters"]))}

def spread(r):
    return f"{fmt(r['p10_ns'])}–{fmt(r['p90_ns'])}"

py, js = (json.loads((out / f).read_text()) for f in ("python.json", "js.json"))
pyr = {r["operation"]: r for r in py["rows"]}
jsr = {r["operation"]: r for r in js["rows"]}
ops = ["classify", "select", "on-failure-429-rotate", "on-failure-503-backoff", "call-429-then-200"]
ops += [f"{k}-{n}-keys" for n in (1, 10, 1000) for k in ("snapshot", "restore")]
rust = {op: (criterion(op, "native"), criterion(op, "wasm")) for op in ops}
cold = {fn: criterion("cold", fn) for fn in ("compile-wasm", "load-artifact", "load-artifact-file", "instantiate-pre")}
swap = {fn: criterion("swap-to-first-decision", fn) for fn in ("new-wasm", "new-wasm-baseline", "cached-artifact")}
via_host = {fn: criterion("policy-host", fn) for fn in ("select", "on-failure-429-rotate")}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
pyver = sh("python3 -c 'import importlib.metadata as m; print(m.version(\"wasmtime\"))'")
jco = sh("node -p \"require('./host/js/node_modules/@bytecodealliance/jco-transpile/package.json').version\"")
pyv = sh("python3 -c 'import platform; print(platform.python_version())'")
wasmtime = sh("grep -A1 '^name = \"wasmtime\"$' Cargo.lock | sed -n 's/version = //p' | tr -d '\"'")

L = []
w = L.append
w("# Benchmarks\n")
w("What the policy costs per decision, per start and per swap, in every host, against the same logic "
  "compiled natively. Written by `scripts/bench.sh` from one run; every ratio below compares figures "
  "measured side by side in that run.\n")
w("## Machine and versions\n")
w(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
w(f"- machine: {sh('nproc')} cores, {cpu}, {mem} memory; load average {load_before} before, {load_after} after "
  "(other builds shared the machine: absolute figures are noisy, ratios from one run less so)")
w(f"- {sh('rustc --version')}; wasmtime {wasmtime} (Rust host); Python {pyv}, "
  f"wasmtime-py {pyver}; Node {sh('node --version')}, jco-transpile {jco}\n")
w("Each figure: the median per call and the p10–p90 spread over samples (criterion's samples in Rust; batches "
  "of about 1 ms in Python and JS), and how many calls were timed.\n")
w("## Per call: native, Rust host, Python, JS\n")
w("| operation | native | wasm (Rust host) | wasm/native | Rust p10–p90 | Python | JS |")
w("|---|---|---|---|---|---|---|")
for op in ops:
    n, c = rust[op]
    p, j = pyr.get(op), jsr.get(op)
    w(f"| {op} | {fmt(n['median_ns'])} | {fmt(c['median_ns'])} | {c['median_ns'] / n['median_ns']:.1f}x | {spread(c)} | "
      f"{fmt(p['median_ns']) if p else '–'} | {fmt(j['median_ns']) if j else '–'} |")
w("\n`classify` cycles through all corpus cases (tests/corpus/*.jsonl); `on-failure-429-rotate` is a rate-limit 429 "
  "on a two-key provider (rotate), `on-failure-503-backoff` an overloaded 503 (retry after a backoff); "
  "`call-429-then-200` a guest-driven call against an in-memory provider (rotate, then success); snapshots "
  "and restores (`engine.create` from the snapshot) are of a pool with every key in quota cooldown. "
  "A virtual clock moves an hour per iteration, so every iteration makes the same decision.\n")
w("## A decision through `PolicyHost` (Rust host)\n")
w("| operation | `Instance` (above) | `PolicyHost` | p10–p90 | iterations |\n|---|---|---|---|---|")
for op, r in via_host.items():
    w(f"| {op} | {fmt(rust[op][1]['median_ns'])} | {fmt(r['median_ns'])} | {spread(r)} | {r['iterations']} |")
w("\n`PolicyHost` is what an application calls: it adds the lock and, after each call that can change "
  "the state, the last-good snapshot a restart after a fault restores.\n")
w("## Cold start and swap (Rust host)\n")
w("| operation | median | p10–p90 | iterations |\n|---|---|---|---|")
for name, r in [("compile .wasm (Component::new)", cold["compile-wasm"]),
                ("load precompiled artifact from memory (Component::deserialize)", cold["load-artifact"]),
                ("load precompiled artifact from a file, mapped (Component::deserialize_file)", cold["load-artifact-file"]),
                ("instantiate (InstancePre + Store)", cold["instantiate-pre"]),
                ("swap to first decision, never-seen .wasm, Cranelift", swap["new-wasm"]),
                ("swap to first decision, never-seen .wasm, Winch baseline (tiered: Cranelift follows)", swap["new-wasm-baseline"]),
                ("swap to first decision, cached artifact", swap["cached-artifact"])]:
    w(f"| {name} | {fmt(r['median_ns'])} | {spread(r)} | {r['iterations']} |")
w("\nSwap = load + link + instantiate + `engine.create` + `select`, through `failover_host::Policy`: "
  "`from_bytes` (Cranelift) or `from_bytes_baseline` (Winch) for a never-seen `.wasm`, `from_bytes_cached` "
  "(the on-disk artifact cache) for a cached one. `PolicyHost::swap_tiered` serves the first decisions from the "
  "Winch build and swaps in the Cranelift build when its background compile is done.\n")
for title, data in (("Python host (wasmtime-py)", py), ("JS host (jco-transpile, Node)", js)):
    w(f"## {title}\n")
    w("| operation | median | p10–p90 | iterations |\n|---|---|---|---|")
    for r in data["rows"]:
        w(f"| {r['operation']} | {fmt(r['median_ns'])} | {spread(r)} | {r['iterations']} |")
    m = data["memory"]
    w(f"\nRSS {m['rss_before_kib']} KiB before and {m['rss_after_100_swaps_kib']} KiB after 100 swaps between two "
      "cached builds" + (f"; {m['rss_after_10_more_new_wasm_kib']} KiB after 10 more swaps to never-seen builds "
      "(each stays compiled in the process cache)" if "rss_after_10_more_new_wasm_kib" in m else "") + ".\n")

def check(ok):
    return "met" if ok else "**missed**"
ratio = rust["classify"][1]["median_ns"] / rust["classify"][0]["median_ns"]
worst_rust = max(rust[o][1]["median_ns"] for o in ("select", "on-failure-429-rotate", "on-failure-503-backoff"))
worst_py = max(pyr[o]["median_ns"] for o in ("select", "on-failure-429-rotate", "on-failure-503-backoff"))
worst_js = max(jsr[o]["median_ns"] for o in ("select", "on-failure-429-rotate", "on-failure-503-backoff"))
w("## Targets (issue 9)\n")
w("| target | measured | |\n|---|---|---|")
w(f"| component classify within 3x of native | {ratio:.1f}x | {check(ratio <= 3)} |")
w(f"| select / on-failure under 5 µs (Rust host) | worst {fmt(worst_rust)} | {check(worst_rust < 5e3)} |")
w(f"| under 20 µs per decision from Python | worst {fmt(worst_py)} | {check(worst_py < 20e3)} |")
w(f"| under 10 µs per decision from JS | worst {fmt(worst_js)} | {check(worst_js < 10e3)} |")
load_file = cold['load-artifact-file']['median_ns'] + cold['instantiate-pre']['median_ns']
w(f"| instantiate from a precompiled artifact under 1 ms | {fmt(cold['load-artifact-file']['median_ns'])} mapped file + "
  f"{fmt(cold['instantiate-pre']['median_ns'])} (from memory: {fmt(cold['load-artifact']['median_ns'])}) | {check(load_file < 1e6)} |")
w(f"| swap to first decision under 150 ms, never-seen .wasm | {fmt(swap['new-wasm-baseline']['median_ns'])} tiered "
  f"(Winch first; Cranelift alone {fmt(swap['new-wasm']['median_ns'])}) | {check(swap['new-wasm-baseline']['median_ns'] < 150e6)} |")
w(f"| swap to first decision under 5 ms, cached artifact | {fmt(swap['cached-artifact']['median_ns'])} | {check(swap['cached-artifact']['median_ns'] < 5e6)} |")
w("")
w("## Streamed answers (issue 14)\n")
w("What the guest's judgement of a stream costs per event (framing, judging, holding back or "
  "passing on), natively and through the component, and what a driven call adds to the time to "
  "first token over loopback HTTP (`host/rust/examples/stream_costs.rs`):\n")
w((out / "streams.md").read_text())
w("### JS host (issue 17)\n")
w("The same stream from a loopback provider, read with fetch directly and through `failoverFetch`, "
  "in turns; and a stream from an in-memory carrier, so that only the executor (`drive.js`) and the "
  "guest are timed (`host/js/bench/stream.mjs`):\n")
w((out / "js-streams.md").read_text())
w("## A fleet on one store (issue 18)\n")
w("Worker processes of the three hosts taking turns (`tests/fleet/fleet.py bench`) on one local "
  "redis-server: each loads, records its keys' quota cooldowns at one agreed moment, then decides every "
  "10 ms (refreshing as calls do) until it has seen every peer's records. Propagation is from a record's "
  "failure time to the moment a peer's engine holds it; commands are counted by Redis (`INFO commandstats`). "
  "Processes start 150 ms apart after one warm-up worker per host. On a small machine the largest fleet "
  "measures the CPU more than the store: 64 processes and Redis on 2 cores, each deciding every 10 ms, keep "
  "the load average near 40, and the p99 is processes waiting to run (no store errors, every record seen).\n")
w((out / "fleet.md").read_text())
notes = Path("host/rust/benches/where-the-time-goes.md")
if notes.exists():
    w(notes.read_text())
w("## Reproduce\n")
w("```sh\nscripts/setup.sh\nscripts/bench.sh                 # BENCH_SECONDS=3 for steadier figures\n```\n")
w("Raw results: `target/criterion/` (criterion samples), `target/bench/{rust,python,js}.txt` and "
  "`{python,js}.json`. The scripts: `host/rust/benches/policy.rs`, `host/python/bench/bench.py`, "
  "`host/js/bench/bench.mjs`.")
Path("BENCHMARKS.md").write_text("\n".join(L) + "\n")
print("wrote BENCHMARKS.md")
EOF
