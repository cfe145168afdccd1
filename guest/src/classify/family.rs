//! Provider families: which classification rules and default auth header a provider gets.

use crate::config::AuthConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    OpenAi,
    AzureOpenAi,
    Anthropic,
    Gemini,
    Vertex,
    Bedrock,
    OpenRouter,
    DeepSeek,
    DashScope,
    /// Zhipu AI (bigmodel.cn) and Z.ai, GLM models and the GLM Coding Plan.
    Zhipu,
    MiniMax,
    Mistral,
    Groq,
    Together,
    Fireworks,
    Ollama,
    Vllm,
    /// Any other OpenAI-compatible host: generic rules only.
    Generic,
}

const NAMES: &[(&str, Family)] = &[
    ("openai", Family::OpenAi),
    ("azure-openai", Family::AzureOpenAi),
    ("anthropic", Family::Anthropic),
    ("gemini", Family::Gemini),
    ("vertex", Family::Vertex),
    ("bedrock", Family::Bedrock),
    ("openrouter", Family::OpenRouter),
    ("deepseek", Family::DeepSeek),
    ("dashscope", Family::DashScope),
    ("zhipu", Family::Zhipu),
    ("minimax", Family::MiniMax),
    ("mistral", Family::Mistral),
    ("groq", Family::Groq),
    ("together", Family::Together),
    ("fireworks", Family::Fireworks),
    ("ollama", Family::Ollama),
    ("vllm", Family::Vllm),
    ("generic", Family::Generic),
];

/// Substrings of provider names that identify a family when the config names none. Gateways
/// come first, then the providers whose Anthropic- or OpenAI-compatible endpoints carry another
/// family's name (`minimax-anthropic`).
const HINTS: &[(&str, Family)] = &[
    ("azure", Family::AzureOpenAi),
    ("openrouter", Family::OpenRouter),
    ("zhipu", Family::Zhipu),
    ("bigmodel", Family::Zhipu),
    ("glm", Family::Zhipu),
    ("z.ai", Family::Zhipu),
    ("zai", Family::Zhipu),
    ("minimax", Family::MiniMax),
    ("openai", Family::OpenAi),
    ("anthropic", Family::Anthropic),
    ("claude", Family::Anthropic),
    ("vertex", Family::Vertex),
    ("gemini", Family::Gemini),
    ("google", Family::Gemini),
    ("bedrock", Family::Bedrock),
    ("deepseek", Family::DeepSeek),
    ("dashscope", Family::DashScope),
    ("alibaba", Family::DashScope),
    ("qwen", Family::DashScope),
    ("mistral", Family::Mistral),
    ("groq", Family::Groq),
    ("together", Family::Together),
    ("fireworks", Family::Fireworks),
    ("ollama", Family::Ollama),
    ("vllm", Family::Vllm),
];

impl Family {
    pub fn parse(name: &str) -> Option<Family> {
        let lower = name.to_ascii_lowercase();
        NAMES.iter().find(|(n, _)| *n == lower).map(|(_, f)| *f)
    }

    /// The family a provider name points to; unknown names get the generic rules.
    pub fn infer(provider: &str) -> Family {
        let lower = provider.to_ascii_lowercase();
        Family::parse(&lower).or_else(|| HINTS.iter().find(|(h, _)| lower.contains(h)).map(|(_, f)| *f)).unwrap_or(Family::Generic)
    }

    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, f)| *f == self).map(|(n, _)| *n).unwrap_or("generic")
    }

    pub fn names() -> String {
        NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    }

    pub fn default_auth(self) -> AuthConfig {
        let (header, prefix) = match self {
            Family::Anthropic => ("x-api-key", ""),
            Family::AzureOpenAi => ("api-key", ""),
            Family::Gemini => ("x-goog-api-key", ""),
            _ => ("Authorization", "Bearer "),
        };
        AuthConfig { header: header.to_string(), prefix: prefix.to_string() }
    }
}
