//! Real HTTP for the `send` import, with ureq: the outbound's connect and read timeouts, a new
//! connection when the guest asks for one, bounded bodies, and every network problem turned
//! into a `TransportFailure` value.

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use ureq::Agent;

use crate::host::Transport;
use crate::types::{Header, HttpResponse, Outbound, ResponseHead, TransportFailure, TransportKind};
use crate::upstream::{Chunk, Opened, Upstream};

/// The classifier reads at most this much of an error body (see `http-response` in the WIT).
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// A successful answer larger than this is refused rather than held in memory.
pub const SUCCESS_BODY_LIMIT: u64 = 16 * 1024 * 1024;
/// A streamed body's reader thread gives up on a connection silent this long (the guest has
/// long since abandoned it: its deadline is shorter).
const STREAM_BODY_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Sends over HTTP(S), reusing connections unless an outbound says `fresh-connection`.
pub struct HttpTransport {
    agent: Agent,
}

impl Default for HttpTransport {
    fn default() -> Self {
        HttpTransport { agent: new_agent() }
    }
}

impl HttpTransport {
    pub fn new() -> Self {
        Self::default()
    }
}

fn new_agent() -> Agent {
    // Statuses are answers for the guest to classify, not errors.
    Agent::config_builder().http_status_as_error(false).user_agent(concat!("failover-host/", env!("CARGO_PKG_VERSION"))).build().new_agent()
}

impl HttpTransport {
    fn request(&self, out: &Outbound, auth: Option<&Header>) -> Result<ureq::http::Request<Vec<u8>>, TransportFailure> {
        let mut builder = ureq::http::Request::builder().method(out.method.as_str()).uri(out.url.as_str());
        for h in out.headers.iter().chain(auth) {
            builder = builder.header(h.name.as_str(), h.value.as_str());
        }
        builder.body(out.body.clone()).map_err(|e| failure(TransportKind::Other, format!("cannot build the request: {e}")))
    }
}

impl HttpTransport {
    /// The pooled agent, or a new one (an empty pool: its own connection) when the outbound
    /// asks for a fresh connection. Agents are cheap handles to their pool.
    fn agent_for(&self, out: &Outbound) -> Agent {
        if out.fresh_connection {
            new_agent()
        } else {
            self.agent.clone()
        }
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, out: &Outbound, auth: Option<&Header>) -> Result<HttpResponse, TransportFailure> {
        let request = self.request(out, auth)?;
        let agent = self.agent_for(out);
        let read = Some(Duration::from_millis(out.read_timeout_ms));
        let request = agent
            .configure_request(request)
            .timeout_connect(Some(Duration::from_millis(out.connect_timeout_ms)))
            .timeout_recv_response(read)
            .timeout_recv_body(read)
            .build();

        let mut response = agent.run(request).map_err(map_error)?;
        let status = response.status().as_u16();
        let headers = headers_of(&response);
        let body = if (200..300).contains(&status) {
            response.body_mut().with_config().limit(SUCCESS_BODY_LIMIT).read_to_vec().map_err(map_error)?
        } else {
            let mut body = Vec::new();
            response.body_mut().as_reader().take(ERROR_BODY_LIMIT).read_to_end(&mut body).map_err(|e| map_error(ureq::Error::from(e)))?;
            body
        };
        Ok(HttpResponse { status, headers, body })
    }

    /// A response for a driven call: the head within `within_ms` (connect included), then the
    /// body in pieces as they come, each read bounded by the step that asks for it.
    fn open(&mut self, out: &Outbound, auth: Option<&Header>, within_ms: u64) -> Opened {
        let request = match self.request(out, auth) {
            Ok(r) => r,
            Err(f) => return Opened::Failed(f),
        };
        let agent = self.agent_for(out);
        let within = Duration::from_millis(within_ms.max(1));
        let request = agent
            .configure_request(request)
            .timeout_connect(Some(Duration::from_millis(out.connect_timeout_ms).min(within)))
            .timeout_recv_response(Some(within))
            .timeout_recv_body(Some(STREAM_BODY_LIMIT))
            .build();
        match agent.run(request) {
            Ok(response) => {
                let head = ResponseHead { status: response.status().as_u16(), headers: headers_of(&response) };
                Opened::Head(Box::new(BodyStream::start(head, response.into_body().into_reader())))
            }
            Err(ureq::Error::Timeout(_)) => Opened::TimedOut,
            Err(e) => Opened::Failed(map_error(e)),
        }
    }
}

/// A body read on its own thread, so each read can be bounded in time: a stalled stream is
/// a `TimedOut` the guest decides on, not a blocked caller.
struct BodyStream {
    head: ResponseHead,
    chunks: Receiver<Chunk>,
}

impl BodyStream {
    fn start(head: ResponseHead, mut body: impl Read + Send + 'static) -> BodyStream {
        let (tx, chunks) = sync_channel(8);
        // The thread ends at the body's end, on an error, or at the next read after the
        // receiver is gone; a body stalled for good ends at `STREAM_BODY_LIMIT`.
        let spawned = std::thread::Builder::new().name("failover-body".into()).spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let chunk = match body.read(&mut buf) {
                    Ok(0) => Chunk::End,
                    Ok(n) => Chunk::Data(buf[..n].to_vec()),
                    Err(e) => Chunk::Failed(map_error(ureq::Error::from(e))),
                };
                let last = !matches!(chunk, Chunk::Data(_));
                if tx.send(chunk).is_err() || last {
                    return;
                }
            }
        });
        if let Err(e) = spawned {
            let (tx, chunks) = sync_channel(1);
            let _ = tx.send(Chunk::Failed(failure(TransportKind::Other, format!("cannot start the body reader: {e}"))));
            return BodyStream { head, chunks };
        }
        BodyStream { head, chunks }
    }
}

impl Upstream for BodyStream {
    fn head(&self) -> &ResponseHead {
        &self.head
    }

    fn read(&mut self, within_ms: u64) -> Chunk {
        match self.chunks.recv_timeout(Duration::from_millis(within_ms)) {
            Ok(chunk) => chunk,
            Err(RecvTimeoutError::Timeout) => Chunk::TimedOut,
            Err(RecvTimeoutError::Disconnected) => Chunk::End,
        }
    }
}

fn headers_of(response: &ureq::http::Response<ureq::Body>) -> Vec<Header> {
    response
        .headers()
        .iter()
        .map(|(name, value)| Header { name: name.as_str().to_string(), value: String::from_utf8_lossy(value.as_bytes()).into_owned() })
        .collect()
}

fn failure(kind: TransportKind, message: String) -> TransportFailure {
    TransportFailure { kind, message }
}

/// The transport kind of a ureq error. Messages carry no secret: the secret is only in a header.
fn map_error(e: ureq::Error) -> TransportFailure {
    use std::io::ErrorKind as Io;
    let kind = match &e {
        ureq::Error::Timeout(_) => TransportKind::Timeout,
        ureq::Error::HostNotFound => TransportKind::Dns,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => TransportKind::Tls,
        ureq::Error::BodyExceedsLimit(limit) => {
            return failure(TransportKind::Other, format!("response body larger than {} MiB", limit / (1024 * 1024)));
        }
        ureq::Error::Io(io) => match io.kind() {
            Io::ConnectionRefused => TransportKind::ConnectionRefused,
            Io::TimedOut | Io::WouldBlock => TransportKind::Timeout,
            Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof => TransportKind::Reset,
            _ => TransportKind::Other,
        },
        _ => TransportKind::Other,
    };
    failure(kind, e.to_string())
}
