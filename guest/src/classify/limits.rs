//! Out of money or out of a usage window, said the same way by every provider: billing (a
//! balance, credits, a spend limit, an expired plan) and the usage windows of coding and
//! subscription plans (5-hour, daily, weekly, monthly). `decisive` runs before the family rules:
//! a provider's own type for the response (Anthropic's `rate_limit_error`, Kimi's
//! `access_terminated_error`, DashScope's per-minute `insufficient_quota`) does not outweigh
//! these words. `quota_codes` and `quota` run after them, since families read those codes
//! their own way.

use super::evidence::Evidence;
use super::phrases::phrases;
use super::Hit;
use crate::types::Reason;

/// The phrase lists below, for the one-pass search (`phrases.rs`).
pub const PHRASES: &[&[&str]] = &[BALANCE, WINDOW, QUOTA_WORDS, QUOTA];

pub fn decisive(ev: &Evidence) -> Option<Hit> {
    billing(ev).or_else(|| usage_window(ev))
}

fn hit(reason: Reason, rule: &str) -> Option<Hit> {
    Some(Hit { reason, rule: rule.to_string() })
}

const BALANCE: &[&str] = &[
    "credit balance is too low", // Anthropic
    "api usage limits",          // Anthropic's workspace spend limits
    "insufficient balance",      // DeepSeek, Moonshot, MiniMax
    "balance is insufficient",
    "not enough balance", // Novita
    "balance is too low", // DeepInfra
    "insufficient credits",
    "insufficient funds",    // Hyperbolic
    "requires more credits", // OpenRouter
    "out of credits",
    "all available credits", // xAI
    "no remaining credits",  // Cerebras
    "credit limit exceeded", // Together
    "spend limit",
    "spending limit",
    "not in good standing",
    "billing hard limit",
    "payment required",
    "past due", // Ollama's subscription
    "overdue",  // DashScope, Volcengine
    "recharge", // Moonshot
    "plan has expired",
    "subscription has expired",
    "余额不足",   // balance insufficient
    "欠费",       // in arrears (Zhipu 1113)
    "套餐已到期", // plan expired (Zhipu 1309)
];

/// Out of credit, over a spend limit or behind on payment: waiting will not help, paying will.
/// Any status: MiniMax answers its "insufficient balance (1008)" with a 500.
fn billing(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &[
        "billing_hard_limit_reached",
        "billing_not_active",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
        "arrearage",
        "billing_error",
        "payment_required",
        "insufficient_balance",
        "insufficient_balance_error",
        "not_enough_balance",
    ];
    if ev.status < 400 && !ev.in_band {
        return None;
    }
    if ev.code(CODES) || ev.has(phrases!(BALANCE)) {
        return hit(Reason::Billing, "body.billing");
    }
    None
}

const WINDOW: &[&str] = &[
    "usage limit", // Codex, Z.ai, Kimi, MiniMax, Ollama Cloud
    "usage quota", // Qwen coding plan
    "5-hour",
    "5 hour",
    "7-day",
    "per day",
    "perday", // Gemini quotaId
    "per_day",
    "per-day", // OpenRouter free-models-per-day
    "(tpd)",
    "(rpd)",
    "daily",
    "per week",
    "weekly",
    "per month",
    "monthly",
    "quota will reset",
    "limit will reset",
    "quota resets",
    "limit resets",
    "usage allocated quota exceeded", // DashScope coding plan
    "free allocated quota exceeded",
    "使用上限",   // usage cap (Zhipu 1308, 1310)
    "额度已用完", // allowance used up
    "今日",       // today's (Zhipu 1304)
    "本月",       // this month's
    "每周",       // weekly
    "每月",       // monthly
    "每日",       // daily
];

/// A usage window is used up (a coding or subscription plan's 5 hours, a day, a week, a
/// month): the key rests until the window resets, however the provider words the status (429,
/// Kimi's 403, AWS's 400 `ServiceQuotaExceededException`, Azure's 403 `QuotaExceeded`).
/// Anthropic's subscription limits and Codex's say so in headers.
fn usage_window(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &["usage_limit_reached", "quotaexceeded", "servicequotaexceededexception"];
    let worded = matches!(ev.status, 403 | 429) || ev.in_band;
    if (worded && ev.has(phrases!(WINDOW))) || (client(ev) && ev.code(CODES)) || window_headers(ev) {
        return hit(Reason::QuotaExhausted, "body.usage-window");
    }
    None
}

fn client(ev: &Evidence) -> bool {
    (400..500).contains(&ev.status) || ev.in_band
}

/// Anthropic's subscription limits (`anthropic-ratelimit-unified-status: rejected`) and
/// Codex's windows (`x-codex-primary-used-percent: 100`).
fn window_headers(ev: &Evidence) -> bool {
    let used_up = |h: &str| ev.header(h).and_then(|v| v.trim().parse::<f64>().ok()).is_some_and(|p| p >= 100.0);
    ev.status == 429
        && (ev.header("anthropic-ratelimit-unified-status").is_some_and(|s| s.trim().eq_ignore_ascii_case("rejected"))
            || used_up("x-codex-primary-used-percent")
            || used_up("x-codex-secondary-used-percent"))
}

const QUOTA_WORDS: &[&str] = &["exceeded your current quota, please check your plan and billing", "exceeded current quota"];

/// OpenAI's `insufficient_quota` and the hosts that copy it (Moonshot's
/// `exceeded_current_quota_error`): out of prepaid credit, unless a family says otherwise
/// (DashScope uses it for its per-minute limit) or the words name a usage window.
pub fn quota_codes(ev: &Evidence) -> Option<Hit> {
    const CODES: &[&str] = &["insufficient_quota", "exceeded_current_quota_error"];
    if client(ev) && (ev.code(CODES) || ev.has(phrases!(QUOTA_WORDS))) {
        return hit(Reason::Billing, "body.billing-quota");
    }
    None
}

const QUOTA: &[&str] = &["quota"];

/// A 429 that names a quota and no shorter window: the quota is used up.
pub fn quota(ev: &Evidence) -> Option<Hit> {
    if ev.status == 429 && ev.has(phrases!(QUOTA)) {
        return hit(Reason::QuotaExhausted, "body.quota");
    }
    None
}
