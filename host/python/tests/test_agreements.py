"""What every host must agree on: the contract's enums spelled as in wit/policy.wit, and the shared
data of tests/hosts/ (secret variable names, the messages a host writes itself)."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from enum import Enum
from pathlib import Path

import pytest

from failover_policy import fault
from failover_policy.secrets import default_env_var
from failover_policy.types import (
    ActionKind,
    CredentialState,
    Delta,
    EventKind,
    Folded,
    Reason,
    TransportKind,
    UnreadableState,
)

ROOT = Path(__file__).resolve().parents[3]
WIT = (ROOT / "wit" / "policy.wit").read_text()


def wit_enum(name: str) -> list[str]:
    body = re.search(r"enum " + re.escape(name) + r" \{(.*?)\}", WIT, re.S)
    assert body, f"no enum {name} in wit/policy.wit"
    lines = (line.strip() for line in body.group(1).splitlines())
    return [line.rstrip(",") for line in lines if line and not line.startswith("//")]


@pytest.mark.parametrize("wit, enum", [
    ("reason", Reason), ("transport-kind", TransportKind), ("action-kind", ActionKind),
    ("credential-state", CredentialState), ("event-kind", EventKind),
])
def test_each_enum_is_spelled_as_in_the_wit(wit: str, enum: type[Enum]) -> None:
    assert [e.value for e in enum] == wit_enum(wit)


def wit_record(name: str) -> list[str]:
    body = re.search(r"record " + re.escape(name) + r" \{(.*?)\n    \}", WIT, re.S)
    assert body, f"no record {name} in wit/policy.wit"
    lines = (line.strip() for line in body.group(1).splitlines())
    return [line.partition(":")[0] for line in lines if line and not line.startswith("//")]


@pytest.mark.parametrize("wit, record", [("delta", Delta), ("folded", Folded), ("unreadable-state", UnreadableState)])
def test_the_fleet_records_have_the_wits_fields_in_its_order(wit: str, record: type) -> None:
    """The fleet's results are decoded field by field by name: a field the WIT adds or renames
    (as 0.3.0 added `keep-until-ms`) must show here, not as a missing attribute at a save."""
    assert [f.name.replace("_", "-") for f in fields(record)] == wit_record(wit)


def test_secret_variable_names_match_the_shared_cases() -> None:
    cases = json.loads((ROOT / "tests" / "hosts" / "secret-env-names.json").read_text())["cases"]
    for case in cases:
        assert default_env_var(case["id"]) == case["env"], case["id"]


def test_host_messages_match_the_shared_templates() -> None:
    shared = json.loads((ROOT / "tests" / "hosts" / "host-messages.json").read_text())
    f = shared["fields"]
    rendered = {name: t.format(**f) for name, t in shared["templates"].items()}
    why = f["why"]
    route = fault.Route("p", "m", "c", 0)
    retry = fault.action("open", route, fault.HttpResponse(503, [], b""), None, why)
    gave_up = fault.action("open", route, fault.HttpResponse(400, [], b""), None, why)
    assert fault.FAIL_OPEN_DELAY_MS == f["delay_ms"]
    assert fault.final_error(why).message == rendered["fault-gave-up"]
    assert gave_up.classified.message == rendered["fault-not-classified"]
    assert retry.why == rendered["fault-retry"]
    assert fault.crash_loop_message(f["faults"], f["window_s"], why) == rendered["crash-loop"]
    assert fault.closed_message(f["faults"], f["window_s"], why) == rendered["closed"]
