//! The engine's self-check over its (restored) state, run by a host before it switches to a
//! new policy.

use super::Engine;
use crate::env::Env;
use crate::snapshot::SCHEMA;
use crate::types::*;

impl Engine {
    /// A self-check over the state: every record belongs to the config and nothing is
    /// inconsistent. A host runs it after restoring state into a new policy, before switching.
    pub fn check(&self, env: &mut dyn Env) -> CheckReport {
        let now = env.now_ms();
        let mut findings = vec![format!("policy {} schema {SCHEMA}; chain of {} routes", crate::POLICY_VERSION, self.config.chain.len())];
        let mut ok = true;
        for (id, rec) in &self.pool.records {
            let owner = self.config.providers.values().find(|p| p.credentials.iter().any(|c| &c.id == id));
            if owner.is_none() {
                ok = false;
                findings.push(format!("credential {id} is in the state but not in the config"));
            }
            if rec.dead && rec.fingerprint.is_none() {
                findings.push(format!("credential {id} is dead but has no fingerprint: only a new fingerprint revives it"));
            }
        }
        if self.active_position as usize >= self.config.chain.len() {
            ok = false;
            findings.push(format!("active position {} is outside the chain", self.active_position));
        }
        let usable = (0..self.config.chain.len() as u32).filter(|p| self.chain(now).usable(*p, None).is_some()).count();
        findings.push(format!("{usable} of {} routes usable now", self.config.chain.len()));
        CheckReport { ok, findings }
    }
}
