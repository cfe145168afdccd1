//! Carries out a driven call (WIT `driven-call`): the guest decides every step; this sends,
//! reads with the time each step allows, sleeps, and hands the caller what the guest delivers
//! once it commits. Nothing reaches the caller before the commit, so a failure before the first
//! content is retried or fallen back from unseen; after it the caller reads the answer as it
//! comes, and a failure ends it with the error event the guest wrote (or a read error for a
//! whole answer, which has no in-band way to say it).

use std::io::{self, Read};

use crate::contract::Contract;
use crate::error::Error;
use crate::instance::{DrivenCall, Engine, Instance};
use crate::types::{Attempt, CallInput, CallOptions, FinalError, InputKind, Request, ResponseHead, Route, Step, StepKind};
use crate::upstream::{Chunk, Opened, Upstream};

/// How a driven call began.
pub enum Begun<'a> {
    /// The guest committed to an answer: read it from `Streamed`.
    Answer(Box<Streamed<'a>>),
    /// It failed before anything reached the caller.
    Failed { error: FinalError, attempts: Vec<Attempt> },
}

/// How a committed answer ended (after `Streamed` read to its end).
#[derive(Debug, Clone)]
pub struct Ended {
    pub route: Option<Route>,
    pub attempts: Vec<Attempt>,
    /// Set when the answer broke off; the caller has read the error event that says so.
    pub error: Option<FinalError>,
}

/// A committed answer, read as it arrives.
pub struct Streamed<'a> {
    instance: &'a mut Instance,
    call: Option<DrivenCall>,
    upstream: Option<Box<dyn Upstream>>,
    /// The step to carry out once `buffer` is read.
    next: Option<Step>,
    buffer: Vec<u8>,
    pos: usize,
    head: ResponseHead,
    ended: Option<Ended>,
    /// The last step's end was said in the answer itself (an error event).
    in_band: bool,
}

impl Instance {
    /// A call carried out step by step by this host: the caller gets the answer's head once the
    /// guest commits, then reads the answer as it arrives (`Streamed` is `io::Read`).
    /// A policy built for contract 0.1 has no driven call: its guest-driven `call` answers
    /// whole, and the caller reads that answer (no stream judgement, no deadline of its own).
    pub fn stream(&mut self, engine: &Engine, request: &Request, options: &CallOptions) -> Result<Begun<'_>, Error> {
        if self.contract() == Contract::V0_1 {
            return self.whole(engine, request);
        }
        let call = self.begin(engine, request, options)?;
        let mut upstream: Option<Box<dyn Upstream>> = None;
        let first = self.next(&call, &CallInput { kind: InputKind::Start, head: None, data: Vec::new(), failure: None });
        let mut step = match first {
            Ok(step) => step,
            Err(e) => {
                let _ = self.drop_call(call);
                return Err(e);
            }
        };
        loop {
            if let Some(head) = step.commit.take() {
                let buffer = std::mem::take(&mut step.deliver);
                let in_band = !buffer.is_empty();
                return Ok(Begun::Answer(Box::new(Streamed {
                    instance: self,
                    call: Some(call),
                    upstream,
                    next: Some(step),
                    buffer,
                    pos: 0,
                    head,
                    ended: None,
                    in_band,
                })));
            }
            if matches!(step.kind, StepKind::Done | StepKind::GiveUp) {
                self.drop_call(call)?;
                let error = step.error.unwrap_or_else(|| no_commit_error(&step.why));
                return Ok(Begun::Failed { error, attempts: step.attempts });
            }
            let input = carry_out(self, &mut upstream, step);
            step = match self.next(&call, &input) {
                Ok(step) => step,
                Err(e) => {
                    let _ = self.drop_call(call);
                    return Err(e);
                }
            };
        }
    }
}

impl Instance {
    fn whole(&mut self, engine: &Engine, request: &Request) -> Result<Begun<'_>, Error> {
        let success = match self.call(engine, request)? {
            Ok(s) => s,
            Err(f) => return Ok(Begun::Failed { error: f.error, attempts: f.attempts }),
        };
        let hop = ["content-length", "content-encoding", "transfer-encoding", "connection"];
        let headers = success.response.headers.into_iter().filter(|h| !hop.iter().any(|n| h.name.eq_ignore_ascii_case(n))).collect();
        let done = Step {
            kind: StepKind::Done,
            outbound: None,
            within_ms: 0,
            commit: None,
            deliver: Vec::new(),
            error: None,
            attempts: success.attempts,
            route: Some(success.route),
            rule: "call.answered".into(),
            why: "a contract 0.1 policy answered whole".into(),
        };
        Ok(Begun::Answer(Box::new(Streamed {
            instance: self,
            call: None,
            upstream: None,
            next: Some(done),
            buffer: success.response.body,
            pos: 0,
            head: ResponseHead { status: success.response.status, headers },
            ended: None,
            in_band: false,
        })))
    }
}

