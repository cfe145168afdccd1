//! Runs every case of `tests/corpus/*.jsonl` through the native classifier, prints the accuracy
//! per file and per split and every mismatch. The rules were written from the cases without a
//! `split`, so those must all pass; the `"split": "held-out"` cases were written before the rules
//! and measure how they generalize: at least `HELD_OUT_MIN` of them must pass.

use std::path::PathBuf;

use serde_json::Value;

use super::{classify, Family};
use crate::types::{Failure, Header, HttpResponse, Reason, TransportFailure, TransportKind};

/// The share of held-out cases that must pass (issue 19's bar).
const HELD_OUT_MIN: f64 = 0.95;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

/// One corpus line as a failure; `Err` says why the line is malformed.
fn failure_of(case: &Value) -> Result<Failure, String> {
    if let Some(kind) = case.get("transport").and_then(Value::as_str) {
        let kind = TransportKind::parse(kind).ok_or(format!("unknown transport kind {kind}"))?;
        let message = case.get("message").and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(Failure::Transport(TransportFailure { kind, message }));
    }
    let status = case.get("status").and_then(Value::as_u64).ok_or("no status")?;
    let status = u16::try_from(status).map_err(|_| "status out of range")?;
    let headers = match case.get("headers") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| Ok(Header { name: k.clone(), value: v.as_str().ok_or("header value not a string")?.to_string() }))
            .collect::<Result<Vec<_>, String>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err("headers must be an object".into()),
    };
    let body = match (case.get("body"), case.get("body_base64")) {
        (_, Some(Value::String(b64))) => base64(b64)?,
        (Some(Value::String(s)), _) => s.as_bytes().to_vec(),
        (None | Some(Value::Null), _) => Vec::new(),
        (Some(v), _) => serde_json::to_vec(v).map_err(|e| e.to_string())?,
    };
    Ok(Failure::Http(HttpResponse { status, headers, body }))
}

/// Standard base64 (RFC 4648 with padding), enough for the corpus's invalid-UTF-8 bodies.
fn base64(s: &str) -> Result<Vec<u8>, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).ok_or(format!("bad base64 byte {c}"))?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[test]
fn corpus_cases_classify_as_expected() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let (mut total, mut passed, mut failures) = (0, 0, Vec::new());
    // (cases, passed) for the rule-writing split and the held-out split.
    let (mut rules, mut held) = ((0, 0), (0, 0));
    let mut ids = std::collections::BTreeSet::new();
    for file in &files {
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_string();
        let text = std::fs::read_to_string(file).expect("corpus file is UTF-8");
        let (mut n, mut ok) = (0, 0);
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            n += 1;
            let at = format!("{name}.jsonl:{}", i + 1);
            let case: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{at}: not JSON: {e}"));
                    continue;
                }
            };
            let id = case.get("id").and_then(Value::as_str).unwrap_or("?").to_string();
            if !ids.insert(id.clone()) {
                failures.push(format!("{at} {id}: duplicate id"));
            }
            let provider = case.get("provider").and_then(Value::as_str).unwrap_or("");
            let expect = case.get("expect").cloned().unwrap_or(Value::Null);
            let want_reason = expect.get("reason").and_then(Value::as_str).and_then(Reason::parse);
            let want_wait = expect.get("retry_after_ms").and_then(Value::as_u64);
            let (Some(want_reason), Ok(failure)) = (want_reason, failure_of(&case)) else {
                failures.push(format!("{at} {id}: malformed case ({:?})", failure_of(&case).err()));
                continue;
            };
            let held_out = case.get("split").and_then(Value::as_str) == Some("held-out");
            let split = if held_out { &mut held } else { &mut rules };
            split.0 += 1;
            let got = classify(Family::infer(provider), &failure);
            if got.reason == want_reason && got.retry_after_ms == want_wait {
                ok += 1;
                split.1 += 1;
            } else {
                failures.push(format!(
                    "{at} {id}{}: want {} / {:?}, got {} / {:?} (rule {}, message {:?})",
                    if held_out { " (held-out)" } else { "" },
                    want_reason.as_str(),
                    want_wait,
                    got.reason.as_str(),
                    got.retry_after_ms,
                    got.rule,
                    got.message
                ));
            }
        }
        println!("{name:>14}: {ok}/{n}");
        total += n;
        passed += ok;
    }
    println!("{:>14}: {passed}/{total} ({} files)", "total", files.len());
    println!("{:>14}: {}/{}", "rule-writing", rules.1, rules.0);
    println!("{:>14}: {}/{} ({:.1}%)", "held-out", held.1, held.0, 100.0 * held.1 as f64 / held.0.max(1) as f64);
    for f in &failures {
        println!("MISMATCH {f}");
    }
    assert!(total >= 400, "the corpus has {total} cases, fewer than 400");
    let malformed = failures.iter().filter(|f| f.contains("malformed") || f.contains("duplicate") || f.contains("not JSON"));
    assert_eq!(malformed.count(), 0, "malformed corpus lines (listed above)");
    assert_eq!(rules.1, rules.0, "rule-writing cases must all pass (mismatches listed above)");
    assert!(held.1 as f64 >= HELD_OUT_MIN * held.0 as f64, "held-out accuracy below {HELD_OUT_MIN} (mismatches listed above)");
}
