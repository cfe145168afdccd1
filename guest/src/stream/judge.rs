//! What one event of a streamed answer means, per stream format: content (the guest commits on
//! the first), the finish and terminal signals (a stream is complete only with them), an error
//! event (a failure like its HTTP status), or an event that cannot be parsed.

use serde_json::Value;

use super::sse::Event;
use crate::classify::{self, Family};
use crate::types::{Header, HttpResponse};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI chat completions: `data: {chunk}` lines, `data: [DONE]` at the end.
    OpenAiChat,
    /// OpenAI Responses: `event: response.output_text.delta`, ..., `event: response.completed`.
    OpenAiResponses,
    /// Anthropic Messages: `message_start`, `content_block_delta`, ..., `message_stop`.
    Anthropic,
    /// Any other event stream: data is content, `[DONE]` or an event named `done` ends it,
    /// and a clean end of the body counts as complete (nothing else can tell).
    Generic,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenAiChat => "openai-chat",
            Format::OpenAiResponses => "openai-responses",
            Format::Anthropic => "anthropic",
            Format::Generic => "generic",
        }
    }
}

/// What one event says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judged {
    /// Carries content the caller reads: text, reasoning, or a tool call.
    pub content: bool,
    /// A tool call started or goes on: such an answer is never resumed.
    pub tool: bool,
    /// The answer's text in this event (what a resume would prefill).
    pub text: String,
    /// The model finished (`finish_reason`, a stop reason): only the terminal event may follow.
    pub finish: bool,
    /// The format's last event (`[DONE]`, `message_stop`, `response.completed`).
    pub terminal: bool,
    /// An error event: a failure to classify, not an answer.
    pub error: bool,
    /// Why the event cannot be read, when it cannot.
    pub malformed: Option<&'static str>,
    /// Framing only (a `message_start`, a role chunk, a ping): passed on, but no content.
    pub preamble: bool,
}

/// The format of a stream, from its provider's family until its first event says more.
pub struct Judge {
    pub format: Option<Format>,
    family: Family,
}

impl Judge {
    pub fn new(family: Family) -> Judge {
        Judge { format: None, family }
    }

    pub fn judge(&mut self, ev: &Event) -> Judged {
        if ev.comment_only {
            return Judged { preamble: true, ..Judged::default() };
        }
        if ev.not_utf8 {
            return malformed("the event is not UTF-8");
        }
        if is_error(ev) {
            return Judged { error: true, ..Judged::default() };
        }
        if ev.data.trim() == "[DONE]" {
            return Judged { terminal: true, ..Judged::default() };
        }
        let json: Option<Value> = serde_json::from_str(&ev.data).ok();
        if json.is_none() && ev.data.trim_start().starts_with(['{', '[']) {
            return malformed("the event's data is not JSON");
        }
        let format = *self.format.get_or_insert_with(|| detect(self.family, &ev.name, json.as_ref()));
        match format {
            Format::Generic => generic(ev),
            _ => match json {
                Some(v) => match format {
                    Format::OpenAiChat => openai_chat(&v),
                    Format::OpenAiResponses => openai_responses(&ev.name, &v),
                    _ => anthropic(&ev.name, &v),
                },
                None => malformed("the event's data is not JSON"),
            },
        }
    }
}

fn malformed(why: &'static str) -> Judged {
    Judged { malformed: Some(why), ..Judged::default() }
}

/// One definition of an error event for every path: the classifier's (`classify::succeeded`),
/// plus the Responses API's failure event.
fn is_error(ev: &Event) -> bool {
    if ev.name == "error" || ev.name == "response.failed" {
        return true;
    }
    let response = HttpResponse {
        status: 200,
        headers: vec![Header { name: "content-type".into(), value: "text/event-stream".into() }],
        body: ev.raw.clone(),
    };
    !classify::succeeded(&response)
}

fn detect(family: Family, name: &str, json: Option<&Value>) -> Format {
    let kind = json.and_then(|v| v.get("type")).and_then(Value::as_str).unwrap_or(name);
    if kind.starts_with("response.") {
        return Format::OpenAiResponses;
    }
    if matches!(kind, "message_start" | "content_block_start" | "content_block_delta" | "ping" | "message_delta")
        || (family == Family::Anthropic && json.is_some())
    {
        return Format::Anthropic;
    }
    match json {
        Some(v) if v.get("choices").is_some() || v.get("object").and_then(Value::as_str) == Some("chat.completion.chunk") => {
            Format::OpenAiChat
        }
        _ => Format::Generic,
    }
}