/// A done without a commit never comes from a well-formed guest; said plainly if it does.
fn no_commit_error(why: &str) -> FinalError {
    FinalError {
        reason: crate::types::Reason::Unknown,
        message: format!("the policy ended the call without an answer or an error: {why}"),
        retry_at_ms: None,
        providers: Vec::new(),
    }
}

/// Does one step and says what came of it.
fn carry_out(instance: &mut Instance, upstream: &mut Option<Box<dyn Upstream>>, step: Step) -> CallInput {
    let input = |kind| CallInput { kind, head: None, data: Vec::new(), failure: None };
    match step.kind {
        StepKind::Send => {
            *upstream = None;
            let Some(out) = step.outbound else {
                return failed("the policy asked for a send without a request");
            };
            match instance.host_mut().open(&out, step.within_ms) {
                Opened::Head(u) => {
                    let head = u.head().clone();
                    *upstream = Some(u);
                    CallInput { head: Some(head), ..input(InputKind::Head) }
                }
                Opened::TimedOut => input(InputKind::TimedOut),
                Opened::Failed(f) => CallInput { failure: Some(f), ..input(InputKind::Failed) },
            }
        }
        StepKind::Read => match upstream.as_mut().map(|u| u.read(step.within_ms)) {
            Some(Chunk::Data(data)) => CallInput { data, ..input(InputKind::Data) },
            Some(Chunk::End) => input(InputKind::End),
            Some(Chunk::TimedOut) => input(InputKind::TimedOut),
            Some(Chunk::Failed(f)) => CallInput { failure: Some(f), ..input(InputKind::Failed) },
            None => failed("the policy asked for a read with no response open"),
        },
        StepKind::Sleep => {
            *upstream = None;
            instance.host_mut().clock().sleep_ms(step.within_ms);
            input(InputKind::Slept)
        }
        StepKind::Done | StepKind::GiveUp => failed("the call is over"),
    }
}

fn failed(message: &str) -> CallInput {
    let failure = crate::types::TransportFailure { kind: crate::types::TransportKind::Other, message: message.to_string() };
    CallInput { kind: InputKind::Failed, head: None, data: Vec::new(), failure: Some(failure) }
}

impl Streamed<'_> {
    /// The status and headers the caller gets.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// How the answer ended, once it has been read to its end.
    pub fn ended(&self) -> Option<&Ended> {
        self.ended.as_ref()
    }

    /// Reads the rest of the answer into memory, then says how it ended.
    pub fn finish(mut self) -> io::Result<(Vec<u8>, Ended)> {
        let mut body = Vec::new();
        self.read_to_end(&mut body)?;
        let ended = self.ended.clone().ok_or_else(|| io::Error::other("the answer did not end"))?;
        Ok((body, ended))
    }

    fn end(&mut self, step: Step) -> io::Result<usize> {
        if let Some(call) = self.call.take() {
            self.instance.drop_call(call).map_err(io::Error::other)?;
        }
        self.upstream = None;
        let message = step.error.as_ref().map(|e| e.message.clone());
        self.ended = Some(Ended { route: step.route, attempts: step.attempts, error: step.error });
        match message {
            // A whole answer has no error event: its reader must not take the cut body for all of it.
            Some(m) if step.kind == StepKind::GiveUp && !self.in_band => Err(io::Error::new(io::ErrorKind::UnexpectedEof, m)),
            _ => Ok(0),
        }
    }
}

impl Read for Streamed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.buffer.len() {
                let n = buf.len().min(self.buffer.len() - self.pos);
                buf[..n].copy_from_slice(&self.buffer[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            let Some(step) = self.next.take() else {
                return Ok(0);
            };
            if matches!(step.kind, StepKind::Done | StepKind::GiveUp) {
                return self.end(step);
            }
            let Some(call) = self.call.as_ref() else {
                return Ok(0);
            };
            let input = carry_out(self.instance, &mut self.upstream, step);
            let mut next = self.instance.next(call, &input).map_err(io::Error::other)?;
            self.buffer = std::mem::take(&mut next.deliver);
            self.pos = 0;
            // A last step's bytes (the error event, the last events) are read first, then it ends.
            self.in_band = !self.buffer.is_empty();
            self.next = Some(next);
        }
    }
}

impl Drop for Streamed<'_> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let _ = self.instance.drop_call(call);
        }
    }
}
