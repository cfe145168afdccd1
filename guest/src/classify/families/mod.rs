//! Provider-specific refinements, one file per family: what a status or code means for that
//! provider when it differs from the generic reading. They run after billing and usage windows
//! (`limits.rs`); `None` hands over to the shared signals and then the generic status rules.
//! Families without a file (Zhipu, Mistral, Together, Fireworks, Ollama, vLLM, generic) need
//! nothing beyond the shared signals, Zhipu only its clock (`local_offset`).

mod anthropic;
mod azure;
mod bedrock;
mod dashscope;
mod deepseek;
mod gemini;
mod groq;
mod minimax;
mod openai;
mod openrouter;

use super::evidence::Evidence;
use super::phrases::phrases;
use super::{Family, Hit};
use crate::types::Reason;

/// The families' phrase lists, for the one-pass search (`phrases.rs`).
pub const PHRASES: &[&[&str]] = &[
    anthropic::LOW_CREDIT,
    bedrock::MODEL_ACCESS,
    dashscope::USED_UP,
    dashscope::TPM,
    dashscope::OVERDUE,
    dashscope::MODEL_QUOTED,
    dashscope::NOT_SUPPORTED,
    gemini::KEY_INVALID,
    gemini::ENABLE_BILLING,
    gemini::LOCATION,
    gemini::NO_CAPACITY,
    gemini::PER_DAY,
    gemini::PER_MINUTE,
    openrouter::MODERATION,
    openrouter::UPSTREAM,
    openrouter::PER_DAY,
];

pub fn refine(family: Family, ev: &Evidence) -> Option<Hit> {
    match family {
        Family::OpenAi => openai::refine(ev),
        Family::AzureOpenAi => azure::refine(ev),
        Family::Anthropic => anthropic::refine(ev),
        Family::Gemini | Family::Vertex => gemini::refine(ev),
        Family::Bedrock => bedrock::refine(ev),
        Family::OpenRouter => openrouter::refine(ev),
        Family::DeepSeek => deepseek::refine(ev),
        Family::DashScope => dashscope::refine(ev),
        Family::Groq => groq::refine(ev),
        Family::MiniMax => minimax::refine(ev),
        Family::Zhipu | Family::Mistral | Family::Together | Family::Fireworks | Family::Ollama | Family::Vllm | Family::Generic => None,
    }
}

/// Minutes east of UTC of the clock a provider means when it writes a reset time without a
/// zone: the Chinese providers write China Standard Time (Zhipu's "Your limit will reset at
/// 2026-08-27 21:31:39", "您的限额将在 ... 重置"), everyone else UTC.
pub fn local_offset(family: Family) -> i32 {
    match family {
        Family::Zhipu | Family::MiniMax | Family::DashScope | Family::DeepSeek => 8 * 60,
        _ => 0,
    }
}

fn hit(reason: Reason, rule: &str) -> Option<Hit> {
    Some(Hit { reason, rule: rule.to_string() })
}

/// The first row whose code (error type, exception name) the error carries.
fn by_code(ev: &Evidence, table: &[(&str, Reason, &str)]) -> Option<Hit> {
    table.iter().find(|(code, _, _)| ev.code(&[code])).and_then(|(_, reason, rule)| hit(*reason, rule))
}
