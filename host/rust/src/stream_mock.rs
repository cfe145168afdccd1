//! A scripted provider on 127.0.0.1 that answers in real time, piece by piece: event streams
//! that are slow, cut, stalled, silent or start with an error event, for the demo and the
//! end-to-end tests. It writes HTTP/1.1 by hand (one connection per request, closed after the
//! answer) so that every byte leaves when the script says, with no buffering in between.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One piece of an answer's body.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes written and flushed at once.
    Bytes(Vec<u8>),
    /// A pause before the next piece.
    Wait(Duration),
}

impl Piece {
    /// An SSE `data:` event.
    pub fn data(data: &str) -> Piece {
        Piece::Bytes(format!("data: {data}\n\n").into_bytes())
    }

    /// An SSE event with a name.
    pub fn event(name: &str, data: &str) -> Piece {
        Piece::Bytes(format!("event: {name}\ndata: {data}\n\n").into_bytes())
    }

    pub fn wait_ms(ms: u64) -> Piece {
        Piece::Wait(Duration::from_millis(ms))
    }
}

/// How the provider answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// Before the head is written.
    pub head_delay: Duration,
    /// Never answer: hold the connection open until the mock stops.
    pub silent: bool,
    pub pieces: Vec<Piece>,
}

impl Reply {
    pub fn stream(pieces: Vec<Piece>) -> Reply {
        Reply { status: 200, content_type: "text/event-stream".into(), head_delay: Duration::ZERO, silent: false, pieces }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "application/json".into(),
            head_delay: Duration::ZERO,
            silent: false,
            pieces: vec![Piece::Bytes(body.as_bytes().to_vec())],
        }
    }

    pub fn silent() -> Reply {
        Reply { silent: true, ..Reply::stream(Vec::new()) }
    }

    /// An OpenAI chat-completions stream of `words`, `gap` apart, finished and `[DONE]`.
    pub fn openai_words(words: &[&str], gap: Duration) -> Reply {
        let mut pieces = vec![Piece::data(&chunk(r#"{"role":"assistant"}"#, "null"))];
        for w in words {
            pieces.push(Piece::Wait(gap));
            pieces.push(Piece::data(&chunk(&serde_json::json!({ "content": w }).to_string(), "null")));
        }
        pieces.push(Piece::data(&chunk("{}", "\"stop\"")));
        pieces.push(Piece::data("[DONE]"));
        Reply::stream(pieces)
    }
}

/// One OpenAI chat-completions chunk.
pub fn chunk(delta: &str, finish_reason: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-mock","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish_reason}}}]}}"#
    )
}

/// One request the mock received: the provider (first path segment) and when.
#[derive(Debug, Clone)]
pub struct Received {
    pub provider: String,
    pub at: Instant,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    /// Per provider: replies in turn, the last one repeated.
    replies: BTreeMap<String, VecDeque<Reply>>,
    received: Vec<Received>,
}

pub struct StreamMock {
    pub port: u16,
    script: Arc<Mutex<Script>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StreamMock {
    pub fn start() -> std::io::Result<StreamMock> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let script = Arc::new(Mutex::new(Script::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (script, stop) = (script.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (script, stop) = (script.clone(), stop.clone());
                    std::thread::spawn(move || serve(conn, &script, &stop));
                }
            })
        };
        Ok(StreamMock { port, script, stop, thread: Some(thread) })
    }

    /// The base URL of `provider` on this mock.
    pub fn base_url(&self, provider: &str) -> String {
        format!("http://127.0.0.1:{}/{provider}/v1", self.port)
    }

    /// `provider` answers with these replies in turn, the last one from then on.
    pub fn script(&self, provider: &str, replies: Vec<Reply>) {
        self.lock().replies.insert(provider.to_string(), replies.into());
    }

    pub fn received(&self, provider: &str) -> Vec<Received> {
        self.lock().received.iter().filter(|r| r.provider == provider).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for StreamMock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, script: &Mutex<Script>, stop: &AtomicBool) {
    let Ok(mut writer) = conn.try_clone() else { return };
    let mut reader = BufReader::new(conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let provider = path.trim_start_matches('/').split('/').next().unwrap_or("").to_string();
    let reply = {
        let mut s = script.lock().unwrap_or_else(PoisonError::into_inner);
        s.received.push(Received { provider: provider.clone(), at: Instant::now(), body });
        match s.replies.get_mut(&provider) {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => None,
        }
    };
    let reply = reply.unwrap_or_else(|| Reply::status(404, r#"{"error":{"message":"no such provider in the mock"}}"#));
    if reply.silent {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    std::thread::sleep(reply.head_delay);
    let head = format!(
        "HTTP/1.1 {} Mock\r\ncontent-type: {}\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
        reply.status, reply.content_type
    );
    if writer.write_all(head.as_bytes()).and_then(|_| writer.flush()).is_err() {
        return;
    }
    for piece in reply.pieces {
        match piece {
            Piece::Bytes(b) => {
                if writer.write_all(&b).and_then(|_| writer.flush()).is_err() {
                    return;
                }
            }
            Piece::Wait(d) => std::thread::sleep(d),
        }
    }
}
