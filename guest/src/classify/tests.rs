//! Table-driven tests for retry timing and the signals that anchors get wrong, plus hostile
//! bodies. The corpus (`corpus_tests.rs`) covers whole provider responses.

use std::time::Instant;

use super::retry_after::go_duration;
use super::{classify, Family};
use crate::types::{Failure, Header, HttpResponse, Reason};

fn http(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Failure {
    Failure::Http(HttpResponse {
        status,
        headers: headers.iter().map(|(n, v)| Header { name: n.to_string(), value: v.to_string() }).collect(),
        body: body.to_vec(),
    })
}

const DATE: &str = "Tue, 24 Nov 2026 15:00:00 GMT";

#[test]
fn go_durations() {
    let cases = [
        ("1s", Some(1000)),
        ("6m0s", Some(360_000)),
        ("1m30.5s", Some(90_500)),
        ("20ms", Some(20)),
        ("2.256s", Some(2256)),
        ("14m24.5s", Some(864_500)),
        ("1h2m3s", Some(3_723_000)),
        ("33.160881113s", Some(33_161)),
        ("0s", Some(0)),
        ("", None),
        ("12", None),
        ("s", None),
        ("1x", None),
        ("1.2.3s", None),
    ];
    for (input, want) in cases {
        assert_eq!(go_duration(input), want, "{input:?}");
    }
}

#[test]
fn retry_timing_from_headers_and_bodies() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, Option<u64>);
    let cases: &[Case] = &[
        ("retry-after seconds", &[("retry-after", "20")], "", Some(20_000)),
        ("retry-after decimal", &[("Retry-After", "1.5")], "", Some(1500)),
        ("retry-after-ms wins", &[("retry-after", "6"), ("retry-after-ms", "5800")], "", Some(5800)),
        ("http date with date", &[("retry-after", "Tue, 24 Nov 2026 15:01:30 GMT"), ("date", DATE)], "", Some(90_000)),
        ("http date without date", &[("retry-after", "Tue, 24 Nov 2026 15:01:30 GMT")], "", None),
        ("http date passed", &[("retry-after", "Tue, 24 Nov 2026 14:00:00 GMT"), ("date", DATE)], "", Some(0)),
        ("garbage", &[("retry-after", "soon")], "", None),
        ("negative", &[("retry-after", "-5")], "", None),
        ("absurd", &[("retry-after", "1e300")], "", None),
        (
            "openai exhausted tokens",
            &[
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-remaining-requests", "59"),
                ("x-ratelimit-reset-tokens", "6m0s"),
                ("x-ratelimit-remaining-tokens", "0"),
            ],
            "",
            Some(360_000),
        ),
        (
            "openai exhausted requests",
            &[
                ("x-ratelimit-reset-requests", "20ms"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-tokens", "1m30.5s"),
                ("x-ratelimit-remaining-tokens", "100"),
            ],
            "",
            Some(20),
        ),
        ("openai none known exhausted", &[("x-ratelimit-reset-requests", "1s"), ("x-ratelimit-reset-tokens", "1m30.5s")], "", Some(90_500)),
        (
            "anthropic rfc3339",
            &[("anthropic-ratelimit-tokens-reset", "2026-11-24T15:00:42Z"), ("anthropic-ratelimit-tokens-remaining", "0"), ("date", DATE)],
            "",
            Some(42_000),
        ),
        ("anthropic without date", &[("anthropic-ratelimit-requests-reset", "2026-11-24T15:00:42Z")], "", None),
        ("openrouter epoch ms", &[("X-RateLimit-Reset", "1795532460000"), ("date", DATE)], "", Some(60_000)),
        ("body try again in", &[], "Please try again in 14m24.5s. Visit", Some(864_500)),
        ("body please try again in", &[], "Please try again in 20s", Some(20_000)),
        ("body retry after seconds", &[], "Please retry after 6 seconds.", Some(6000)),
        ("body retry in", &[], "Please retry in 33.160881113s.", Some(33_161)),
        ("body reset after", &[], "Your quota will reset after 8h44m7s.", Some(31_447_000)),
        ("body later", &[], "Please try again later.", None),
        ("body a few", &[], "retry after a few seconds", None),
        ("body spaced units", &[], "Your quota resets in 3h 47m.", Some(13_620_000)),
        ("body days and hours", &[], "Please retry after 2 days 4 hours.", Some(187_200_000)),
        ("body ends with its string", &[], r#"{"error":{"message":"try again in 3s","x":"5 hours"}}"#, Some(3000)),
        ("body retry_after field", &[], r#"{"error":{"message":"slow down"},"retry_after":17}"#, Some(17_000)),
        ("codex resets_in_seconds", &[], r#"{"error":{"type":"usage_limit_reached","resets_in_seconds":60}}"#, Some(60_000)),
        (
            "cerebras seconds",
            &[("x-ratelimit-reset-tokens-minute", "20.5"), ("x-ratelimit-remaining-tokens-minute", "0")],
            "",
            Some(20_500),
        ),
        (
            "codex used-up window",
            &[
                ("x-codex-primary-reset-after-seconds", "100"),
                ("x-codex-primary-used-percent", "100"),
                ("x-codex-secondary-reset-after-seconds", "9000"),
                ("x-codex-secondary-used-percent", "40"),
            ],
            "",
            Some(100_000),
        ),
        (
            "anthropic unified",
            &[("anthropic-ratelimit-unified-status", "rejected"), ("anthropic-ratelimit-unified-reset", "1795532460"), ("date", DATE)],
            "",
            Some(60_000),
        ),
        ("ietf ratelimit-reset", &[("RateLimit-Reset", "30")], "", Some(30_000)),
        ("written reset, utc", &[("date", DATE)], "Limit resets at 2026-11-24T16:00:00Z.", Some(3_600_000)),
        (
            "written reset, no zone: utc for unknown providers",
            &[("date", DATE)],
            "Your limit will reset at 2026-11-24 16:00:00",
            Some(3_600_000),
        ),
        ("written reset without date", &[], "Resets at 2026-11-24T16:00:00Z", None),
    ];
    for (name, headers, body, want) in cases {
        let got = classify(Family::Generic, &http(429, headers, body.as_bytes()));
        assert_eq!(got.retry_after_ms, *want, "{name}: {got:?}");
    }
}

#[test]
fn a_reset_without_zone_is_in_the_providers_clock_and_a_window_waits_for_it() {
    let body = r#"{"error":{"code":"1308","message":"Usage limit reached for 5 hour. Your limit will reset at 2026-11-25 00:00:00"}}"#;
    // (family, extra retry-after, wait): Zhipu means China Standard Time (16:00 UTC), others UTC.
    let cases = [(Family::Zhipu, None, 3_600_000), (Family::Generic, None, 32_400_000), (Family::Zhipu, Some("60"), 3_600_000)];
    for (family, retry_after, want) in cases {
        let mut headers = vec![("date", DATE)];
        headers.extend(retry_after.map(|v| ("retry-after", v)));
        let got = classify(family, &http(429, &headers, body.as_bytes()));
        assert_eq!((got.reason, got.retry_after_ms), (Reason::QuotaExhausted, Some(want)), "{family:?} {retry_after:?}");
    }
}

#[test]
fn reset_headers_only_time_rate_limits() {
    let headers = [("x-ratelimit-reset-requests", "1s"), ("x-ratelimit-remaining-requests", "0")];
    let body = br#"{"error":{"message":"Invalid type for 'messages'","type":"invalid_request_error","param":"messages","code":null}}"#;
    let got = classify(Family::OpenAi, &http(400, &headers, body));
    assert_eq!((got.reason, got.retry_after_ms), (Reason::BadRequest, None));
}

#[test]
fn gemini_retry_info_wins_over_message() {
    let body = br#"{"error":{"code":429,"message":"Quota exceeded for metric: x, limit: 10\nPlease retry in 33.160881113s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"33s"}]}}"#;
    let got = classify(Family::Gemini, &http(429, &[], body));
    assert_eq!((got.reason, got.retry_after_ms), (Reason::RateLimit, Some(33_000)));
}

#[test]
fn tricky_signals() {
    let cases: &[(&str, Family, u16, &str, Reason)] = &[
        ("max_tokens too small", Family::OpenAi, 400, r#"{"error":{"message":"max_tokens must be at least 1, got 0.","type":"invalid_request_error","param":"max_tokens","code":null}}"#, Reason::BadRequest),
        ("input + max_tokens over context", Family::Anthropic, 400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 197779 + 21333 > 200000, decrease input length or `max_tokens` and try again"}}"#, Reason::ContextOverflow),
        ("max_tokens over output cap", Family::Anthropic, 400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-20250514"}}"#, Reason::BadRequest),
        ("per-minute 429", Family::Groq, 429, r#"{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` on tokens per minute (TPM): Limit 6000, Used 5800, Requested 900.","type":"tokens","code":"rate_limit_exceeded"}}"#, Reason::RateLimit),
        ("per-day 429", Family::Groq, 429, r#"{"error":{"message":"Rate limit reached for model `llama-3.3-70b-versatile` on tokens per day (TPD): Limit 100000, Used 99000, Requested 1500.","type":"tokens","code":"rate_limit_exceeded"}}"#, Reason::QuotaExhausted),
        ("overload as 429", Family::Mistral, 429, r#"{"object":"error","message":"Service tier capacity exceeded for this model.","type":"invalid_request_error","param":null,"code":null}"#, Reason::Overloaded),
        ("spend limit", Family::OpenAi, 429, r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#, Reason::Billing),
        ("dashscope tpm wording", Family::DashScope, 429, r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#, Reason::RateLimit),
        ("coding plan", Family::DashScope, 429, r#"{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"insufficient_quota"}}"#, Reason::QuotaExhausted),
        ("gemini key", Family::Gemini, 400, r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#, Reason::AuthPermanent),
        ("deepseek key stays auth", Family::DeepSeek, 401, r#"{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid","type":"authentication_error","param":null,"code":"invalid_request_error"}}"#, Reason::Auth),
        ("sse overloaded in 200", Family::Anthropic, 200, "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", Reason::Overloaded),
        ("sse rate limit in 200", Family::Generic, 200, "data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n", Reason::RateLimit),
        ("nginx html", Family::OpenAi, 502, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", Reason::ServerError),
    ];
    for (name, family, status, body, want) in cases {
        let got = classify(*family, &http(*status, &[], body.as_bytes()));
        assert_eq!(got.reason, *want, "{name}: {got:?}");
        assert!(got.message.chars().count() <= 200, "{name}: {}", got.message);
    }
}

#[test]
fn message_is_status_and_provider_words() {
    let body = br#"{"error":{"message":"usage allocated quota exceeded.","type":"x","code":"y"},"request_id":"r"}"#;
    let got = classify(Family::DashScope, &http(429, &[], body));
    assert_eq!(got.message, "429 usage allocated quota exceeded.");
    assert_eq!(got.rule, "body.usage-window");
    let html = classify(Family::Generic, &http(504, &[], b"<html><head><title>504 Gateway Time-out</title></head><body></body></html>"));
    assert_eq!((html.reason, html.message.as_str()), (Reason::Timeout, "504 Gateway Time-out"));
    let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(5000));
    assert!(classify(Family::Generic, &http(500, &[], long.as_bytes())).message.chars().count() <= 200);
}

/// Hostile bodies return in bounded time without panicking: only `BODY_PREFIX` is read and
/// serde_json's recursion limit stops deep nesting.
#[test]
fn hostile_bodies() {
    let mut huge = br#"{"error":{"message":"#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    let deep = "[".repeat(100_000);
    let deep_obj = r#"{"error":"#.repeat(100_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("10 MB", huge),
        ("100k-deep array", deep.into_bytes()),
        ("100k-deep object", deep_obj.into_bytes()),
        ("invalid utf-8", vec![0xff, 0xfe, b'{', 0xc3, 0x28, b'}', 0x80]),
        ("truncated json", br#"{"error":{"message":"Rate limit reached, please try again in 3s","type":"#.to_vec()),
        ("many hints", "try again in ".repeat(6000).into_bytes()),
        ("multibyte title", "<html><head><title>ÄÖÜ 502 ß</title></head></html>".as_bytes().to_vec()),
    ];
    for (name, body) in bodies {
        let started = Instant::now();
        for status in [200, 400, 429, 502] {
            let got = classify(Family::Generic, &http(status, &[("retry-after", "x"), ("date", "nonsense")], &body));
            assert!(got.message.chars().count() <= 200, "{name}");
        }
        assert!(started.elapsed().as_secs() < 5, "{name} took {:?}", started.elapsed());
    }
    let truncated =
        classify(Family::Generic, &http(429, &[], br#"{"error":{"message":"Rate limit reached, please try again in 3s","type":"#));
    assert_eq!((truncated.reason, truncated.retry_after_ms), (Reason::RateLimit, Some(3000)));
}

#[test]
fn an_error_inside_a_2xx_is_told_from_an_answer() {
    let stream_error = "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    // (name, status, body, an answer)
    let cases: &[(&str, u16, &str, bool)] = &[
        ("anthropic stream error event", 200, stream_error, false),
        ("openai stream error chunk", 200, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\"}}\n\n", false),
        ("error document as a 200 body", 200, r#"{"error":{"message":"Upstream error","code":502}}"#, false),
        ("a stream that talks about errors", 200, "data: {\"choices\":[{\"delta\":{\"content\":\"an error occurred in your code\"}}]}\n\ndata: [DONE]\n\n", true),
        ("an answer with an error field of null", 200, r#"{"id":"x","object":"chat.completion","error":null,"choices":[{"message":{"content":"ok"}}]}"#, true),
        ("an answer", 200, r#"{"id":"x","object":"chat.completion","choices":[{"message":{"content":"ok"}}]}"#, true),
        ("content filtered: an answer, not an error", 200, r#"{"id":"x","object":"chat.completion","choices":[{"finish_reason":"content_filter","message":{"content":null}}]}"#, true),
        ("an html page mentioning errors", 200, "<html><body>error</body></html>", true),
        ("a 204 with no body", 204, "", true),
        ("a 429 is no answer", 429, r#"{"error":{"message":"slow down"}}"#, false),
        ("a 302 is no answer", 302, "", false),
        ("responses api failed", 200, "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"x\"}}}\n\n", false),
        ("responses api completed", 200, "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"error\":null}}\n\n", true),
        ("dashscope error event", 200, "id:1\nevent:error\n:HTTP_STATUS/429\ndata:{\"code\":\"Throttling\",\"message\":\"x\"}\n\n", false),
        ("ndjson error line", 200, "{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"error\":\"model crashed\"}\n", false),
        ("ndjson answer", 200, "{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"message\":{\"content\":\"b\"},\"done\":true}\n", true),
        ("minimax base_resp error", 200, r#"{"choices":null,"base_resp":{"status_code":1008,"status_msg":"insufficient balance"}}"#, false),
        ("minimax base_resp success", 200, r#"{"choices":[{"message":{"content":"ok"}}],"base_resp":{"status_code":0,"status_msg":""}}"#, true),
        ("baidu error_code", 200, r#"{"error_code":18,"error_msg":"Open api qps request limit reached"}"#, false),
    ];
    for (name, status, body, answer) in cases {
        let response = HttpResponse { status: *status, headers: Vec::new(), body: body.as_bytes().to_vec() };
        assert_eq!(super::succeeded(&response), *answer, "{name}");
    }
}

/// One AWS event-stream message (CRCs left zero: they are not checked).
fn event_stream_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(7);
        block.extend_from_slice(&(value.len() as u16).to_be_bytes());
        block.extend_from_slice(value.as_bytes());
    }
    let total = 16 + block.len() + payload.len();
    let mut msg = Vec::new();
    msg.extend_from_slice(&(total as u32).to_be_bytes());
    msg.extend_from_slice(&(block.len() as u32).to_be_bytes());
    msg.extend_from_slice(&[0; 4]);
    msg.extend_from_slice(&block);
    msg.extend_from_slice(payload);
    msg.extend_from_slice(&[0; 4]);
    msg
}

#[test]
fn bedrock_event_stream_exceptions() {
    let chunk = event_stream_message(&[(":event-type", "contentBlockDelta"), (":message-type", "event")], br#"{"delta":{"text":"hi"}}"#);
    let throttled = event_stream_message(
        &[(":exception-type", "throttlingException"), (":message-type", "exception")],
        br#"{"message":"Too many requests"}"#,
    );
    let with_exception = [chunk.clone(), throttled.clone()].concat();
    // (name, body, answer, reason)
    let cases: &[(&str, &[u8], bool, Reason)] = &[
        ("exception after a chunk", &with_exception, false, Reason::RateLimit),
        ("chunks only", &chunk, true, Reason::Unknown),
        ("truncated exception", &throttled[..throttled.len() - 10], true, Reason::Unknown),
        (
            "garbage length",
            &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, b':', b'e', b'x', b'c', b'e', b'p', b't', b'i', b'o', b'n', b'-', b't', b'y', b'p', b'e'],
            true,
            Reason::Unknown,
        ),
    ];
    for (name, body, answer, reason) in cases {
        let response = HttpResponse { status: 200, headers: Vec::new(), body: body.to_vec() };
        assert_eq!(super::succeeded(&response), *answer, "{name}");
        let got = classify(Family::Bedrock, &Failure::Http(response));
        assert_eq!(got.reason, *reason, "{name}: {got:?}");
    }
}
