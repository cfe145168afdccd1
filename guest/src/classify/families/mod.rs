//! Provider-specific refinements, one file per family: what a status or code means for that
//! provider when it differs from the generic reading. They run first; `None` hands over to the
//! shared signals and then the generic status rules. Families without a file (Mistral,
//! Together, Fireworks, Ollama, vLLM, generic) need nothing beyond the shared signals.

mod anthropic;
mod azure;
mod bedrock;
mod dashscope;
mod deepseek;
mod gemini;
mod groq;
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
        Family::Mistral
        | Family::Together
        | Family::Fireworks
        | Family::Ollama
        | Family::Vllm
        | Family::Generic => None,
    }
}

fn hit(reason: Reason, rule: &str) -> Option<Hit> {
    Some(Hit { reason, rule: rule.to_string() })
}

/// The first row whose code (error type, exception name) the error carries.
fn by_code(ev: &Evidence, table: &[(&str, Reason, &str)]) -> Option<Hit> {
    table.iter().find(|(code, _, _)| ev.code(&[code])).and_then(|(_, reason, rule)| hit(*reason, rule))
}
