//! The secrets behind credential ids. They stay on the host: the guest sees only ids and
//! fingerprints, `send` attaches the secret to the outgoing request, and `Scrub` takes it out of
//! whatever comes back (a provider or proxy may echo the key it was given).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::types::{CredentialInfo, Failure, Header, HttpResponse, TransportFailure};

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

    /// What to take out of the answer to a request sent with `id`'s secret.
    pub fn scrub_for(&self, id: &str) -> Scrub {
        self.get(id).map_or_else(Scrub::none, Scrub::new)
    }

    /// What the guest may know: each id with a fingerprint that changes when the secret does.
    pub fn credentials(&self) -> Vec<CredentialInfo> {
        self.0.iter().map(|(id, secret)| CredentialInfo { id: id.clone(), fingerprint: fingerprint(secret) }).collect()
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

/// A secret shorter than this is not scrubbed: it cannot be told from ordinary text (removing
/// a 1-letter test key would rewrite every body), and no provider issues one.
pub const MIN_SCRUBBED: usize = 8;

/// Takes one secret out of what came back from a send: status text, headers, body and transport
/// error messages, each occurrence replaced by `...` and the secret's last 4 characters (only
/// `...` for a secret under 16 characters), so a message still says which key it was about.
/// The header a host sends is `secret-prefix + secret`, so this removes that whole value too.
/// Other send paths (a streaming one) take the same `Scrub`, or its `stream()`.
#[derive(Clone)]
pub struct Scrub {
    /// `None` when there is nothing to take out.
    secret: Option<Vec<u8>>,
    mask: Vec<u8>,
}

impl fmt::Debug for Scrub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrub").field("mask", &String::from_utf8_lossy(&self.mask)).finish()
    }
}

/// At least this long, a body may be a prefix cut at the classifier's limit (64 KiB), so a
/// secret's first characters at its very end are taken out too.
const CUT_AT: usize = 64 * 1024;

impl Scrub {
    pub fn new(secret: &str) -> Scrub {
        if secret.len() < MIN_SCRUBBED {
            return Scrub::none();
        }
        let mut mask = b"...".to_vec();
        if secret.len() >= 16 {
            // A whole character: a secret is text, perhaps not ASCII.
            let tail = secret.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
            mask.extend_from_slice(&secret.as_bytes()[tail..]);
        }
        Scrub { secret: Some(secret.as_bytes().to_vec()), mask }
    }

    /// Nothing to take out (no secret was attached).
    pub fn none() -> Scrub {
        Scrub { secret: None, mask: Vec::new() }
    }

    /// `data` with every occurrence of the secret masked.
    pub fn bytes(&self, data: Vec<u8>) -> Vec<u8> {
        let Some(secret) = &self.secret else { return data };
        if memchr::memmem::find(&data, secret).is_none() {
            return data;
        }
        let mut out = Vec::with_capacity(data.len());
        let mut from = 0;
        for at in memchr::memmem::find_iter(&data, secret) {
            if at >= from {
                out.extend_from_slice(&data[from..at]);
                out.extend_from_slice(&self.mask);
                from = at + secret.len();
            }
        }
        out.extend_from_slice(&data[from..]);
        out
    }

    pub fn text(&self, text: String) -> String {
        match &self.secret {
            Some(secret) if memchr::memmem::find(text.as_bytes(), secret).is_some() => {
                // A match in valid UTF-8 is whole characters, and so is the mask: still UTF-8.
                String::from_utf8_lossy(&self.bytes(text.into_bytes())).into_owned()
            }
            _ => text,
        }
    }

    /// A response with the secret out of its headers and body. An error body long enough to
    /// have been cut at the classifier's limit also loses a secret's beginning at its very end.
    pub fn response(&self, r: HttpResponse) -> HttpResponse {
        let headers = r.headers.into_iter().map(|h| Header { name: self.text(h.name), value: self.text(h.value) }).collect();
        let mut body = self.bytes(r.body);
        if !(200..300).contains(&r.status) && body.len() >= CUT_AT {
            body.truncate(body.len() - self.partial_at_end(&body));
        }
        HttpResponse { status: r.status, headers, body }
    }

    pub fn transport(&self, f: TransportFailure) -> TransportFailure {
        TransportFailure { kind: f.kind, message: self.text(f.message) }
    }

    /// What a send returns, scrubbed.
    pub fn outcome(&self, sent: Result<HttpResponse, TransportFailure>) -> Result<HttpResponse, TransportFailure> {
        sent.map(|r| self.response(r)).map_err(|f| self.transport(f))
    }

    /// A failure a host-driven loop hands in, scrubbed; borrowed (no copy) when it holds no secret.
    pub fn failure<'a>(&self, f: &'a Failure) -> Cow<'a, Failure> {
        let Some(secret) = &self.secret else { return Cow::Borrowed(f) };
        let found = |b: &[u8]| memchr::memmem::find(b, secret).is_some();
        let in_response = f
            .response
            .as_ref()
            .is_some_and(|r| found(&r.body) || r.headers.iter().any(|h| found(h.name.as_bytes()) || found(h.value.as_bytes())));
        if !in_response && !f.transport.as_ref().is_some_and(|t| found(t.message.as_bytes())) {
            return Cow::Borrowed(f);
        }
        Cow::Owned(Failure {
            kind: f.kind,
            response: f.response.clone().map(|r| self.response(r)),
            transport: f.transport.clone().map(|t| self.transport(t)),
        })
    }

    /// A scrubber for a body read in chunks: a secret split across chunks is caught too.
    pub fn stream(&self) -> StreamScrub {
        StreamScrub { scrub: self.clone(), held: Vec::new() }
    }

    /// How many bytes at the end of `data` are the secret's first bytes (at most its length - 1).
    fn partial_at_end(&self, data: &[u8]) -> usize {
        let Some(secret) = &self.secret else { return 0 };
        (1..secret.len().min(data.len() + 1)).rev().find(|&n| data.ends_with(&secret[..n])).unwrap_or(0)
    }
}

