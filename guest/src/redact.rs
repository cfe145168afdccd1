//! Masks key-shaped tokens in text the policy keeps or emits (messages, `last_error`, final
//! errors, events). Hosts already remove the key they attached from what a provider sends
//! back; this is defence in depth for keys they did not attach (a proxy's own key, a key in a
//! base URL's query string, a host that forgot).
//!
//! A token (a run of ASCII letters, digits, `-` and `_`) is a key when it
//! - starts with a documented key prefix (`PREFIXES`) followed by at least `MIN_REST` characters;
//! - follows a label such as `key=`, `api_key: ` or `Bearer ` and looks random (at least
//!   `MIN_REST` characters, a digit among them); the value may also hold `.`, `+`, `/`, `=`, `~`;
//! - in an auth error, holds a run of `LONG_RUN` letters and digits mixing both.
//!
//! A key becomes its documented prefix, `...` and its last 4 characters (`sk-...cdef`), the tail
//! only when at least 16 characters are hidden. One pass, linear in the text, no allocation when
//! nothing is masked.

/// Documented key prefixes, longest first among those sharing a start (the longest one is kept).
const PREFIXES: &[&str] = &[
    "sk-proj-",    // OpenAI project keys
    "sk-svcacct-", // OpenAI service-account keys
    "sk-admin-",   // OpenAI admin keys
    "sk-ant-",     // Anthropic (sk-ant-api03-, sk-ant-admin01-)
    "sk-or-",      // OpenRouter (sk-or-v1-)
    "sk-",         // OpenAI legacy, DeepSeek, DashScope, Moonshot and most OpenAI-compatible APIs
    "AIza",        // Google API keys (Gemini)
    "gsk_",        // Groq
    "xai-",        // xAI
    "pplx-",       // Perplexity
    "nvapi-",      // NVIDIA API catalog
    "hf_",         // Hugging Face
    "r8_",         // Replicate
    "ABSK",        // Amazon Bedrock API keys
    "github_pat_", // GitHub fine-grained tokens (GitHub Models)
    "ghp_",        // GitHub classic tokens
];

/// Labels after which a random-looking value is a secret (matched as a whole token, any case).
const LABELS: &[&str] =
    &["key", "apikey", "api_key", "api-key", "x-api-key", "x-goog-api-key", "access_token", "token", "secret", "bearer"];

/// The longest of `LABELS`.
const LABEL_MAX: usize = 14;

/// Characters a key needs after its prefix (or as a labelled value): shorter ones are words.
const MIN_REST: usize = 8;
/// In an auth error, a run of letters and digits this long (with both) is taken for a key.
const LONG_RUN: usize = 20;
/// Characters kept from the end of a key, when at least `TAIL_FROM` are hidden.
const TAIL: usize = 4;
const TAIL_FROM: usize = 16;

/// `text` with every key-shaped token masked; `auth` also masks long random tokens, which an
/// auth error is likely to hold (its own key) and other errors (request ids) are not.
pub fn mask(text: String, auth: bool) -> String {
    let b = text.as_bytes();
    let mut out: Option<String> = None; // allocated at the first key
    let mut copied = 0; // `text[..copied]` is in `out`
    let mut value_at = None; // where a value starts, right after a label and its separator
    let mut i = 0;
    while i < b.len() {
        if !is_token(b[i]) {
            i += 1;
            continue;
        }
        let labelled = value_at == Some(i);
        let mut end = if labelled { run_end(b, i, is_value) } else { run_end(b, i, is_token) };
        if labelled {
            // A full stop after a value ends the sentence: no key or token ends with one.
            end -= b[i..end].iter().rev().take_while(|&&c| c == b'.').count();
        }
        let token = &text[i..end];
        if is_key(token, labelled, auth) {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..i]);
            push_masked(out, token);
            copied = end;
        } else {
            value_at = separator_after_label(token, &b[end..]).map(|sep| end + sep);
        }
        i = end;
    }
    match out {
        None => text,
        Some(mut out) => {
            out.push_str(&text[copied..]);
            out
        }
    }
}

