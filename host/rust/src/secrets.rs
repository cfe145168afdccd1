//! The secrets behind credential ids. They stay on the host: the guest sees only ids and
//! fingerprints, and `send` attaches the secret to the outgoing request.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::types::CredentialInfo;

/// Credential id → secret. `Debug` never prints a secret.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, String>);

impl Secrets {
    /// Secrets supplied by the caller (tests, the demo, an app with its own vault).
    pub fn from_map(map: BTreeMap<String, String>) -> Self {
        Secrets(map)
    }

    /// Reads, for each credential of the config, the environment variable that holds its
    /// secret (`env`, else `FAILOVER_KEY_<ID>`). Unset or empty variables are left out, so the
    /// guest reports those credentials as missing. A config that does not parse yields no
    /// secrets: the guest names the bad field when the engine is created.
    pub fn from_env(config_json: &str) -> Self {
        let mut map = BTreeMap::new();
        for (id, var) in credential_env_vars(config_json) {
            if let Ok(secret) = std::env::var(&var) {
                if !secret.is_empty() {
                    map.insert(id, secret);
                }
            }
        }
        Secrets(map)
    }

    pub fn get(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }

    /// What the guest may know: each id with a fingerprint that changes when the secret does.
    pub fn credentials(&self) -> Vec<CredentialInfo> {
        self.0
            .iter()
            .map(|(id, secret)| CredentialInfo { id: id.clone(), fingerprint: fingerprint(secret) })
            .collect()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The first 16 hex digits of sha256(secret).
pub fn fingerprint(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The variable read for a credential without `env`: `FAILOVER_KEY_` + the id upper-cased,
/// every non-alphanumeric character replaced by `_` (`ds-1` → `FAILOVER_KEY_DS_1`).
pub fn default_env_var(id: &str) -> String {
    let tail: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("FAILOVER_KEY_{tail}")
}

/// `(credential id, variable)` for every credential in `providers.*.credentials[]`, read
/// leniently: anything not shaped like a credential is skipped here and reported by the guest.
fn credential_env_vars(config_json: &str) -> Vec<(String, String)> {
    let Ok(config) = serde_json::from_str::<serde_json::Value>(config_json) else {
        return Vec::new();
    };
    let Some(providers) = config.get("providers").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    providers
        .values()
        .filter_map(|p| p.get("credentials").and_then(|c| c.as_array()))
        .flatten()
        .filter_map(|c| {
            let id = c.get("id")?.as_str()?;
            let var = match c.get("env").and_then(|e| e.as_str()) {
                Some(var) => var.to_string(),
                None => default_env_var(id),
            };
            Some((id.to_string(), var))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_variable_names() {
        for (id, var) in [("ds-1", "FAILOVER_KEY_DS_1"), ("ali.key 2", "FAILOVER_KEY_ALI_KEY_2"), ("Ten1", "FAILOVER_KEY_TEN1")] {
            assert_eq!(default_env_var(id), var);
        }
    }

    #[test]
    fn fingerprint_is_16_hex_of_sha256() {
        // sha256("abc") = ba7816bf8f01cfea...
        assert_eq!(fingerprint("abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn env_vars_come_from_the_config() {
        let config = r#"{"providers": {
            "a": {"credentials": [{"id": "a-1", "env": "A_KEY"}, {"id": "a-2"}]},
            "b": {"credentials": "not a list"}
        }}"#;
        assert_eq!(
            credential_env_vars(config),
            vec![("a-1".to_string(), "A_KEY".to_string()), ("a-2".to_string(), "FAILOVER_KEY_A_2".to_string())]
        );
        assert!(credential_env_vars("{not json").is_empty());
    }

    #[test]
    fn debug_hides_secrets() {
        let s = Secrets::from_map([("k".to_string(), "sk-secret".to_string())].into());
        assert!(!format!("{s:?}").contains("sk-secret"));
    }

    /// Every host names a credential's variable the same way (`tests/hosts/secret-env-names.json`).
    #[test]
    fn secret_variable_names_match_the_shared_cases() {
        let shared: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/hosts/secret-env-names.json")).expect("shared cases");
        for case in shared["cases"].as_array().expect("cases") {
            let (id, env) = (case["id"].as_str().expect("id"), case["env"].as_str().expect("env"));
            assert_eq!(default_env_var(id), env, "credential id {id:?}");
        }
    }
}
