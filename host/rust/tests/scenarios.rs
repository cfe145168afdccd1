//! Every scenario in tests/scenarios (and the runner's own in tests/data) replayed through the
//! component in virtual time, plus what the runner reports when something differs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use failover_host::scenario::{self, Golden, ScenarioError};
use failover_host::Policy;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| Policy::load_default().expect("the built-in policy loads"))
}

fn dir(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    path.canonicalize().unwrap_or(path)
}

/// Runs every scenario of `dir` and fails with every report that did not pass.
fn run_all(dir: &Path) {
    let reports = scenario::run_dir(policy(), dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!reports.is_empty(), "{} holds no *.json scenario", dir.display());
    let failures: Vec<String> = reports.iter().flat_map(|r| r.failures.clone()).collect();
    let failed = reports.iter().filter(|r| !r.passed()).count();
    assert!(failures.is_empty(), "{failed} of {} scenarios failed:\n{}", reports.len(), failures.join("\n"));
}

#[test]
fn project_scenarios_pass() {
    run_all(&dir("../../tests/scenarios"));
}

#[test]
fn host_runner_scenarios_pass() {
    run_all(&dir("tests/data"));
}

/// A scratch copy of the runner's own scenario, optionally with a golden file.
fn scratch(name: &str, edit: impl Fn(String) -> String, golden: Option<String>) -> PathBuf {
    let root = std::env::temp_dir().join(format!("failover-host-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("golden")).expect("temp dir");
    let source = std::fs::read_to_string(dir("tests/data/fallback-and-restart.json")).expect("scenario");
    let path = root.join("s.json");
    std::fs::write(&path, edit(source)).expect("write scenario");
    if let Some(g) = golden {
        std::fs::write(root.join("golden/s.jsonl"), g).expect("write golden");
    }
    path
}

fn own_golden() -> String {
    std::fs::read_to_string(dir("tests/data/golden/fallback-and-restart.jsonl")).expect("golden")
}

#[test]
fn a_missing_golden_file_fails_with_a_bless_hint() {
    let path = scratch("missing", |s| s, None);
    let report = scenario::run(policy(), &path, Golden::Compare).expect("runs");
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(report.failures[0].contains("no golden trace") && report.failures[0].contains("--bless"), "{:?}", report.failures);
}

#[test]
fn bless_writes_a_golden_file_that_then_compares_equal() {
    let path = scratch("bless", |s| s, None);
    assert!(scenario::run(policy(), &path, Golden::Bless).expect("runs").passed());
    assert!(scenario::run(policy(), &path, Golden::Compare).expect("runs").passed());
}

#[test]
fn a_changed_trace_names_the_line() {
    let golden = own_golden().replacen("\"outcome\":\"429\"", "\"outcome\":\"503\"", 1);
    let path = scratch("changed", |s| s, Some(golden));
    let report = scenario::run(policy(), &path, Golden::Compare).expect("runs");
    let text = report.failures.join("\n");
    assert!(text.contains("line 1:") && text.contains("\"outcome\":\"503\""), "{text}");
}

#[test]
fn failed_expectations_name_scenario_step_and_difference() {
    let cases = [
        ("\"attempts\": 2", "\"attempts\": 5", "step 0 (call): attempts: expected 5, got 2"),
        (
            "\"route\": {\"provider\": \"tencent-token-plan\", \"credential\": \"ten-1\"}",
            "\"route\": {\"provider\": \"nope\"}",
            "step 3 (select): selected route provider: expected `nope`",
        ),
        (
            "\"not_sent\": [\"alibaba-coding-plan\"]",
            "\"not_sent\": [\"tencent-token-plan#ten-1\"]",
            "step 4 (call): expected nothing sent to tencent-token-plan#ten-1",
        ),
        ("\"elapsed_ms\": 0", "\"elapsed_ms\": 7", "step 0 (call): elapsed: expected 7 ms, got 0 ms"),
        ("{\"kind\": \"primary-restored\"}", "{\"kind\": \"gave-up\"}", "step 6 (select): expected an event of kind `gave-up`"),
    ];
    for (from, to, want) in cases {
        let path = scratch(
            "expect",
            |s| {
                assert!(s.contains(from), "{from}");
                s.replace(from, to)
            },
            Some(own_golden()),
        );
        let report = scenario::run(policy(), &path, Golden::Compare).expect("runs");
        let text = report.failures.join("\n");
        assert!(text.contains("scenario `fallback-and-restart`") && text.contains(want), "want `{want}` in:\n{text}");
    }
}

#[test]
fn a_malformed_scenario_names_the_field() {
    let cases = [
        ("\"advance_ms\": 60000", "\"advance_ms\": 60000, \"select\": {}", "steps[1]"),
        ("\"elapsed_ms\": 0", "\"elapsed_msx\": 0", "steps[0].expect"),
        ("{\"status\": 429", "{\"transport\": \"sleepy\"", "providers.alibaba-coding-plan"),
    ];
    for (from, to, field) in cases {
        let path = scratch("malformed", |s| s.replacen(from, to, 1), None);
        match scenario::run(policy(), &path, Golden::Compare) {
            Err(ScenarioError::Malformed { field: got, .. }) => assert!(got.starts_with(field), "want {field}, got {got}"),
            other => panic!("want a malformed-scenario error at {field}, got {other:?}"),
        }
    }
}