fn non_empty(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn openai_chat(v: &Value) -> Judged {
    let mut j = Judged::default();
    let Some(choices) = v.get("choices").and_then(Value::as_array) else {
        // A usage chunk (`choices: []` or none) after the finish: framing.
        j.preamble = true;
        return j;
    };
    for choice in choices {
        let delta = choice.get("delta");
        if let Some(text) = non_empty(delta.and_then(|d| d.get("content"))) {
            j.content = true;
            j.text.push_str(text);
        }
        let reasoning = ["reasoning_content", "reasoning"].iter().any(|k| non_empty(delta.and_then(|d| d.get(*k))).is_some());
        let tool = delta.and_then(|d| d.get("tool_calls")).and_then(Value::as_array).is_some_and(|t| !t.is_empty());
        j.content |= reasoning || tool;
        j.tool |= tool;
        j.finish |= choice.get("finish_reason").is_some_and(|f| !f.is_null());
    }
    j.preamble = !j.content && !j.finish;
    j
}

fn anthropic(name: &str, v: &Value) -> Judged {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or(name);
    let mut j = Judged::default();
    match kind {
        "content_block_start" => {
            let block = v.get("content_block");
            let tool = block.and_then(|b| b.get("type")).and_then(Value::as_str).is_some_and(|t| t.ends_with("tool_use"));
            j.content = tool;
            j.tool = tool;
            if let Some(text) = non_empty(block.and_then(|b| b.get("text"))) {
                j.content = true;
                j.text.push_str(text);
            }
        }
        "content_block_delta" => {
            let delta = v.get("delta");
            match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
                Some("text_delta") => {
                    if let Some(text) = non_empty(delta.and_then(|d| d.get("text"))) {
                        j.content = true;
                        j.text.push_str(text);
                    }
                }
                Some("input_json_delta") => {
                    j.content = true;
                    j.tool = true;
                }
                Some(_) => j.content = true,
                None => return malformed("a content_block_delta without a delta type"),
            }
        }
        "message_delta" => {
            j.finish = v.get("delta").and_then(|d| d.get("stop_reason")).is_some_and(|r| !r.is_null());
        }
        "message_stop" => j.terminal = true,
        _ => {}
    }
    j.preamble = !j.content && !j.finish && !j.terminal;
    j
}

fn openai_responses(name: &str, v: &Value) -> Judged {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or(name);
    let mut j = Judged::default();
    match kind {
        "response.output_text.delta" | "response.refusal.delta" => {
            if let Some(text) = non_empty(v.get("delta")) {
                j.content = true;
                j.text.push_str(text);
            }
        }
        "response.function_call_arguments.delta" => {
            j.content = true;
            j.tool = true;
        }
        "response.output_item.added" => {
            let item = v.get("item").and_then(|i| i.get("type")).and_then(Value::as_str).unwrap_or("");
            j.tool = item.ends_with("call");
            j.content = j.tool;
        }
        k if k.starts_with("response.reasoning") && k.ends_with(".delta") => j.content = true,
        "response.completed" | "response.incomplete" => {
            j.finish = true;
            j.terminal = true;
        }
        _ => {}
    }
    j.preamble = !j.content && !j.terminal;
    j
}

fn generic(ev: &Event) -> Judged {
    if ev.name == "done" {
        return Judged { terminal: true, ..Judged::default() };
    }
    let content = !ev.data.trim().is_empty();
    Judged { content, preamble: !content, ..Judged::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::sse::{Framed, Framer};

    fn one(family: Family, raw: &str) -> (Judged, Option<Format>) {
        let mut out = Vec::new();
        Framer::new(1 << 20).push(raw.as_bytes(), &mut out);
        let Some(Framed::Event(ev)) = out.pop() else { panic!("no event in {raw:?}") };
        let mut judge = Judge::new(family);
        (judge.judge(&ev), judge.format)
    }

    #[test]
    fn each_format_s_events_are_judged() {
        use Family::{Anthropic as A, Generic as G};
        // (family, event, content, tool, finish, terminal, error, malformed, text)
        type Case<'a> = (Family, &'a str, bool, bool, bool, bool, bool, bool, &'a str);
        let cases: &[Case] = &[
            (G, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\n\n", false, false, false, false, false, false, ""),
            (G, "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n", true, false, false, false, false, false, "Hel"),
            (G, "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\"}}]}}]}\n\n", true, true, false, false, false, false, ""),
            (G, "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n", true, false, false, false, false, false, ""),
            (G, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", false, false, true, false, false, false, ""),
            (G, "data: [DONE]\n\n", false, false, false, true, false, false, ""),
            (G, "data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502}}\n\n", false, false, false, false, true, false, ""),
            (G, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"\n\n", false, false, false, false, false, true, ""),
            (A, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n", false, false, false, false, false, false, ""),
            (A, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n", true, false, false, false, false, false, "Hi"),
            (A, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n", true, true, false, false, false, false, ""),
            (A, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n", false, false, true, false, false, false, ""),
            (A, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", false, false, false, true, false, false, ""),
            (A, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", false, false, false, false, true, false, ""),
            (G, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Yo\"}\n\n", true, false, false, false, false, false, "Yo"),
            (G, "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{}}\n\n", false, false, true, true, false, false, ""),
            (G, "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\"}}\n\n", false, false, false, false, true, false, ""),
            (G, "data: hello\n\n", true, false, false, false, false, false, ""),
            (G, ": keep-alive\n\n", false, false, false, false, false, false, ""),
        ];
        for (family, raw, content, tool, finish, terminal, error, bad, text) in cases {
            let (j, _) = one(*family, raw);
            let got = (j.content, j.tool, j.finish, j.terminal, j.error, j.malformed.is_some(), j.text.as_str());
            assert_eq!(got, (*content, *tool, *finish, *terminal, *error, *bad, *text), "{raw}");
        }
    }

    #[test]
    fn the_format_comes_from_the_first_event() {
        assert_eq!(one(Family::Generic, "data: {\"choices\":[]}\n\n").1, Some(Format::OpenAiChat));
        assert_eq!(one(Family::Anthropic, "event: ping\ndata: {\"type\":\"ping\"}\n\n").1, Some(Format::Anthropic));
        assert_eq!(
            one(Family::Generic, "event: response.created\ndata: {\"type\":\"response.created\"}\n\n").1,
            Some(Format::OpenAiResponses)
        );
        assert_eq!(one(Family::Generic, "data: plain text\n\n").1, Some(Format::Generic));
    }
}
