//! Body and header signals shared by all providers: OpenAI-style error codes (which most
//! OpenAI-compatible hosts copy) and phrases that mean the same thing wherever they appear.
//! They run after the family rules and before the generic status rules; each is guarded by the
//! statuses it can apply to, so a phrase in an unrelated error cannot misfire.

use super::evidence::Evidence;
use super::phrases::phrases;
use super::Hit;
use crate::types::Reason;

/// The phrase lists below, for the one-pass search (`phrases.rs`).
pub const PHRASES: &[&[&str]] = &[
    CONTENT_FILTER,
    CONTEXT_OVERFLOW,
    KEY_INVALID,
    BILLING,
    PERIOD_QUOTA,
    OVERLOADED,
    RATE_LIMIT,
    QUOTA,
    MODEL_NOT_FOUND,
    MODEL,
    MODEL_MISSING,
    TIMEOUT,
];

/// First match wins; the order settles overlaps (a per-day limit mentioning "rate limit" is a
/// quota; an overflow message mentioning `max_tokens` is an overflow).
pub fn classify(ev: &Evidence) -> Option<Hit> {
    let signals: [fn(&Evidence) -> Option<Hit>; 10] = [
        content_filter,
        context_overflow,
        auth_permanent,
        billing,
        period_quota,
        overloaded,
        rate_limit,
        quota,
        model_not_found,
        timeout,
    ];
    signals.iter().find_map(|s| s(ev)).or_else(|| retry_after_header(ev))
}

fn hit(reason: Reason, rule: &str) -> Option<Hit> {
    Some(Hit { reason, rule: rule.to_string() })
}

fn client(ev: &Evidence) -> bool {
    (400..500).contains(&ev.status)
}

const CONTENT_FILTER: &[&str] = &[
    "content management policy",
    "flagged as potentially violating",
    "violating our usage policy",
    "inappropriate content",
    "content filtering policies",
];

/// OpenAI/Azure `content_filter`, Azure's Responsible AI policy, OpenAI moderation, DashScope's
/// data inspection, a Gemini block reason or a `content_filter` finish reason in a 200 body.
fn content_filter(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &[
        "content_filter",
        "content_policy_violation",
        "responsibleaipolicyviolation",
        "datainspectionfailed",
        "data_inspection_failed",
    ];
    if ev.status >= 500 {
        return None;
    }
    if ev.code(CODES) || ev.has(phrases!(CONTENT_FILTER)) {
        return hit(Reason::ContentFilter, "body.content-filter");
    }
    None
}

const CONTEXT_OVERFLOW: &[&str] = &[
    "maximum context length",         // OpenAI, vLLM, DeepSeek, OpenRouter, Groq, Mistral
    "context length exceeded",
    "context_length_exceeded",
    "prompt is too long",             // Anthropic
    "exceed context limit",           // Anthropic, input + max_tokens
    "input is too long",              // Bedrock
    "exceeds the maximum number of tokens", // Gemini
    "input token count",              // Gemini, Vertex ("... but model only supports up to")
    "exceeds the available context size", // llama.cpp
    "exceeds the context window",
    "context size has been exceeded", // llama.cpp (older)
    "larger than the max context size", // llama.cpp (older)
    "longer than the maximum model length", // vLLM
    "longer than the model's context length", // sglang, Together
    "exceeds the model's context length",
    "requested token count exceeds",  // sglang
    "input length exceeds the context length", // Ollama
    "range of input length should be", // DashScope
    "maximum prompt length",          // xAI
    "`inputs` tokens + `max_new_tokens` must be", // TGI
    "`inputs` must have less than",   // TGI
    "reduce the length of the messages",
    "too large for model with",       // Mistral
];

/// The prompt does not fit the context window. A `max_tokens` complaint alone is not an
/// overflow ("max_tokens must be at least 1"); "input length and `max_tokens` exceed context
/// limit" is. Local servers phrase it their own way (vLLM, llama.cpp, sglang, Ollama, TGI).
fn context_overflow(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &[
        "context_length_exceeded",
        "exceed_context_size_error",
        "context_window_exceeded",
        "model_context_window_exceeded",
    ];
    if !(client(ev) || ev.status == 500) {
        return None;
    }
    if ev.code(CODES) || ev.has(phrases!(CONTEXT_OVERFLOW)) {
        return hit(Reason::ContextOverflow, "body.context-overflow");
    }
    None
}

const KEY_INVALID: &[&str] = &[
    "incorrect api key provided",
    "api key not valid",
    "api key expired",
    "api key has expired",
    "reported as leaked",
    "key has been revoked",
    "api key has been deleted",
    "account has been deactivated",
];

/// The response itself says the key is invalid, revoked, expired or leaked. A plain "invalid
/// API key" sentence stays `auth` (DeepSeek's "Authentication Fails, Your api key: ****abcd is
/// invalid"): the policy makes a second auth failure permanent itself, after one fresh retry.
/// OpenAI's `invalid_api_key` code ("Incorrect API key provided") counts as beyond doubt, and so
/// does every host that copies it.
fn auth_permanent(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &["invalid_api_key", "api_key_invalid", "account_deactivated"];
    if !matches!(ev.status, 400 | 401 | 403) {
        return None;
    }
    if ev.code(CODES) || ev.has(phrases!(KEY_INVALID)) {
        return hit(Reason::AuthPermanent, "body.key-invalid");
    }
    None
}

