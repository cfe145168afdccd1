//! The policy config (JSON): providers with their credential ids, the chain (primary plus
//! `fallback_providers`), and the retry, cooldown and budget numbers. Every error names the
//! JSON path of the bad field.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::classify::Family;
use crate::types::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    providers: BTreeMap<String, ProviderConfig>,
    primary: ChainEntry,
    #[serde(default)]
    fallback_providers: Vec<ChainEntry>,
    #[serde(default)]
    retry: RetryConfig,
    #[serde(default)]
    cooldown: CooldownConfig,
    #[serde(default)]
    health: HealthConfig,
    #[serde(default)]
    retry_budget: BudgetConfig,
    #[serde(default)]
    content_filter_fallback: bool,
    #[serde(default)]
    seed: Option<u64>,
    /// Wall time of one call, attempts and waits alike.
    #[serde(default = "default_deadline_ms")]
    deadline_ms: u64,
}

/// Long enough for a long reasoning answer, short enough that a caller is never left hanging.
fn default_deadline_ms() -> u64 {
    300_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Which classifier rules apply; inferred from the provider name when absent.
    #[serde(default)]
    pub family: Option<String>,
    pub base_url: String,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    pub credentials: Vec<CredentialConfig>,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Whether a stream cut after its first content may go on from a continuation request
    /// carrying the text so far as an assistant prefill (a provider that accepts that).
    #[serde(default)]
    pub resume: Option<ResumeConfig>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResumeConfig {
    /// Extra fields of the prefilled assistant message, e.g. `{"prefix": true}` (DeepSeek,
    /// Mistral) or `{"partial": true}` (Moonshot).
    #[serde(default)]
    pub message_fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub header: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub id: String,
    /// Read by hosts only: the environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Always the first available key: predictable, keeps spare keys fresh.
    #[default]
    FillFirst,
    /// Spread load over the available keys in turn.
    RoundRobin,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub connect_ms: u64,
    /// A whole answer (no stream): until its head, and between reads of its body.
    pub read_ms: u64,
    /// A streamed answer: from the send until the response head.
    pub headers_ms: u64,
    /// A streamed answer: from its head until the first event carrying content.
    pub first_content_ms: u64,
    /// A streamed answer after its first content, and any error body: the longest silence.
    pub idle_ms: u64,
    /// After a stream's finish signal (`finish_reason`, `message_delta` with a stop reason),
    /// how long its terminal event may take before the answer counts as complete anyway.
    pub finish_grace_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 5_000,
            read_ms: 120_000,
            headers_ms: 30_000,
            first_content_ms: 90_000,
            idle_ms: 30_000,
            finish_grace_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEntry {
    pub provider: String,
    pub model: String,
    /// Tokens; a context overflow only falls back to an entry with a larger window.
    #[serde(default)]
    pub context_window: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts in one call, across all routes and keys.
    pub max_attempts: u32,
    /// Total time the policy may ask a host to wait in one call.
    pub max_wait_ms: u64,
    /// Backoff retries of one route for provider-side failures before falling back.
    pub route_retries: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// A rate limit with no other key is waited out only when its retry-after is at most this.
    pub short_retry_after_ms: u64,
    /// Immediate fresh retries of a lone key after an auth failure before it is dead.
    pub auth_fresh_retries: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 24,
            max_wait_ms: 60_000,
            route_retries: 2,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 20_000,
            short_retry_after_ms: 10_000,
            auth_fresh_retries: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CooldownConfig {
    /// A rate-limited key with no retry-after rests this long.
    pub rate_limit_ms: u64,
    /// A quota-exhausted key with no known reset rests this long.
    pub quota_ms: u64,
    /// A billing failure rests the key this long unless the user replaces it sooner.
    pub billing_ms: u64,
}

impl Default for CooldownConfig {
    fn default() -> Self {
        CooldownConfig { rate_limit_ms: 60_000, quota_ms: 3_600_000, billing_ms: 21_600_000 }
    }
}

/// The circuit breaker of each provider/model route (see `health.rs`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Outcomes older than this leave the window.
    pub window_ms: u64,
    /// At most this many recent outcomes are kept.
    pub window_calls: u32,
    /// Provider-side failures in the window needed to open...
    pub min_failures: u32,
    /// ...and the share of the window's calls they must be.
    pub failure_rate: f64,
    /// The first break; each reopening multiplies it, up to the cap.
    pub break_ms: u64,
    pub break_multiplier: f64,
    pub max_break_ms: u64,
    /// A probe not answered by then frees the route for another probe.
    pub probe_timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            window_ms: 60_000,
            window_calls: 20,
            min_failures: 3,
            failure_rate: 0.5,
            break_ms: 15_000,
            break_multiplier: 1.5,
            max_break_ms: 300_000,
            probe_timeout_ms: 180_000,
        }
    }
}

