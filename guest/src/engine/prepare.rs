//! A request rewritten for one route: URL under the provider's base, `model` in the JSON body,
//! the caller's auth headers dropped (the host adds the real one), the provider's limits.

use super::Engine;
use crate::types::*;

impl Engine {
    /// Rewrites a request for a route: URL under the provider's base, `model` in the JSON body,
    /// caller-supplied auth headers removed (the host adds the real one).
    pub fn prepare(&self, route: &Route, request: &Request) -> Result<Outbound, String> {
        self.known_route(route)?;
        let provider = self.config.provider(&route.provider).ok_or_else(|| format!("unknown provider {}", route.provider))?;
        let path = request.path.trim_start_matches('/');
        let url = if path.is_empty() { provider.base_url.clone() } else { format!("{}/{path}", provider.base_url) };
        let body = match serde_json::from_slice::<serde_json::Value>(&request.body) {
            Ok(serde_json::Value::Object(mut obj)) => {
                obj.insert("model".into(), serde_json::Value::String(route.model.clone()));
                serde_json::to_vec(&obj).map_err(|e| format!("cannot re-encode the request body: {e}"))?
            }
            _ => request.body.clone(),
        };
        let auth_names = ["authorization", "x-api-key", "api-key", "x-goog-api-key", &provider.auth.header.to_ascii_lowercase()];
        let mut headers: Vec<Header> = request
            .headers
            .iter()
            .filter(|h| {
                let n = h.name.to_ascii_lowercase();
                !auth_names.contains(&n.as_str()) && n != "content-length" && n != "host"
            })
            .cloned()
            .collect();
        for (name, value) in &provider.headers {
            headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
            headers.push(Header { name: name.clone(), value: value.clone() });
        }
        Ok(Outbound {
            route: route.clone(),
            url,
            method: if request.method.is_empty() { "POST".into() } else { request.method.clone() },
            headers,
            body,
            secret_header: provider.auth.header.clone(),
            secret_prefix: provider.auth.prefix.clone(),
            connect_timeout_ms: provider.timeouts.connect_ms,
            read_timeout_ms: provider.timeouts.read_ms,
            fresh_connection: false,
        })
    }
}