/// Where the run of `part` characters starting at `from` ends.
fn run_end(b: &[u8], from: usize, part: impl Fn(u8) -> bool) -> usize {
    from + b[from..].iter().position(|&c| !part(c)).unwrap_or(b.len() - from)
}

fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// A labelled value may be base64 or a JWT.
fn is_value(c: u8) -> bool {
    is_token(c) || matches!(c, b'.' | b'+' | b'/' | b'=' | b'~')
}

fn prefix_of(token: &str) -> Option<&'static str> {
    // The first letters of `PREFIXES`: most tokens start with none of them.
    if !matches!(token.as_bytes().first(), Some(b's' | b'A' | b'g' | b'x' | b'p' | b'n' | b'h' | b'r')) {
        return None;
    }
    PREFIXES.iter().copied().find(|p| token.starts_with(p))
}

fn is_key(token: &str, labelled: bool, auth: bool) -> bool {
    // Most tokens are words: too short to be any kind of key.
    if token.len() < MIN_REST {
        return false;
    }
    if prefix_of(token).is_some_and(|p| token.len() - p.len() >= MIN_REST) {
        return true;
    }
    (labelled && token.bytes().any(|c| c.is_ascii_digit())) || (auth && token.len() >= LONG_RUN && has_long_random_run(token))
}

fn has_long_random_run(token: &str) -> bool {
    token
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|run| run.len() >= LONG_RUN && run.bytes().any(|c| c.is_ascii_digit()) && run.bytes().any(|c| c.is_ascii_alphabetic()))
}

/// The length of the separator `rest` starts with when `token` is a label: `=` or `:` (with
/// quotes and spaces around), or for `Bearer` one or more spaces.
fn separator_after_label(token: &str, rest: &[u8]) -> Option<usize> {
    let maybe_separator = rest.first().is_some_and(|c| matches!(c, b' ' | b'"' | b'\'' | b':' | b'='));
    if !maybe_separator || token.len() > LABEL_MAX || !LABELS.iter().any(|l| token.eq_ignore_ascii_case(l)) {
        return None;
    }
    let sep = &rest[..rest.iter().take_while(|&&c| matches!(c, b' ' | b'"' | b'\'' | b':' | b'=')).count()];
    let ok = if token.eq_ignore_ascii_case("bearer") {
        !sep.is_empty() && sep.iter().all(|&c| c == b' ')
    } else {
        sep.len() <= 4 && sep.iter().any(|&c| c == b':' || c == b'=')
    };
    ok.then_some(sep.len())
}