/// Scrubs a body passed on chunk by chunk. It holds back at most the secret's length - 1 bytes
/// (a possible beginning of the secret) until the next chunk or `finish` shows what they are.
pub struct StreamScrub {
    scrub: Scrub,
    held: Vec<u8>,
}

impl StreamScrub {
    /// What of the body so far can be passed on.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        let mut out = self.scrub.bytes(data);
        let keep = self.scrub.partial_at_end(&out);
        self.held = out.split_off(out.len() - keep);
        out
    }

    /// The bytes held back, at the end of the body.
    pub fn finish(self) -> Vec<u8> {
        self.held
    }
}

/// The variable read for a credential without `env`: `FAILOVER_KEY_` + the id upper-cased,
/// every non-alphanumeric character replaced by `_` (`ds-1` → `FAILOVER_KEY_DS_1`).
pub fn default_env_var(id: &str) -> String {
    let tail: String = id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
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

    const KEY: &str = "sk-proj-0123456789abcdef";

    #[test]
    fn scrub_masks_every_occurrence_and_keeps_the_rest() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str)] = &[
            (KEY, "Incorrect API key provided: sk-proj-0123456789abcdef.", "Incorrect API key provided: ...cdef."),
            (KEY, "Bearer sk-proj-0123456789abcdef|sk-proj-0123456789abcdef", "Bearer ...cdef|...cdef"),
            (KEY, "nothing to see", "nothing to see"),
            ("short-key-1", "bad key short-key-1", "bad key ..."),
            ("clé-ünïcode-secret-ß", "«clé-ünïcode-secret-ß»", "«...et-ß»"),
            // too short to be told from text: left alone
            ("k", "keep every k", "keep every k"),
        ];
        for (secret, text, want) in cases {
            let scrub = Scrub::new(secret);
            assert_eq!(scrub.text(text.to_string()), *want, "{text:?}");
            assert_eq!(scrub.bytes(text.as_bytes().to_vec()), want.as_bytes(), "{text:?}");
        }
    }

    #[test]
    fn scrub_covers_headers_body_and_transport_messages() {
        let scrub = Secrets::from_map([("oa-1".to_string(), KEY.to_string())].into()).scrub_for("oa-1");
        let echo = format!("Bearer {KEY}");
        let r = scrub.response(HttpResponse {
            status: 401,
            headers: vec![Header { name: "x-echo".into(), value: echo.clone() }],
            body: format!("{{\"error\": \"bad key {echo}\"}}").into_bytes(),
        });
        assert_eq!(r.headers[0].value, "Bearer ...cdef");
        assert_eq!(String::from_utf8_lossy(&r.body), "{\"error\": \"bad key Bearer ...cdef\"}");
        let f = scrub.transport(TransportFailure { kind: crate::types::TransportKind::Other, message: format!("proxy said {KEY}") });
        assert_eq!(f.message, "proxy said ...cdef");
        let handed_in = Failure::transport(crate::types::TransportKind::Other, format!("proxy said {KEY}"));
        assert_eq!(scrub.failure(&handed_in).transport.as_ref().map(|t| t.message.as_str()), Some("proxy said ...cdef"));
        let clean = Failure::transport(crate::types::TransportKind::Other, "refused");
        assert!(matches!(scrub.failure(&clean), Cow::Borrowed(_)), "nothing to scrub: no copy");
        assert_eq!(Secrets::default().scrub_for("oa-1").text(echo.clone()), echo, "no secret, nothing scrubbed");
    }

    #[test]
    fn a_cut_body_loses_a_secret_begun_at_its_end() {
        let scrub = Scrub::new(KEY);
        let mut body = vec![b'x'; CUT_AT - 10];
        body.extend_from_slice(&KEY.as_bytes()[..10]);
        let r = scrub.response(HttpResponse { status: 500, headers: vec![], body });
        assert_eq!(r.body, vec![b'x'; CUT_AT - 10]);
        // A whole body (shorter than the cut) keeps its end: it was not cut.
        let r = scrub.response(HttpResponse { status: 500, headers: vec![], body: b"ends with sk-proj".to_vec() });
        assert_eq!(r.body, b"ends with sk-proj");
    }

    #[test]
    fn a_stream_is_scrubbed_across_every_chunk_boundary() {
        let scrub = Scrub::new(KEY);
        let body = format!("data: {{\"error\": \"{KEY}\"}}\n\nsk-proj-0123 and {KEY}{KEY}");
        let want = scrub.text(body.clone());
        for a in 0..body.len() {
            for b in a..body.len() {
                let mut stream = scrub.stream();
                let mut out = stream.push(&body.as_bytes()[..a]);
                out.extend(stream.push(&body.as_bytes()[a..b]));
                out.extend(stream.push(&body.as_bytes()[b..]));
                out.extend(stream.finish());
                assert_eq!(String::from_utf8_lossy(&out), want, "split at {a} and {b}");
            }
        }
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