/// The retry budget of each provider (see `budget.rs`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    pub max_tokens: f64,
    /// Tokens a success gives back.
    pub per_success: f64,
    /// Retries only while more tokens than this are left.
    pub threshold: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { max_tokens: 10.0, per_success: 0.1, threshold: 5.0 }
    }
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub providers: BTreeMap<String, Provider>,
    /// Position 0 is the primary.
    pub chain: Vec<ChainEntry>,
    pub retry: RetryConfig,
    pub cooldown: CooldownConfig,
    pub health: HealthConfig,
    pub retry_budget: BudgetConfig,
    pub content_filter_fallback: bool,
    pub seed: Option<u64>,
    pub deadline_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub family: Family,
    pub base_url: String,
    pub auth: AuthConfig,
    pub credentials: Vec<CredentialConfig>,
    pub strategy: Strategy,
    pub headers: Vec<(String, String)>,
    pub timeouts: Timeouts,
    pub resume: Option<ResumeConfig>,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), message: message.into() }
}

impl Config {
    pub fn parse(json: &str) -> Result<Config, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "config".to_string() } else { path };
            err(field, e.inner().to_string())
        })?;
        raw.validate()
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let mut providers = BTreeMap::new();
        let mut seen_ids: BTreeMap<String, String> = BTreeMap::new();
        for (name, p) in self.providers {
            let at = format!("providers.{name}");
            if name.trim().is_empty() {
                return Err(err("providers", "a provider name is empty"));
            }
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                return Err(err(format!("{at}.base_url"), format!("`{}` is not an http:// or https:// URL", p.base_url)));
            }
            let family = match &p.family {
                Some(f) => Family::parse(f)
                    .ok_or_else(|| err(format!("{at}.family"), format!("unknown provider family `{f}` (known: {})", Family::names())))?,
                None => Family::infer(&name),
            };
            if p.credentials.is_empty() {
                return Err(err(format!("{at}.credentials"), "lists no credential"));
            }
            let mut ids = Vec::new();
            for (i, c) in p.credentials.iter().enumerate() {
                if c.id.trim().is_empty() {
                    return Err(err(format!("{at}.credentials[{i}].id"), "is empty"));
                }
                if let Some(other) = seen_ids.insert(c.id.clone(), name.clone()) {
                    return Err(err(
                        format!("{at}.credentials[{i}].id"),
                        format!("`{}` is already a credential of provider `{other}`", c.id),
                    ));
                }
                ids.push(c.clone());
            }
            let auth = p.auth.clone().unwrap_or_else(|| family.default_auth());
            if auth.header.trim().is_empty() {
                return Err(err(format!("{at}.auth.header"), "is empty"));
            }
            providers.insert(
                name.clone(),
                Provider {
                    name,
                    family,
                    base_url: p.base_url.trim_end_matches('/').to_string(),
                    auth,
                    credentials: ids,
                    strategy: p.strategy,
                    headers: p.headers.into_iter().collect(),
                    timeouts: p.timeouts,
                    resume: p.resume,
                },
            );
        }
        let mut chain = vec![self.primary];
        chain.extend(self.fallback_providers);
        for (i, entry) in chain.iter().enumerate() {
            let at = if i == 0 { "primary".to_string() } else { format!("fallback_providers[{}]", i - 1) };
            if !providers.contains_key(&entry.provider) {
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                return Err(err(
                    format!("{at}.provider"),
                    format!("unknown provider `{}` (configured: {})", entry.provider, known.join(", ")),
                ));
            }
            if entry.model.trim().is_empty() {
                return Err(err(format!("{at}.model"), "is empty"));
            }
            if let Some(dup) = chain[..i].iter().position(|e| e.provider == entry.provider && e.model == entry.model) {
                return Err(err(at.to_string(), format!("repeats chain position {dup} ({}/{})", entry.provider, entry.model)));
            }
        }
        let r = &self.retry;
        if r.max_attempts == 0 {
            return Err(err("retry.max_attempts", "must be at least 1"));
        }
        if r.backoff_initial_ms > r.backoff_max_ms {
            return Err(err(
                "retry.backoff_initial_ms",
                format!("{} is above retry.backoff_max_ms {}", r.backoff_initial_ms, r.backoff_max_ms),
            ));
        }
        let h = &self.health;
        if h.min_failures == 0 || h.window_calls < h.min_failures {
            return Err(err("health.min_failures", format!("must be at least 1 and at most health.window_calls ({})", h.window_calls)));
        }
        if !(h.failure_rate > 0.0 && h.failure_rate <= 1.0) {
            return Err(err("health.failure_rate", format!("{} is not in (0, 1]", h.failure_rate)));
        }
        if !(h.break_multiplier >= 1.0 && h.break_multiplier <= 100.0) {
            return Err(err("health.break_multiplier", format!("{} is not in [1, 100]", h.break_multiplier)));
        }
        if h.break_ms == 0 || h.max_break_ms < h.break_ms {
            return Err(err(
                "health.max_break_ms",
                format!("{} must be at least health.break_ms ({}), which must be above 0", h.max_break_ms, h.break_ms),
            ));
        }
        if self.deadline_ms == 0 {
            return Err(err("deadline_ms", "must be above 0"));
        }
        for (name, p) in &providers {
            let t: &Timeouts = &p.timeouts;
            let limits = [
                ("connect_ms", t.connect_ms),
                ("read_ms", t.read_ms),
                ("headers_ms", t.headers_ms),
                ("first_content_ms", t.first_content_ms),
                ("idle_ms", t.idle_ms),
            ];
            if let Some((field, _)) = limits.iter().find(|(_, v)| *v == 0) {
                return Err(err(format!("providers.{name}.timeouts.{field}"), "must be above 0"));
            }
        }
        let b = &self.retry_budget;
        if !(b.max_tokens >= 1.0
            && b.max_tokens <= 1_000_000.0
            && b.threshold >= 0.0
            && b.threshold < b.max_tokens
            && b.per_success >= 0.0
            && b.per_success <= b.max_tokens)
        {
            return Err(err(
                "retry_budget",
                format!(
                    "needs 1 <= max_tokens <= 1000000, 0 <= threshold < max_tokens, 0 <= per_success <= max_tokens (got {}, {}, {})",
                    b.max_tokens, b.threshold, b.per_success
                ),
            ));
        }
        Ok(Config {
            providers,
            chain,
            retry: self.retry,
            cooldown: self.cooldown,
            health: self.health,
            retry_budget: self.retry_budget,
            content_filter_fallback: self.content_filter_fallback,
            seed: self.seed,
            deadline_ms: self.deadline_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{
        "providers": {
            "alibaba-coding-plan": {"base_url": "http://127.0.0.1:1/v1",
                "credentials": [{"id": "ali-1", "env": "ALIBABA_CODING_PLAN_API_KEY"}]},
            "tencent-token-plan": {"base_url": "http://127.0.0.1:2/v1",
                "credentials": [{"id": "ten-1"}]}
        },
        "primary": {"provider": "alibaba-coding-plan", "model": "qwen3.6-plus"},
        "fallback_providers": [{"provider": "tencent-token-plan", "model": "kimi2.5"}]
    }"#;

    #[test]
    fn parses_the_incident_config_with_defaults() {
        let c = Config::parse(BASE).unwrap();
        assert_eq!(c.chain.len(), 2);
        assert_eq!(c.retry.max_attempts, 24);
        assert_eq!(c.providers["alibaba-coding-plan"].auth.header, "Authorization");
        assert_eq!(c.providers["alibaba-coding-plan"].auth.prefix, "Bearer ");
    }

    #[test]
    fn errors_name_the_bad_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("\"tencent-token-plan\", \"model\": \"kimi2.5\"}]", "\"nope\", \"model\": \"kimi2.5\"}]", "fallback_providers[0].provider"),
            ("\"http://127.0.0.1:2/v1\"", "\"ftp://x\"", "providers.tencent-token-plan.base_url"),
            (
                "\"credentials\": [{\"id\": \"ten-1\"}]",
                "\"credentials\": [{\"id\": \"ali-1\"}]",
                "providers.tencent-token-plan.credentials[0].id",
            ),
            (
                "\"credentials\": [{\"id\": \"ten-1\"}]",
                "\"credentials\": [{\"id\": \"ten-1\", \"secret\": 1}]",
                "providers.tencent-token-plan.credentials[0]",
            ),
            ("\"model\": \"qwen3.6-plus\"", "\"model\": 7", "primary.model"),
        ];
        for (from, to, field) in cases {
            let json = BASE.replace(from, to);
            assert_ne!(json, BASE, "case {field} did not change the config");
            let e = Config::parse(&json).unwrap_err();
            assert!(e.field.starts_with(field), "expected field {field}, got {e}");
        }
        let e = Config::parse("{not json").unwrap_err();
        assert!(e.message.contains("key must be a string"), "{e}");
    }
}
