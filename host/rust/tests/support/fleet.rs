//! What the file and Redis store tests share: eight writers, each recording its own cooldowns and
//! dead keys, whose final state must equal the merge of every update.

use anyhow::{anyhow, Result};
use failover_host::Instance;
use serde_json::json;

pub const WRITERS: u64 = 8;
pub const UPDATES: u64 = 12;

/// Writer `w`'s update `u`: its own keys cooling down and, every third, one dead.
pub fn update(w: u64, u: u64) -> String {
    let id = format!("w{w}-k{}", u % 4);
    json!({"schema": 2, "saved_at_ms": u, "credentials": {id: {
        "cooldown_until_ms": 1_000 * (u + 1), "cooldown_reason": "quota-exhausted",
        "dead": u.is_multiple_of(3), "auth_failures": 0, "fingerprint": format!("fp-{w}")}},
        "budgets": {format!("p{w}"): 1000 * (UPDATES - u)}})
    .to_string()
}

pub fn merged(inst: &mut Instance, a: &str, b: &str) -> Result<String> {
    inst.merge(a, b)?.map_err(|e| anyhow!("merge: {}", e.message))
}

/// Writer `w` records every update and saves after each, like an engine: its state only grows,
/// so a skipped write (`save` answering `Ok(false)`) is carried by the next one.
pub fn write_all(inst: &mut Instance, w: u64, mut save: impl FnMut(&mut Instance, &str) -> Result<bool>) -> Result<()> {
    let mut ours = update(w, 0);
    let mut written = false;
    for u in 0..UPDATES {
        ours = merged(inst, &ours, &update(w, u))?;
        written = save(inst, &ours)?;
    }
    while !written {
        written = save(inst, &ours)?;
    }
    Ok(())
}