const BILLING: &[&str] = &[
    "exceeded your current quota, please check your plan and billing",
    "credit balance is too low",
    "insufficient balance",
    "insufficient credits",
    "requires more credits",
    "out of credits",
    "spend limit",
    "spending limit",
    "specified api usage limits",
    "not in good standing",
    "billing hard limit",
    "payment required",
];

/// Out of credit or over a spend limit: waiting seconds will not help, paying will.
fn billing(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &[
        "insufficient_quota",
        "billing_hard_limit_reached",
        "billing_not_active",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
        "arrearage",
        "billing_error",
        "payment_required",
    ];
    if !client(ev) {
        return None;
    }
    if ev.code(CODES) || ev.has(phrases!(BILLING)) {
        return hit(Reason::Billing, "body.billing");
    }
    None
}

const PERIOD_QUOTA: &[&str] = &[
    "per day",
    "perday",
    "per_day",
    "per-day",
    "(tpd)",
    "(rpd)",
    "daily",
    "per week",
    "weekly",
    "per month",
    "monthly",
    "quota will reset",
    "usage allocated quota exceeded",
    "free allocated quota exceeded",
];

/// Per day, week or month: a cooldown until the reset, even when it comes as an ordinary 429.
fn period_quota(ev: &Evidence) -> Option<Hit> {
    if ev.status == 429 && ev.has(phrases!(PERIOD_QUOTA)) {
        return hit(Reason::QuotaExhausted, "body.quota-period");
    }
    None
}

const OVERLOADED: &[&str] = &[
    "overloaded",
    "over capacity",
    "at capacity",
    "capacity exceeded",
    "no capacity available",
    "server is busy",
    "server busy",
    "too busy",
    "loading model",
    "not ready yet",
];

/// The provider is out of capacity for everyone, whatever the status it uses to say so
/// (OpenAI's old 429 "currently overloaded", Mistral's 429 "service tier capacity exceeded",
/// Gemini's 429 `MODEL_CAPACITY_EXHAUSTED`, Ollama's 503 "server busy").
fn overloaded(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &["overloaded_error", "model_capacity_exhausted", "capacity_exceeded"];
    if !matches!(ev.status, 429 | 500..=599) {
        return None;
    }
    if ev.code(CODES) || ev.has(phrases!(OVERLOADED)) {
        return hit(Reason::Overloaded, "body.overloaded");
    }
    None
}

const RATE_LIMIT: &[&str] = &[
    "per min",
    "perminute",
    "per_minute",
    "(tpm)",
    "(rpm)",
    "per second",
    "rate limit",
    "rate-limit",
    "too many requests",
    "throttl",
];

/// A per-minute or per-second limit, or plain throttling, also when a provider sends it as
/// 400/403 rather than 429.
fn rate_limit(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &[
        "rate_limit_exceeded",
        "rate_limit_error",
        "ratelimitexceeded",
        "rate_limited",
        "throttlingexception",
        "throttling",
        "throttling.ratequota",
    ];
    if !matches!(ev.status, 400 | 403 | 429) {
        return None;
    }
    if ev.code(CODES) || ev.has(phrases!(RATE_LIMIT)) {
        return hit(Reason::RateLimit, "body.rate-limit");
    }
    None
}

const QUOTA: &[&str] = &["quota"];

/// A 429 that names a quota and no shorter window: the quota is used up.
fn quota(ev: &Evidence) -> Option<Hit> {
    if ev.status == 429 && ev.has(phrases!(QUOTA)) {
        return hit(Reason::QuotaExhausted, "body.quota");
    }
    None
}

const MODEL_NOT_FOUND: &[&str] = &[
    "try pulling it first",           // Ollama
    "has been decommissioned",        // Groq
    "no endpoints found",             // OpenRouter
    "model not exist",                // DeepSeek
    "is not a valid model id",        // OpenRouter
    "model identifier is invalid",    // Bedrock
    "access to the model",            // Bedrock
];
const MODEL: &[&str] = &["model"];
// Only with the word "model": "not supported" is left out ("'max_tokens' is not supported
// with this model" is a bad request).
const MODEL_MISSING: &[&str] = &["does not exist", "not found", "unknown model", "invalid model"];

/// The model does not exist, is not deployed, or this key may not use it.
fn model_not_found(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &[
        "model_not_found",
        "model_decommissioned",
        "deploymentnotfound",
        "modelnotfound",
        "model.accessdenied",
    ];
    if !matches!(ev.status, 400 | 403 | 404 | 422) {
        return None;
    }
    if ev.code(CODES) || ev.has(phrases!(MODEL_NOT_FOUND)) || (ev.has(phrases!(MODEL)) && ev.has(phrases!(MODEL_MISSING))) {
        return hit(Reason::ModelNotFound, "body.model-not-found");
    }
    None
}

const TIMEOUT: &[&str] = &["timed out", "timeout", "deadline exceeded", "deadline_exceeded"];

/// A 5xx that says the upstream timed out.
fn timeout(ev: &Evidence) -> Option<Hit> {
    if matches!(ev.status, 500..=503) && ev.has(phrases!(TIMEOUT)) {
        return hit(Reason::Timeout, "body.timeout");
    }
    None
}

/// An unusual 4xx (not one the status table knows) that says when to come back is a rate limit.
fn retry_after_header(ev: &Evidence) -> Option<Hit> {
    let odd = client(ev) && !matches!(ev.status, 400..=404 | 408 | 413 | 422 | 429);
    if odd && (ev.header("retry-after").is_some() || ev.header("retry-after-ms").is_some()) {
        return hit(Reason::RateLimit, "header.retry-after");
    }
    None
}