fn push_masked(out: &mut String, token: &str) {
    let prefix = prefix_of(token).unwrap_or("");
    let hidden = token.len() - prefix.len();
    out.push_str(prefix);
    out.push_str("...");
    if hidden >= TAIL_FROM {
        out.push_str(&token[token.len() - TAIL..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_keys_and_keeps_the_rest() {
        #[rustfmt::skip]
        let cases: &[(&str, bool, &str)] = &[
            // documented prefixes, the longest kept
            ("Incorrect API key provided: sk-proj-Abc123def456ghi789jklCDEF.", false, "Incorrect API key provided: sk-proj-...CDEF."),
            ("invalid x-api-key sk-ant-api03-AbCdEfGhIjKlMnOp-1234", false, "invalid x-api-key sk-ant-...1234"),
            ("No auth credentials found for sk-or-v1-0123456789abcdef0123", false, "No auth credentials found for sk-or-...0123"),
            ("Authentication Fails, Your api key: sk-0123456789abcdef0123456789abcdef is invalid", false, "Authentication Fails, Your api key: sk-...cdef is invalid"),
            ("API key not valid: AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", false, "API key not valid: AIza...tUvW"),
            ("Invalid API Key gsk_aBcDeFgHiJkLmNoPqRsT1234", false, "Invalid API Key gsk_...1234"),
            ("Incorrect API key provided: xai-AbCdEf12", false, "Incorrect API key provided: xai-..."),
            ("pplx-1234567890abcdef nvapi-abcdefgh12 hf_abcdefghijkl r8_abcdefgh1", false, "pplx-...cdef nvapi-... hf_... r8_..."),
            // labelled values: query strings, headers echoed, JSON fields
            ("GET https://gw.example/v1/models?key=abc123def456ghi789&alt=sse failed", false, "GET https://gw.example/v1/models?key=...i789&alt=sse failed"),
            ("header x-api-key: 'q1w2e3r4t5y6' rejected", false, "header x-api-key: '...' rejected"),
            ("{\"api_key\": \"Zm9vYmFy/YmF6+cXV4=1234\"}", false, "{\"api_key\": \"...1234\"}"),
            ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOjE.sig1234", false, "Authorization: Bearer ...1234"),
            ("Incorrect API key provided: Bearer proxy-7Hq2Wm9x-Lr4tZc8v-0001.", true, "Incorrect API key provided: Bearer ...0001."),
            // long random tokens, only in auth errors
            ("invalid token 3f9a0c2be81d4f6a9c7e5b3d1a0f2e4c", true, "invalid token ...2e4c"),
            ("invalid token 3f9a0c2be81d4f6a9c7e5b3d1a0f2e4c", false, "invalid token 3f9a0c2be81d4f6a9c7e5b3d1a0f2e4c"),
            // words, names and ids stay
            ("task-force sk-short desk-0123456789abcdef", false, "task-force sk-short desk-0123456789abcdef"),
            ("Invalid key: please check your dashboard", false, "Invalid key: please check your dashboard"),
            ("Bearer token invalid", true, "Bearer token invalid"),
            ("model gpt-4o-mini-2024-07-18 not found (request 0b7e4f1a-9c2d-4e8b-a1f3-5d6c7b8a9e0f)", true, "model gpt-4o-mini-2024-07-18 not found (request 0b7e4f1a-9c2d-4e8b-a1f3-5d6c7b8a9e0f)"),
            ("429 usage allocated quota exceeded.", false, "429 usage allocated quota exceeded."),
            // text around in any script
            ("clé «sk-ÄbcdefGhijkl» refusée: «sk-abcdefGhijkl»", false, "clé «sk-ÄbcdefGhijkl» refusée: «sk-...»"),
        ];
        for (text, auth, want) in cases {
            assert_eq!(mask(text.to_string(), *auth), *want, "masking {text:?} (auth: {auth})");
        }
    }

    #[test]
    fn the_shortcuts_agree_with_the_tables() {
        assert_eq!(LABELS.iter().map(|l| l.len()).max(), Some(LABEL_MAX));
        for p in PREFIXES {
            assert_eq!(prefix_of(&format!("{p}0123456789")), Some(*p), "{p} passes the first-letter check");
        }
    }

    #[test]
    fn masking_twice_changes_nothing_more() {
        for text in ["key sk-proj-Abc123def456ghi789jklCDEF", "?key=abc123def456ghi789", "token 3f9a0c2be81d4f6a9c7e5b3d1a0f2e4c"] {
            let once = mask(text.to_string(), true);
            assert_eq!(mask(once.clone(), true), once);
        }
    }

    proptest! {
        /// A key with any documented prefix, anywhere in any text, leaves at most its last 4
        /// characters; the text around it is kept.
        #[test]
        fn no_key_survives(before in "[^A-Za-z0-9_-]{0,3}|.{0,40}[ :=(\"]", prefix in proptest::sample::select(PREFIXES),
                           body in "[A-Za-z0-9]{12}[A-Za-z0-9_-]{4,60}[A-Za-z0-9]{4}", after in "([ ,;)\"].{0,40})?",
                           auth in any::<bool>()) {
            let key = format!("{prefix}{body}");
            let text = format!("{before}{key}{after}");
            let masked = mask(text, auth);
            prop_assert!(!masked.contains(&body[..body.len() - TAIL]), "{masked}");
            prop_assert!(masked.ends_with(&after), "{masked}");
        }

        /// Any text: no panic, and never longer (a bounded message stays bounded).
        #[test]
        fn any_text_is_safe(text in ".{0,300}", auth in any::<bool>()) {
            let masked = mask(text.clone(), auth);
            prop_assert!(masked.len() <= text.len());
        }
    }
}
