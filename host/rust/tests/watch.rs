//! `failover watch` as a user runs it: it swaps in each new policy written to the watched path
//! and prints every swap or refusal, keeping the running policy when a swap is refused.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{broken, CONFIG};

/// Replaces the file in one step, as a deploy would, so the watcher never reads half of it.
fn publish(path: &Path, bytes: &[u8]) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).expect("write");
    std::fs::rename(&partial, path).expect("rename");
}

#[test]
fn watch_swaps_each_new_policy_and_refuses_one_that_rejects_the_state() {
    let dir = std::env::temp_dir().join(format!("failover-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (policy, config) = (dir.join("policy.wasm"), dir.join("config.json"));
    std::fs::write(&policy, failover_host::DEFAULT_POLICY).expect("policy");
    std::fs::write(&config, CONFIG).expect("config");
    let (schema, trap) = (broken("schema"), broken("trap"));

    let mut child = Command::new(env!("CARGO_BIN_EXE_failover"))
        .arg("watch")
        .arg("--policy")
        .arg(&policy)
        .arg("--config")
        .arg(&config)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(["--interval-ms", "20", "--swaps", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run failover watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // A bound on waiting, so a watcher that never answers fails the test instead of hanging it.
    let next = || lines.recv_timeout(Duration::from_secs(60)).expect("a line from failover watch");

    let first = next();
    assert!(first.starts_with("watching ") && first.contains("schema 2"), "{first}");
    publish(&policy, &schema);
    let refused = next();
    assert!(refused.starts_with("refused: ") && refused.contains("state.schema"), "{refused}");
    assert!(refused.contains("still running policy 0."), "{refused}");
    publish(&policy, &trap);
    let swapped = next();
    assert!(swapped.starts_with("swapped: ") && swapped.contains("-> broken-"), "{swapped}");
    assert!(swapped.ends_with("(baseline build, optimising in the background)"), "{swapped}");
    // The last swap's tier-up belongs to it: watch says how it ended before exiting.
    let tiered = next();
    assert!(tiered.starts_with("tiered up: policy broken-") && tiered.contains("optimised build"), "{tiered}");
    assert!(child.wait().expect("exit").success());
    let _ = std::fs::remove_dir_all(&dir);
}
