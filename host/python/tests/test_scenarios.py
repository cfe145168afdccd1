"""(a) Every shared scenario through the Python host: expectations, then the golden trace. The
current scenarios run on the packaged (0.3.0) policy, the frozen 0.1 and 0.2 scenarios on the
deployed 0.1.0 and 0.2.0 builds (tests/policies/v0.1.0, v0.2.0), which this host keeps loading."""

import difflib
import json
from pathlib import Path

import pytest
from scenario_runner import run_scenario

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "tests" / "scenarios"
FROZEN = [ROOT / "tests" / "policies" / v for v in ("v0.1.0", "v0.2.0")]
# (scenario, the policy to run it with: None for the packaged one)
CASES = [(p, None) for p in sorted(SCENARIOS.glob("*.json"))] + \
    [(p, frozen / "failover_policy.wasm") for frozen in FROZEN for p in sorted((frozen / "scenarios").glob("*.json"))]
IDS = [p.stem if wasm is None else f"{wasm.parent.name}-{p.stem}" for p, wasm in CASES]


@pytest.mark.parametrize("frozen", [None, *FROZEN], ids=["current", *(f.name for f in FROZEN)])
def test_scenarios_exist(frozen: Path | None) -> None:
    wasm = None if frozen is None else frozen / "failover_policy.wasm"
    assert any(w == wasm for _, w in CASES), f"no scenarios under {SCENARIOS if frozen is None else frozen}"


@pytest.mark.parametrize(("path", "wasm"), CASES, ids=IDS)
def test_scenario(path: Path, wasm: Path | None) -> None:
    trace, failures = run_scenario(path, wasm)
    assert not failures, "\n".join(failures)
    golden = path.parent / "golden" / f"{path.stem}.jsonl"
    if not golden.exists():
        pytest.fail(f"scenario {path.stem}: no golden trace {golden}; write it with the Rust harness "
                    f"(`failover simulate --bless {path}`)")
    want = [json.loads(line) for line in golden.read_text().splitlines() if line.strip()]
    if trace != want:
        diff = difflib.unified_diff([json.dumps(x) for x in want], [json.dumps(x) for x in trace],
                                    "golden", "python", lineterm="")
        pytest.fail(f"scenario {path.stem}: trace differs from {golden.name}\n" + "\n".join(diff))
