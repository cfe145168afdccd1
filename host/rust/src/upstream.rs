//! What a driven call reads from: one response, its head first, then its body in pieces as they
//! come, each read bounded by the time the guest allows. A `Transport` opens one per `send`
//! step; the default opening sends the whole request and hands the body back in one piece.

use crate::types::{Header, Outbound, ResponseHead, TransportFailure};

/// What came of one read of a body.
#[derive(Debug)]
pub enum Chunk {
    Data(Vec<u8>),
    End,
    TimedOut,
    Failed(TransportFailure),
}

/// An open response: its head, and its body read piece by piece.
pub trait Upstream: Send {
    fn head(&self) -> &ResponseHead;
    /// The next bytes, or `TimedOut` when none came within `within_ms`.
    fn read(&mut self, within_ms: u64) -> Chunk;
}

/// What came of opening a response.
pub enum Opened {
    Head(Box<dyn Upstream>),
    /// No head within the time allowed.
    TimedOut,
    Failed(TransportFailure),
}

/// A whole response already read, handed out in one piece.
pub struct Whole {
    head: ResponseHead,
    body: Option<Vec<u8>>,
}

impl Whole {
    pub fn new(status: u16, headers: Vec<Header>, body: Vec<u8>) -> Whole {
        Whole { head: ResponseHead { status, headers }, body: Some(body) }
    }
}

impl Upstream for Whole {
    fn head(&self) -> &ResponseHead {
        &self.head
    }

    fn read(&mut self, _within_ms: u64) -> Chunk {
        match self.body.take() {
            Some(body) if !body.is_empty() => Chunk::Data(body),
            _ => Chunk::End,
        }
    }
}

/// The secret header for an outbound request, as the host attaches it.
pub(crate) fn auth_header(out: &Outbound, secret: &str) -> Header {
    Header { name: out.secret_header.clone(), value: format!("{}{secret}", out.secret_prefix) }
}
