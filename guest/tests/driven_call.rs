//! A committed answer that breaks off: a stream ends with an error event in its own format, a
//! whole answer with none (it has no in-band way to say it: the host fails the caller's read).

use failover_policy::types::*;
use failover_policy::{DrivenCall, Engine, Env};

struct Clock(u64);

impl Env for Clock {
    fn now_ms(&mut self) -> u64 {
        self.0
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.0 += ms;
    }
    fn send(&mut self, _: &Outbound) -> Result<HttpResponse, TransportFailure> {
        Err(TransportFailure { kind: TransportKind::Other, message: "a driven call sends through its steps".into() })
    }
    fn emit(&mut self, _: Event) {}
    fn seed(&mut self) -> u64 {
        1
    }
}

const CONFIG: &str = r#"{
  "providers": {"p": {"base_url": "https://p.example/v1", "credentials": [{"id": "p-1"}]}},
  "primary": {"provider": "p", "model": "m"},
  "seed": 1
}"#;

fn input(kind: InputKind) -> CallInput {
    CallInput { kind, head: None, data: Vec::new(), failure: None }
}

/// A call (streamed or not) answered 200 with `content_type`, then the bytes of `parts`, then a reset;
/// returns the steps from the commit on.
fn cut_after(stream: bool, content_type: &str, parts: &[Vec<u8>]) -> Vec<Step> {
    let mut env = Clock(1_795_528_800_000);
    let mut engine = Engine::create(CONFIG, None, &[CredentialInfo { id: "p-1".into(), fingerprint: "fp".into() }], &mut env).unwrap();
    let body = format!(r#"{{"model":"x","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#);
    let request = Request { path: "/chat/completions".into(), method: "POST".into(), headers: vec![], body: body.into_bytes() };
    let mut call = DrivenCall::new(&engine, request, None, &mut env);
    assert_eq!(call.next(&mut engine, input(InputKind::Start), &mut env).kind, StepKind::Send);
    let head = ResponseHead { status: 200, headers: vec![Header { name: "content-type".into(), value: content_type.into() }] };
    let mut steps = vec![call.next(&mut engine, CallInput { head: Some(head), ..input(InputKind::Head) }, &mut env)];
    for part in parts {
        steps.push(call.next(&mut engine, CallInput { data: part.clone(), ..input(InputKind::Data) }, &mut env));
    }
    let reset = TransportFailure { kind: TransportKind::Reset, message: "connection reset".into() };
    steps.push(call.next(&mut engine, CallInput { failure: Some(reset), ..input(InputKind::Failed) }, &mut env));
    steps.into_iter().skip_while(|s| s.commit.is_none()).collect()
}

#[test]
fn a_stream_cut_after_commit_ends_with_an_error_event() {
    let event =
        br#"data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Half"},"finish_reason":null}]}

"#;
    let steps = cut_after(true, "text/event-stream", &[event.to_vec()]);
    let last = steps.last().unwrap();
    assert_eq!(last.kind, StepKind::GiveUp);
    let text = String::from_utf8_lossy(&last.deliver);
    assert!(text.starts_with("data: {\"error\""), "{text}");
}

#[test]
fn a_whole_answer_cut_after_commit_delivers_no_error_event() {
    // Past the 64 KiB judged, so the answer commits before its end; then the connection resets.
    let body = format!(r#"{{"choices":[{{"message":{{"content":"{}"#, "x".repeat(70 * 1024));
    let steps = cut_after(false, "application/json", &[body.into_bytes()]);
    assert!(steps.first().is_some_and(|s| s.commit.is_some()), "the answer committed");
    let last = steps.last().unwrap();
    assert_eq!(last.kind, StepKind::GiveUp);
    assert!(last.deliver.is_empty(), "{}", String::from_utf8_lossy(&last.deliver));
    assert!(last.error.as_ref().is_some_and(|e| e.message.contains("broke off")));
}
