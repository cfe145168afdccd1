//! `failover classify`: one failure from flags, or a JSON-lines file of them through one
//! component instance, each printed as one JSON object.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use failover_host::types::{Classified, Failure, Header, HttpResponse, TransportKind};
use failover_host::{Host, HttpTransport, Instance, Policy};
use serde_json::{json, Map, Value};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The provider the failure came from (its family picks the rules).
    #[arg(long, required_unless_present = "batch")]
    provider: Option<String>,
    /// The HTTP status of the failed response.
    #[arg(long, required_unless_present_any = ["transport", "batch"], conflicts_with = "transport")]
    status: Option<u16>,
    /// A transport failure instead of a response: timeout, connection-refused, dns, tls, reset, other.
    #[arg(long, value_name = "KIND")]
    transport: Option<String>,
    /// A response header, `Name: value`; repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The response body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// The response body, read from a file (raw bytes).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// JSON lines of {"provider", "status", "headers", "body" | "body_base64"} or
    /// {"provider", "transport"}; one result per line, in order ("-" reads stdin).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["provider", "status", "transport", "headers", "body", "body_file"])]
    batch: Option<PathBuf>,
}

pub fn run(policy: &Policy, args: Args) -> anyhow::Result<ExitCode> {
    // Classification sends nothing; the transport is never used.
    let mut instance = policy.instantiate(Host::new(HttpTransport::new()))?;
    if let Some(path) = &args.batch {
        return batch(&mut instance, path);
    }
    let provider = args.provider.clone().ok_or_else(|| anyhow!("--provider is required"))?;
    let failure = match (&args.transport, args.status) {
        (Some(kind), _) => transport_failure(kind, None)?,
        (None, Some(status)) => {
            let headers = args.headers.iter().map(|h| parse_header(h)).collect::<anyhow::Result<Vec<_>>>()?;
            let body = match (&args.body, &args.body_file) {
                (Some(text), _) => text.clone().into_bytes(),
                (None, Some(path)) => std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
                (None, None) => Vec::new(),
            };
            Failure::http(HttpResponse { status, headers, body })
        }
        (None, None) => bail!("give --status N or --transport KIND"),
    };
    let classified = instance.classify(&provider, &failure)?;
    println!("{}", to_json(&classified, None));
    Ok(ExitCode::SUCCESS)
}

fn batch(instance: &mut Instance, path: &PathBuf) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut out = std::io::stdout().lock();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{} line {n}: cannot read", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let (provider, failure, id) = parse_line(&line).with_context(|| format!("{} line {n}", path.display()))?;
        let classified = instance.classify(&provider, &failure)?;
        writeln!(out, "{}", to_json(&classified, id))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One batch line: provider, failure, and the `id` to echo. Other fields are ignored.
fn parse_line(line: &str) -> anyhow::Result<(String, Failure, Option<Value>)> {
    let value: Value = serde_json::from_str(line).context("not JSON")?;
    let obj = value.as_object().ok_or_else(|| anyhow!("not a JSON object"))?;
    let provider = obj.get("provider").and_then(Value::as_str).ok_or_else(|| anyhow!("`provider` (a string) is missing"))?;
    let id = obj.get("id").cloned();
    if let Some(kind) = obj.get("transport") {
        let kind = kind.as_str().ok_or_else(|| anyhow!("`transport` must be a string"))?;
        let message = obj.get("message").and_then(Value::as_str);
        return Ok((provider.to_string(), transport_failure(kind, message)?, id));
    }
    let status = obj
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| anyhow!("needs `status` (an HTTP status number) or `transport`"))?;
    let headers = match obj.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, value)| Header { name: name.clone(), value: value.as_str().map_or_else(|| value.to_string(), str::to_string) })
            .collect(),
        Some(_) => bail!("`headers` must be an object of name: value"),
    };
    let body = match (obj.get("body_base64"), obj.get("body")) {
        (Some(b64), _) => {
            let text = b64.as_str().ok_or_else(|| anyhow!("`body_base64` must be a string"))?;
            base64::engine::general_purpose::STANDARD.decode(text).context("`body_base64` is not standard base64")?
        }
        (None, None | Some(Value::Null)) => Vec::new(),
        (None, Some(Value::String(s))) => s.clone().into_bytes(),
        (None, Some(other)) => other.to_string().into_bytes(),
    };
    Ok((provider.to_string(), Failure::http(HttpResponse { status, headers, body }), id))
}

fn transport_failure(kind: &str, message: Option<&str>) -> anyhow::Result<Failure> {
    let parsed = TransportKind::parse(kind).ok_or_else(|| {
        let known: Vec<&str> = TransportKind::ALL.iter().map(|k| k.as_str()).collect();
        anyhow!("unknown transport kind `{kind}` (known: {})", known.join(", "))
    })?;
    Ok(Failure::transport(parsed, message.unwrap_or(kind)))
}

fn parse_header(text: &str) -> anyhow::Result<Header> {
    let (name, value) = text.split_once(':').ok_or_else(|| anyhow!("header `{text}` is not `Name: value`"))?;
    Ok(Header { name: name.trim().to_string(), value: value.trim().to_string() })
}

fn to_json(c: &Classified, id: Option<Value>) -> Value {
    let mut obj = Map::new();
    if let Some(id) = id {
        obj.insert("id".into(), id);
    }
    let fields = json!({
        "reason": c.reason.as_str(),
        "retryable": c.retryable,
        "retry_after_ms": c.retry_after_ms,
        "rotate_credential": c.rotate_credential,
        "fall_back": c.fall_back,
        "rule": c.rule,
        "message": c.message,
    });
    if let Value::Object(fields) = fields {
        obj.extend(fields);
    }
    Value::Object(obj)
}
