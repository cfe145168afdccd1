//! A readable timeline of a scenario's trace, for `failover simulate`.

use serde_json::Value;

use crate::timefmt::offset;

pub fn render(lines: &[Value]) -> String {
    let mut out = String::new();
    for line in lines {
        let t = offset(line["t"].as_u64().unwrap_or(0));
        let step = line["step"].as_u64().unwrap_or(0);
        let s = |key: &str| line[key].as_str().unwrap_or("").to_string();
        let text = match line["type"].as_str().unwrap_or("") {
            "send" => format!("send     {} -> {}", s("route"), s("outcome")),
            "event" => format!("event    [{}] {}", s("kind"), s("message")),
            "select" => match line.get("no_route") {
                Some(message) => format!("select   no route: {}", message.as_str().unwrap_or("")),
                None => format!("select   {}", s("route")),
            },
            "result" => result(line),
            "advance" => "advance".to_string(),
            other => other.to_string(),
        };
        out.push_str(&format!("{t}  #{step:<2} {text}\n"));
    }
    out
}

fn result(line: &Value) -> String {
    let attempts = line["attempts"].as_array().map(Vec::as_slice).unwrap_or_default();
    let head = if line["ok"].as_bool() == Some(true) {
        format!("result   ok via {} after {} attempt(s)", line["route"].as_str().unwrap_or(""), attempts.len())
    } else {
        format!(
            "result   FAILED ({}) after {} attempt(s): {}",
            line["reason"].as_str().unwrap_or(""),
            attempts.len(),
            line["message"].as_str().unwrap_or("")
        )
    };
    let mut text = head;
    for (i, a) in attempts.iter().enumerate() {
        let s = |key: &str| a[key].as_str().unwrap_or("-").to_string();
        text.push_str(&format!("\n{:22}{}. {} -> {}", "", i + 1, s("route"), s("outcome")));
        if let Some(action) = a["action"].as_str() {
            text.push_str(&format!(": {} => {} after {} ms ({})", s("reason"), action, a["delay_ms"].as_u64().unwrap_or(0), s("rule")));
        }
    }
    text
}
