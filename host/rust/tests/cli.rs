//! The `failover` binary as a user runs it: output fields, batch order, exit codes and
//! one-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn failover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_failover")).args(args).output().expect("run failover")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("failover-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

const QUOTA: &str = r#"{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}"#;

#[test]
fn classify_prints_one_json_object_with_every_field() {
    let cases: &[(&[&str], &str)] = &[
        (&["--provider", "alibaba-coding-plan", "--status", "429", "--body", QUOTA], "quota-exhausted"),
        (&["--provider", "deepseek", "--status", "500"], "server-error"),
        (&["--provider", "openai", "--transport", "timeout"], "timeout"),
        (&["--provider", "openai", "--transport", "connection-refused"], "connection"),
    ];
    for (args, reason) in cases {
        let o = failover(&[&["classify"], *args].concat());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let v = json(stdout(&o).trim());
        assert_eq!(v["reason"], *reason, "{args:?}: {v}");
        for field in ["retryable", "retry_after_ms", "rotate_credential", "fall_back", "rule", "message"] {
            assert!(v.get(field).is_some(), "{args:?}: no `{field}` in {v}");
        }
    }
}

#[test]
fn classify_reads_headers_and_body_files() {
    let body = scratch("body.json", br#"{"error":{"message":"Rate limit reached for requests"}}"#);
    let o = failover(&[
        "classify",
        "--provider",
        "openai",
        "--status",
        "429",
        "--header",
        "Retry-After: 7",
        "--body-file",
        body.to_str().expect("utf-8 path"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(stdout(&o).trim());
    assert_eq!(v["retry_after_ms"], 7000, "{v}");
    let o = failover(&["classify", "--provider", "openai", "--status", "400"]);
    assert_eq!(json(stdout(&o).trim())["retry_after_ms"], Value::Null);
}

#[test]
fn batch_answers_every_line_in_order_and_echoes_ids() {
    let lines = [
        format!(r#"{{"id": "a", "provider": "alibaba-coding-plan", "status": 429, "body": {QUOTA}, "expect": "ignored"}}"#),
        r#"{"provider": "openai", "transport": "timeout", "source": "ignored"}"#.to_string(),
        r#"{"id": 3, "provider": "openai", "status": 500, "headers": {"content-type": "text/html"}, "body_base64": "/w=="}"#.to_string(),
        String::new(),
        r#"{"id": "d", "provider": "deepseek", "status": 401, "body": "Authentication Fails"}"#.to_string(),
    ];
    let file = scratch("batch.jsonl", lines.join("\n").as_bytes());
    let o = failover(&["classify", "--batch", file.to_str().expect("utf-8 path")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: Vec<Value> = stdout(&o).lines().map(json).collect();
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(out[0]["id"], "a");
    assert_eq!(out[0]["reason"], "quota-exhausted");
    assert!(out[1].get("id").is_none());
    assert_eq!(out[1]["reason"], "timeout");
    assert_eq!(out[2]["id"], 3);
    assert_eq!(out[3]["id"], "d");
}

#[test]
fn a_malformed_batch_line_is_named() {
    let file = scratch("bad-batch.jsonl", b"{\"provider\": \"openai\", \"status\": 500}\n{\"provider\": \"openai\"}\n");
    let o = failover(&["classify", "--batch", file.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
}

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs")
}

/// One line on stderr, exit code 2, mentioning every `want`.
fn assert_one_line_error(o: &Output, want: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stdout: {} stderr: {err}", stdout(o));
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for w in want {
        assert!(err.contains(w), "want `{w}` in: {err}");
    }
}

#[test]
fn config_problems_are_one_line_naming_the_field() {
    let good = std::fs::read_to_string(config_dir().join("demo-init-time-cooldown.json")).expect("demo config");
    let cases = [
        ("{not json", "config"),
        (&*good.replace("\"model\": \"kimi2.5\"", "\"model\": 7"), "fallback_providers[0].model"),
        (&*good.replace("{\"provider\": \"tencent-token-plan\"", "{\"provider\": \"nope\""), "fallback_providers[0].provider"),
    ];
    for (config, field) in cases {
        let path = scratch("config.json", config.as_bytes());
        let o = failover(&["check", "--config", path.to_str().expect("utf-8 path")]);
        assert_one_line_error(&o, &[field]);
    }
}

#[test]
fn a_snapshot_from_a_newer_schema_is_refused() {
    let config = config_dir().join("demo-expired-key.json");
    let state = scratch("state.json", br#"{"schema": 999}"#);
    let o = failover(&["check", "--config", config.to_str().expect("utf-8"), "--state", state.to_str().expect("utf-8")]);
    assert_one_line_error(&o, &["schema"]);
}

#[test]
fn an_unusable_policy_file_is_one_line() {
    let garbage = scratch("garbage.wasm", b"not a component");
    let missing = std::env::temp_dir().join("failover-no-such-policy.wasm");
    for path in [garbage, missing] {
        let o = failover(&["--policy", path.to_str().expect("utf-8"), "classify", "--provider", "x", "--status", "500"]);
        assert_one_line_error(&o, &[path.to_str().expect("utf-8")]);
    }
}

#[test]
fn simulate_passes_and_fails_with_exit_codes() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fallback-and-restart.json");
    let o = failover(&["simulate", scenario.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("+61:00.000"), "{}", stdout(&o));

    let broken = std::fs::read_to_string(&scenario).expect("scenario").replace("\"attempts\": 2", "\"attempts\": 9");
    let path = scratch("broken.json", broken.as_bytes());
    let o = failover(&["simulate", path.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("attempts: expected 9, got 2"), "{}", stdout(&o));
}

#[test]
fn demo_reproduces_both_incidents_and_an_outage() {
    let o = failover(&["demo"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("using fallback 1/1 tencent-token-plan/kimi2.5"), "{out}");
    assert!(out.contains("the primary received 0 request(s) during tick 2"), "{out}");
    assert!(out.contains("key appears invalid or expired"), "{out}");
    assert!(out.contains("2 attempts, 0 ms of (virtual) waiting"), "{out}");
    assert!(out.contains("[circuit-opened] route primary-gateway/big-model circuit opened for 15s"), "{out}");
    assert!(out.contains("[circuit-closed] route primary-gateway/big-model circuit closed"), "{out}");
}

#[test]
fn failover_profile_names_the_policy_functions_for_perf_or_is_refused() {
    let classify = ["classify", "--provider", "deepseek", "--status", "500"];
    let child = Command::new(env!("CARGO_BIN_EXE_failover"))
        .args(classify)
        .env("FAILOVER_PROFILE", "perfmap")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run failover");
    // wasmtime writes it there whatever TMPDIR says.
    let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    let out = child.wait_with_output().expect("exit");
    assert!(out.status.success(), "{}", stderr(&out));
    let symbols = std::fs::read_to_string(&map).unwrap_or_else(|e| panic!("{}: {e}", map.display()));
    let _ = std::fs::remove_file(&map);
    assert!(symbols.lines().any(|l| l.contains("failover_policy") && l.contains("classify")), "{}", &symbols[..symbols.len().min(400)]);

    let o = Command::new(env!("CARGO_BIN_EXE_failover")).args(classify).env("FAILOVER_PROFILE", "vtune").output().expect("run failover");
    assert_one_line_error(&o, &["FAILOVER_PROFILE", "vtune", "perfmap"]);
}
