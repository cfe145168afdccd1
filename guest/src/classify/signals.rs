//! Body and header signals shared by all providers: OpenAI-style error codes (which most
//! OpenAI-compatible hosts copy) and phrases that mean the same thing wherever they appear, in
//! the languages providers answer in. They run after the family rules and before the generic
//! status rules (billing and usage windows, in `limits.rs`, run before the family rules); each
//! is guarded by the statuses it can apply to, so a phrase in an unrelated error cannot misfire.
//! An error inside a 2xx (`Evidence::in_band`) passes the guards of the status its type names.

use super::evidence::Evidence;
use super::limits;
use super::phrases::phrases;
use super::Hit;
use crate::types::Reason;

/// The phrase lists below, for the one-pass search (`phrases.rs`).
pub const PHRASES: &[&[&str]] =
    &[CONTENT_FILTER, CONTEXT_OVERFLOW, KEY_INVALID, OVERLOADED, RATE_LIMIT, MODEL_NOT_FOUND, MODEL, MODEL_MISSING, TIMEOUT];

/// First match wins; the order settles overlaps (an overflow message mentioning `max_tokens`
/// is an overflow; high traffic on a 429 is capacity, not the key's limit).
pub fn classify(ev: &Evidence) -> Option<Hit> {
    let signals: [fn(&Evidence) -> Option<Hit>; 9] = [
        content_filter,
        context_overflow,
        auth_permanent,
        limits::quota_codes,
        overloaded,
        rate_limit,
        limits::quota,
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

/// Codes that contain any of these words (`RateLimitExceeded.EndpointRPMExceeded`,
/// `engine_overloaded_error`, `OutputTextSensitiveContentDetected`).
fn code_word(ev: &Evidence, words: &[&str]) -> bool {
    ev.codes.iter().any(|c| words.iter().any(|w| c.contains(w)))
}

const CONTENT_FILTER: &[&str] = &[
    "content management policy",
    "flagged as potentially violating",
    "violating our usage policy",
    "inappropriate content",
    "content filtering policies",
    "sensitive information", // Volcengine
    "sensitive content",
    "new_sensitive",       // MiniMax 1026/1027 ("input new_sensitive")
    "high risk",           // Moonshot
    "content exists risk", // DeepSeek
    "敏感",                // sensitive (Zhipu 1301, Hunyuan, DashScope)
    "不安全",              // unsafe
];

/// OpenAI/Azure `content_filter`, Azure's Responsible AI policy, OpenAI moderation and the
/// Responses API's `invalid_prompt`, DashScope's data inspection, a Gemini block reason or a
/// `content_filter` finish reason in a 200 body, sensitive-content refusals in English and Chinese.
fn content_filter(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &[
        "content_filter",
        "content_policy_violation",
        "responsibleaipolicyviolation",
        "datainspectionfailed",
        "data_inspection_failed",
        "invalid_prompt",
    ];
    if ev.status >= 500 && !ev.in_band {
        return None;
    }
    if ev.code(CODES) || code_word(ev, &["sensitive"]) || ev.has(phrases!(CONTENT_FILTER)) {
        return hit(Reason::ContentFilter, "body.content-filter");
    }
    None
}

const CONTEXT_OVERFLOW: &[&str] = &[
    "maximum context length", // OpenAI, vLLM, DeepSeek, OpenRouter, Groq, Mistral
    "context length exceeded",
    "context_length_exceeded",
    "prompt is too long",                   // Anthropic
    "exceed context limit",                 // Anthropic, input + max_tokens
    "input is too long",                    // Bedrock
    "exceeds the maximum number of tokens", // Gemini
    "input token count",                    // Gemini, Vertex ("... but model only supports up to")
    "exceeds the available context size",   // llama.cpp
    "exceeds the context window",
    "context size has been exceeded",         // llama.cpp (older)
    "larger than the max context size",       // llama.cpp (older)
    "longer than the maximum model length",   // vLLM
    "longer than the model's context length", // sglang, Together
    "exceeds the model's context length",
    "requested token count exceeds",              // sglang
    "input length exceeds the context length",    // Ollama
    "range of input length should be",            // DashScope
    "maximum prompt length",                      // xAI
    "`inputs` tokens + `max_new_tokens` must be", // TGI
    "`inputs` must have less than",               // TGI
    "reduce the length of the messages",
    "too large for model with", // Mistral
    "context window",           // OpenAI Responses, DeepInfra
    "exceed context",
    "maximum context",
    "model token limit",               // Moonshot
    "larger context length",           // LM Studio
    "greater than the context length", // LM Studio
    "size limit exceeded by",          // Cohere
    "max_seq_len",                     // SiliconFlow
    "max length of current question",  // Baidu Qianfan
    "超长",                            // too long (Zhipu 1261 "Prompt 超长")
    "上下文长度",                      // context length
];

/// The prompt does not fit the context window. A `max_tokens` complaint alone is not an
/// overflow ("max_tokens must be at least 1"); "input length and `max_tokens` exceed context
/// limit" is. Local servers phrase it their own way (vLLM, llama.cpp, sglang, Ollama, TGI).
fn context_overflow(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] =
        &["context_length_exceeded", "exceed_context_size_error", "context_window_exceeded", "model_context_window_exceeded"];
    // Not a 429: a token count there is a per-minute token limit (Groq, Cerebras).
    if !((client(ev) && ev.status != 429) || ev.status == 500 || ev.in_band) {
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

const OVERLOADED: &[&str] = &[
    "overload",     // "overloaded", Volcengine "server overload"
    "high traffic", // Cerebras, DeepSeek
    "high load",    // MiniMax
    "繁忙",         // busy
    "访问量过大",   // too much traffic (Zhipu 1312)
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
/// Gemini's 429 `MODEL_CAPACITY_EXHAUSTED`, Ollama's 503 "server busy", Cerebras's 429
/// `queue_exceeded`, Moonshot's `engine_overloaded_error`).
fn overloaded(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &["model_capacity_exhausted", "capacity_exceeded", "queue_exceeded"];
    if !matches!(ev.status, 429 | 500..=599) {
        return None;
    }
    if ev.code(CODES) || code_word(ev, &["overload"]) || ev.has(phrases!(OVERLOADED)) {
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
    "concurrency", // Zhipu 1302, W&B
    "rpm limit",   // SiliconFlow
    "tpm limit",
    "qps",  // Baidu Qianfan
    "并发", // concurrency
    "频率", // frequency (Zhipu 1303, MiniMax 1002)
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
    let named = code_word(ev, &["ratelimit", "rate_limit", "toomanyrequests", "too_many_requests"]);
    if ev.code(CODES) || named || ev.has(phrases!(RATE_LIMIT)) {
        return hit(Reason::RateLimit, "body.rate-limit");
    }
    None
}

const MODEL_NOT_FOUND: &[&str] = &[
    "try pulling it first",        // Ollama
    "has been decommissioned",     // Groq
    "no endpoints found",          // OpenRouter
    "model not exist",             // DeepSeek
    "is not a valid model id",     // OpenRouter
    "model identifier is invalid", // Bedrock
    "access to the model",         // Bedrock
    "failed to load model",        // LM Studio
    "no models loaded",            // LM Studio
    "模型不存在",                  // model does not exist (Zhipu 1211)
];
const MODEL: &[&str] = &["model"];
// Only with the word "model": "not supported" is left out ("'max_tokens' is not supported
// with this model" is a bad request).
const MODEL_MISSING: &[&str] = &["does not exist", "not found", "unknown model", "invalid model"];

/// The model does not exist, is not deployed, or this key may not use it.
fn model_not_found(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &["model_not_found", "model_decommissioned", "deploymentnotfound", "modelnotfound", "model.accessdenied"];
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
