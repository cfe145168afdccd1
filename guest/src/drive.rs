//! The driven call (WIT `driven-call`): one call that the host carries out step by step while
//! this decides every step (sans-IO). Before commit nothing reaches the caller: a stream's
//! events are held and judged, and an error event, a cut, a stall, a slow first token or an
//! unreadable event is a failure like any HTTP one. The first event with content commits; after
//! it events pass as they come, and a failure resumes the answer or ends it with an error event.
//! Every wait the host measures is folded into the step's `within-ms`, the deadline included.

use crate::classify::{self, BODY_PREFIX};
use crate::engine::Engine;
use crate::env::Env;
use crate::stream::judge::{Format, Judge};
use crate::stream::sse::{Framed, Framer};
use crate::stream::{resume, MAX_EVENT, MAX_HELD, MAX_RESUME_TEXT};
use crate::timefmt;
use crate::types::*;

pub struct DrivenCall {
    request: Request,
    /// What the next send carries: the request, or its continuation after a resume.
    sending: Request,
    /// The request asked for a stream: its head comes fast, so the shorter limit applies.
    streamed: bool,
    deadline_ms: u64,
    deadline_len_ms: u64,
    route: Option<Route>,
    progress: CallProgress,
    fresh: bool,
    attempts: Vec<Attempt>,
    attempt_at: u64,
    phase: Phase,
    /// What a `timed-out` means for the step in flight, and how long it allowed.
    expiry: TransportKind,
    within_ms: u64,
    answer: Answer,
}

/// The answer the caller reads, once committed.
#[derive(Default)]
struct Answer {
    committed: bool,
    format: Option<Format>,
    /// The text so far, for a resume's prefill (bounded; past the bound no resume).
    text: String,
    tool: bool,
    /// A continuation's own preamble is dropped until its first content.
    resuming: bool,
    resumes: u32,
    delivered: u64,
}

enum Phase {
    Ready,
    Sleeping,
    Sending,
    /// A failed status: its body prefix is read for the classifier.
    ErrorBody(ResponseHead, Vec<u8>),
    /// A whole (not streamed) answer, held until its first 64 KiB are judged.
    Whole(ResponseHead, Vec<u8>),
    /// A whole answer judged good: the rest passes as it comes.
    Passing(u16),
    Stream(Box<StreamState>),
    Over,
}

struct StreamState {
    head: ResponseHead,
    framer: Framer,
    judge: Judge,
    held: Vec<u8>,
    first_content_by: u64,
    finished: bool,
}

/// A committed answer is resumed at most this often: a route that keeps cutting its answers
/// is failing, and the caller should hear so.
const MAX_RESUMES: u32 = 2;

/// How one batch of events ended.
enum Outcome {
    More,
    Complete,
    Failed(Failure),
}

impl DrivenCall {
    pub fn new(engine: &Engine, request: Request, timeout_ms: Option<u64>, env: &mut dyn Env) -> DrivenCall {
        let now = env.now_ms();
        let config = engine.config().deadline_ms;
        let deadline_len_ms = timeout_ms.map_or(config, |t| t.clamp(1, config));
        let streamed = serde_json::from_slice::<serde_json::Value>(&request.body)
            .ok()
            .and_then(|v| v.get("stream").and_then(serde_json::Value::as_bool))
            .unwrap_or(false);
        DrivenCall {
            sending: request.clone(),
            request,
            streamed,
            deadline_ms: now.saturating_add(deadline_len_ms),
            deadline_len_ms,
            route: None,
            progress: CallProgress::default(),
            fresh: false,
            attempts: Vec::new(),
            attempt_at: now,
            phase: Phase::Ready,
            expiry: TransportKind::Timeout,
            within_ms: 0,
            answer: Answer::default(),
        }
    }

    pub fn next(&mut self, engine: &mut Engine, input: CallInput, env: &mut dyn Env) -> Step {
        let now = env.now_ms();
        let phase = std::mem::replace(&mut self.phase, Phase::Over);
        match (phase, input.kind) {
            (Phase::Ready, InputKind::Start) => self.start(engine, now, env),
            (Phase::Sleeping, InputKind::Slept) => self.send(engine, now, Vec::new(), "call.send", String::new()),
            (Phase::Sending, InputKind::Head) => match input.head {
                Some(head) => self.on_head(engine, head, now, env),
                None => self.protocol(engine, "a head input without its head", now),
            },
            (Phase::Sending, InputKind::TimedOut) => {
                let what = if self.expiry == TransportKind::Deadline { "the call's deadline" } else { "the limit" };
                let message = format!("no response head within {} ms ({what})", self.within_ms);
                self.fail(engine, transport(self.expiry, message), Vec::new(), now, env)
            }
            (Phase::ErrorBody(head, mut body), InputKind::Data) => {
                body.extend_from_slice(&input.data[..input.data.len().min(BODY_PREFIX.saturating_sub(body.len()))]);
                if body.len() >= BODY_PREFIX {
                    return self.fail(engine, http(head, body), Vec::new(), now, env);
                }
                self.phase = Phase::ErrorBody(head, body);
                self.read(engine, now, Vec::new())
            }
            // The status already says it failed: what came of the body is enough to classify.
            (Phase::ErrorBody(head, body), InputKind::End | InputKind::TimedOut | InputKind::Failed) => {
                self.fail(engine, http(head, body), Vec::new(), now, env)
            }
            (Phase::Whole(head, mut body), InputKind::Data) => {
                body.extend_from_slice(&input.data);
                if body.len() < BODY_PREFIX {
                    self.phase = Phase::Whole(head, body);
                    return self.read(engine, now, Vec::new());
                }
                self.judge_whole(engine, head, body, false, now, env)
            }
            (Phase::Whole(head, body), InputKind::End) => self.judge_whole(engine, head, body, true, now, env),
            (Phase::Passing(status), InputKind::Data) => {
                self.phase = Phase::Passing(status);
                self.answer.delivered += input.data.len() as u64;
                self.read(engine, now, input.data)
            }
            (Phase::Passing(status), InputKind::End) => self.done(status, Vec::new(), "call.answered", "the whole answer came".into()),
            (Phase::Stream(st), InputKind::Data) => self.on_events(engine, st, &input.data, now, env),
            (Phase::Stream(st), InputKind::End) => self.on_stream_end(engine, &st, now, env),
            (Phase::Stream(st), InputKind::TimedOut) if st.finished => {
                let status = st.head.status;
                let why = "the stream said it finished; its terminal event did not come within the grace".to_string();
                self.done(status, Vec::new(), "stream.complete-after-finish", why)
            }
            (Phase::Whole(..) | Phase::Passing(_) | Phase::Stream(_), InputKind::TimedOut) => {
                let message = match self.expiry {
                    TransportKind::Deadline => format!("the call's deadline of {} ms passed while reading", self.deadline_len_ms),
                    TransportKind::FirstContentTimeout => "no content within the first-content limit".to_string(),
                    _ => format!("the response stalled: nothing for {} ms", self.within_ms),
                };
                let failure = transport(self.expiry, message);
                self.fail(engine, failure, Vec::new(), now, env)
            }
            (Phase::Sending | Phase::Whole(..) | Phase::Passing(_) | Phase::Stream(_), InputKind::Failed) => {
                let failure = match input.failure {
                    Some(f) => Failure::Transport(f),
                    None => return self.protocol(engine, "a failed input without its failure", now),
                };
                self.fail(engine, failure, Vec::new(), now, env)
            }
            (phase, kind) => {
                let what = format!("the host reported {kind:?} while the call was {}", phase_name(&phase));
                self.protocol(engine, &what, now)
            }
        }
    }

    fn start(&mut self, engine: &mut Engine, now: u64, env: &mut dyn Env) -> Step {
        match engine.start_call_within(env, Some(self.deadline_ms)) {
            Ok(start) => {
                self.route = Some(start.route);
                self.progress = CallProgress { deadline_ms: Some(self.deadline_ms), ..start.progress };
                if start.delay_ms > 0 {
                    self.phase = Phase::Sleeping;
                    return step(StepKind::Sleep, start.delay_ms, start.rule, start.why);
                }
                self.send(engine, now, Vec::new(), &start.rule, start.why)
            }
            Err(error) => self.give_up(error, Vec::new(), "chain.no-route", "nothing can serve the call".into()),
        }
    }

    fn current(&self) -> Route {
        self.route.clone().unwrap_or_else(|| Route {
            provider: String::new(),
            model: String::new(),
            credential: String::new(),
            position: 0,
        })
    }

    fn send(&mut self, engine: &mut Engine, now: u64, deliver: Vec<u8>, rule: &str, why: String) -> Step {
        let route = self.current();
        let mut out = match engine.prepare(&route, &self.sending) {
            Ok(out) => out,
            Err(message) => {
                let c = classify::verdict(Reason::BadRequest, None, "request.prepare".into(), message.clone());
                self.attempts.push(Attempt { route, at_ms: now, outcome: "not-sent".into(), classified: Some(c), action: None });
                let error = FinalError { reason: Reason::BadRequest, message, retry_at_ms: None, providers: engine.statuses(now) };
                return self.give_up(error, deliver, "request.prepare", "the request cannot be prepared".into());
            }
        };
        out.fresh_connection = self.fresh;
        let t = engine.timeouts(&route.provider);
        let (limit, kind) = if self.streamed { (t.headers_ms, TransportKind::HeadersTimeout) } else { (t.read_ms, TransportKind::Timeout) };
        let within = self.limit(now, limit, kind);
        self.attempt_at = now;
        self.phase = Phase::Sending;
        let why = if why.is_empty() {
            format!(
                "attempt {} on {} with credential {}; its head within {within} ms",
                self.attempts.len() + 1,
                route.label(),
                route.credential
            )
        } else {
            why
        };
        Step {
            outbound: Some(out),
            deliver,
            ..step(StepKind::Send, within, if rule.is_empty() { "call.send".into() } else { rule.to_string() }, why)
        }
    }

    /// A limit, or what is left of the deadline when that comes first (and says so).
    fn limit(&mut self, now: u64, limit_ms: u64, kind: TransportKind) -> u64 {
        let left = self.deadline_ms.saturating_sub(now);
        let (within, expiry) = if left <= limit_ms { (left, TransportKind::Deadline) } else { (limit_ms, kind) };
        self.expiry = expiry;
        self.within_ms = within;
        within
    }

    fn read(&mut self, engine: &Engine, now: u64, deliver: Vec<u8>) -> Step {
        let t = engine.timeouts(&self.current().provider);
        let (limit, kind, rule) = match &self.phase {
            Phase::Stream(st) if st.finished => (t.finish_grace_ms, TransportKind::IdleTimeout, "stream.await-terminal"),
            Phase::Stream(st) if !self.answer.committed || self.answer.resuming => {
                (st.first_content_by.saturating_sub(now).max(1), TransportKind::FirstContentTimeout, "stream.await-content")
            }
            Phase::Stream(_) | Phase::ErrorBody(..) => (t.idle_ms, TransportKind::IdleTimeout, "stream.read"),
            _ => (t.read_ms, TransportKind::Timeout, "call.read"),
        };
        let within = self.limit(now, limit, kind);
        Step { deliver, ..step(StepKind::Read, within, rule.into(), String::new()) }
    }

    fn on_head(&mut self, engine: &mut Engine, head: ResponseHead, now: u64, env: &mut dyn Env) -> Step {
        if !(200..300).contains(&head.status) {
            self.phase = Phase::ErrorBody(head, Vec::new());
            return self.read(engine, now, Vec::new());
        }
        let event_stream = head.header("content-type").is_some_and(|c| c.to_ascii_lowercase().contains("text/event-stream"));
        if event_stream {
            let family = engine.family(&self.current().provider);
            let t = engine.timeouts(&self.current().provider);
            let st = StreamState {
                head,
                framer: Framer::new(MAX_EVENT),
                judge: Judge::new(family),
                held: Vec::new(),
                first_content_by: now.saturating_add(t.first_content_ms),
                finished: false,
            };
            self.phase = Phase::Stream(Box::new(st));
            return self.read(engine, now, Vec::new());
        }
        if self.answer.committed {
            let failure = transport(TransportKind::StreamMalformed, "the continuation answered without an event stream".into());
            return self.fail(engine, failure, Vec::new(), now, env);
        }
        self.phase = Phase::Whole(head, Vec::new());
        self.read(engine, now, Vec::new())
    }

    /// A whole answer's first 64 KiB (or all of it, at its end) decide: an answer commits and
    /// passes on; an error document is a failure.
    fn judge_whole(&mut self, engine: &mut Engine, head: ResponseHead, body: Vec<u8>, ended: bool, now: u64, env: &mut dyn Env) -> Step {
        let response = HttpResponse { status: head.status, headers: head.headers.clone(), body };
        if !classify::succeeded(&response) {
            return self.fail(engine, Failure::Http(response), Vec::new(), now, env);
        }
        let status = head.status;
        let commit = self.commit(engine, head, env);
        self.answer.delivered += response.body.len() as u64;
        let mut s = if ended {
            self.done(status, response.body, "call.answered", "the whole answer came and is no error".into())
        } else {
            self.phase = Phase::Passing(status);
            self.read(engine, now, response.body)
        };
        s.commit = Some(commit);
        s
    }

    /// The route answered: the caller gets the head (without the framing headers of the
    /// upstream body, which the guest may reshape) and everything from here on.
    fn commit(&mut self, engine: &mut Engine, head: ResponseHead, env: &mut dyn Env) -> ResponseHead {
        self.answer.committed = true;
        engine.on_success(&self.current(), env);
        let hop = ["content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"];
        let headers = head.headers.into_iter().filter(|h| !hop.iter().any(|n| h.name.eq_ignore_ascii_case(n))).collect();
        ResponseHead { status: head.status, headers }
    }

    fn on_events(&mut self, engine: &mut Engine, mut st: Box<StreamState>, data: &[u8], now: u64, env: &mut dyn Env) -> Step {
        let mut framed = Vec::new();
        st.framer.push(data, &mut framed);
        let mut deliver = Vec::new();
        let mut commit = None;
        let mut outcome = Outcome::More;
        for f in framed {
            let ev = match f {
                Framed::Oversized { bytes } if self.answer.committed && !self.answer.resuming => {
                    self.dropped(env, now, &format!("an event of {bytes} bytes, over the bound of {MAX_EVENT}"));
                    continue;
                }
                Framed::Oversized { bytes } => {
                    outcome =
                        Outcome::Failed(transport(TransportKind::StreamMalformed, format!("an event of {bytes} bytes before any content")));
                    break;
                }
                Framed::Event(ev) => ev,
            };
            let j = st.judge.judge(&ev);
            self.answer.format = st.judge.format.or(self.answer.format);
            if j.error {
                let failure = http(st.head.clone(), ev.raw);
                outcome = Outcome::Failed(failure);
                break;
            }
            let live = self.answer.committed && !self.answer.resuming;
            if let Some(why) = j.malformed {
                if live {
                    self.dropped(env, now, why);
                    continue;
                }
                outcome = Outcome::Failed(transport(TransportKind::StreamMalformed, format!("{why} (before any content)")));
                break;
            }
            if ev.comment_only {
                continue;
            }
            if self.answer.text.len() + j.text.len() <= MAX_RESUME_TEXT {
                self.answer.text.push_str(&j.text);
            } else {
                self.answer.tool = true; // too long to prefill: never resumed
            }
            self.answer.tool |= j.tool;
            st.finished |= j.finish;
            if !self.answer.committed {
                st.held.extend_from_slice(&ev.raw);
                if j.content || j.terminal {
                    commit = Some(self.commit(engine, st.head.clone(), env));
                    deliver.append(&mut st.held);
                } else if st.held.len() > MAX_HELD {
                    outcome =
                        Outcome::Failed(transport(TransportKind::StreamMalformed, format!("no content in the first {MAX_HELD} bytes")));
                    break;
                }
            } else if self.answer.resuming {
                // The continuation's own framing (its message start) is dropped; its content joins.
                if j.content {
                    self.answer.resuming = false;
                    deliver.extend_from_slice(&ev.raw);
                }
            } else {
                deliver.extend_from_slice(&ev.raw);
            }
            if j.terminal {
                outcome = Outcome::Complete;
                break;
            }
        }
        self.answer.delivered += deliver.len() as u64;
        let status = st.head.status;
        let mut s = match outcome {
            Outcome::Complete => self.done(status, deliver, "stream.complete", "the stream ended with its terminal event".into()),
            Outcome::Failed(failure) => self.fail(engine, failure, deliver, now, env),
            Outcome::More => {
                self.phase = Phase::Stream(st);
                self.read(engine, now, deliver)
            }
        };
        if commit.is_some() {
            s.commit = commit;
            if s.rule == "stream.await-content" || s.rule == "stream.read" {
                s.rule = "stream.commit".into();
                s.why = "the first event with content came: the answer is committed and passes on as it comes".into();
            }
        }
        s
    }

    fn on_stream_end(&mut self, engine: &mut Engine, st: &StreamState, now: u64, env: &mut dyn Env) -> Step {
        let status = st.head.status;
        let generic = st.judge.format.is_none_or(|f| f == Format::Generic);
        if st.finished || (generic && self.answer.committed && !self.answer.resuming) {
            let why = if st.finished { "the stream finished and closed" } else { "a generic event stream closed cleanly" };
            return self.done(status, Vec::new(), "stream.complete", why.into());
        }
        let message = if self.answer.committed {
            format!("the stream ended after {} bytes of the answer without its end signal", self.answer.delivered)
        } else {
            "the stream ended before any content".to_string()
        };
        self.fail(engine, transport(TransportKind::StreamCut, message), Vec::new(), now, env)
    }

    fn dropped(&self, env: &mut dyn Env, now: u64, why: &str) {
        let message = format!("dropped an event of the answer from {}: {why}", self.current().label());
        env.emit(Event {
            kind: EventKind::StreamEventDropped,
            at_ms: now,
            route: self.route.clone(),
            rule: "stream.event-dropped".into(),
            message,
        });
    }

    /// An attempt failed: before commit the decision table says what next; after it, resume
    /// or end the answer with an error event.
    fn fail(&mut self, engine: &mut Engine, failure: Failure, deliver: Vec<u8>, now: u64, env: &mut dyn Env) -> Step {
        if self.answer.committed {
            return self.fail_committed(engine, failure, deliver, now, env);
        }
        let route = self.current();
        let action = engine.on_failure(&route, &failure, Some(self.progress.clone()), env);
        self.attempts.push(Attempt {
            route,
            at_ms: self.attempt_at,
            outcome: failure.outcome(),
            classified: Some(action.classified.clone()),
            action: Some(action.clone()),
        });
        self.follow(engine, action, deliver, now)
    }

    fn follow(&mut self, engine: &mut Engine, action: Action, deliver: Vec<u8>, now: u64) -> Step {
        match (action.kind, action.route.clone()) {
            (ActionKind::GiveUp, _) | (_, None) => {
                let error = engine.error_of(&action, now);
                self.give_up(error, deliver, &action.rule, action.why)
            }
            (_, Some(next)) => {
                self.progress = action.progress;
                self.fresh = action.fresh_connection;
                self.route = Some(next);
                if action.delay_ms > 0 {
                    self.phase = Phase::Sleeping;
                    return Step { deliver, ..step(StepKind::Sleep, action.delay_ms, action.rule, action.why) };
                }
                self.send(engine, now, deliver, &action.rule, action.why)
            }
        }
    }

    /// A committed answer failed: the failure is recorded like its HTTP equivalent; the answer
    /// goes on from a continuation on the same route when that may resume and is still usable
    /// (it has just shown it answers), else it ends with an error event in its own format.
    fn fail_committed(&mut self, engine: &mut Engine, failure: Failure, deliver: Vec<u8>, now: u64, env: &mut dyn Env) -> Step {
        let route = self.current();
        let classified = engine.record_failure_only(&route, &failure, env);
        let plan = self.resumable(engine, &route, now).and_then(|()| {
            let next = engine.usable_now(route.position, now).ok_or_else(|| format!("{} is not usable now", route.label()))?;
            let fields = engine.resume_fields(&next.provider).cloned().unwrap_or_default();
            let request = resume::continuation(&self.request, &self.answer.text, engine.family(&next.provider), &fields)
                .ok_or_else(|| "the request has no messages to extend".to_string())?;
            Ok((next, request))
        });
        self.progress.attempts = self.progress.attempts.saturating_add(1);
        let (next, request) = match plan {
            Ok(p) => p,
            Err(why_not) => {
                self.attempts.push(Attempt {
                    route: route.clone(),
                    at_ms: self.attempt_at,
                    outcome: failure.outcome(),
                    classified: Some(classified.clone()),
                    action: None,
                });
                return self.end_in_band(engine, &route, &classified, &why_not, deliver, env);
            }
        };
        let why = format!(
            "the answer from {} failed after {} bytes ({}); resuming on {} with credential {} from the {} characters so far",
            route.label(),
            self.answer.delivered,
            classified.message,
            next.label(),
            next.credential,
            self.answer.text.chars().count()
        );
        let action = Action {
            kind: ActionKind::Retry,
            route: Some(next.clone()),
            delay_ms: 0,
            fresh_connection: true,
            classified: classified.clone(),
            progress: self.progress.clone(),
            rule: "stream.resume".into(),
            why: why.clone(),
            error: None,
        };
        self.attempts.push(Attempt {
            route,
            at_ms: self.attempt_at,
            outcome: failure.outcome(),
            classified: Some(classified),
            action: Some(action),
        });
        env.emit(Event {
            kind: EventKind::StreamResumed,
            at_ms: now,
            route: Some(next.clone()),
            rule: "stream.resume".into(),
            message: why.clone(),
        });
        self.sending = request;
        self.answer.resuming = true;
        self.answer.resumes += 1;
        self.route = Some(next);
        self.fresh = true;
        self.send(engine, now, deliver, "stream.resume", why)
    }

    /// Ends a committed answer: a stream with an error event the caller's SDK raises.
    fn end_in_band(
        &mut self,
        engine: &Engine,
        route: &Route,
        classified: &Classified,
        why_not: &str,
        mut deliver: Vec<u8>,
        env: &mut dyn Env,
    ) -> Step {
        let now = env.now_ms();
        let message = format!(
            "The answer from {} broke off after {} bytes ({}); it is incomplete and was not resumed: {why_not}.",
            route.label(),
            self.answer.delivered,
            classified.message
        );
        // A stream says it in its own format; a whole answer (no format) has no in-band way, so
        // nothing is delivered and the host fails the caller's read instead.
        if let Some(format) = self.answer.format {
            deliver.extend(resume::error_event(format, classified.reason, &message));
        }
        env.emit(Event {
            kind: EventKind::StreamFailed,
            at_ms: now,
            route: Some(route.clone()),
            rule: "stream.failed".into(),
            message: message.clone(),
        });
        let error = FinalError { reason: classified.reason, message, retry_at_ms: None, providers: engine.statuses(now) };
        self.give_up(error, deliver, "stream.failed", "a committed answer failed and could not be resumed".into())
    }

    /// Whether a committed answer may go on from a continuation: a stream of a known format
    /// whose text is not too long, no tool call begun, a provider that accepts a prefill, and
    /// time left.
    fn resumable(&self, engine: &Engine, route: &Route, now: u64) -> Result<(), String> {
        if !matches!(self.answer.format, Some(Format::OpenAiChat | Format::Anthropic)) {
            return Err("only chat-completions and Messages streams are resumed".into());
        }
        if self.answer.tool {
            return Err("a tool call had begun (or the text is too long to prefill)".into());
        }
        if engine.resume_fields(&route.provider).is_none() {
            return Err(format!("{} cannot continue a partial answer (no `resume` in its config)", route.provider));
        }
        if now >= self.deadline_ms {
            return Err(format!("the call's deadline of {} passed", timefmt::duration(self.deadline_len_ms)));
        }
        if self.answer.resumes >= MAX_RESUMES {
            return Err(format!("it was resumed {MAX_RESUMES} times already"));
        }
        let max = engine.config().retry.max_attempts;
        if self.progress.attempts >= max {
            return Err(format!("{max} attempts made, the call's limit (retry.max_attempts)"));
        }
        Ok(())
    }

    fn done(&mut self, status: u16, deliver: Vec<u8>, rule: &str, why: String) -> Step {
        self.phase = Phase::Over;
        let route = self.current();
        self.attempts.push(Attempt {
            route: route.clone(),
            at_ms: self.attempt_at,
            outcome: Decimal::of(status.into()).as_ref().to_string(),
            classified: None,
            action: None,
        });
        Step { deliver, attempts: std::mem::take(&mut self.attempts), route: Some(route), ..step(StepKind::Done, 0, rule.into(), why) }
    }

    fn give_up(&mut self, mut error: FinalError, deliver: Vec<u8>, rule: &str, why: String) -> Step {
        self.phase = Phase::Over;
        if !self.attempts.is_empty() {
            let tried: Vec<String> =
                self.attempts.iter().map(|a| format!("{}#{} {}", a.route.label(), a.route.credential, a.outcome)).collect();
            error.message = format!("{} Tried: {}.", error.message, tried.join(", "));
        }
        Step { deliver, error: Some(error), attempts: std::mem::take(&mut self.attempts), ..step(StepKind::GiveUp, 0, rule.into(), why) }
    }

    /// The host broke the step protocol: a clear error, never a trap.
    fn protocol(&mut self, engine: &Engine, what: &str, now: u64) -> Step {
        let message = format!("the host did not follow the driven call's steps: {what}");
        let error = FinalError { reason: Reason::Unknown, message: message.clone(), retry_at_ms: None, providers: engine.statuses(now) };
        self.give_up(error, Vec::new(), "host.protocol", message)
    }
}

fn step(kind: StepKind, within_ms: u64, rule: String, why: String) -> Step {
    Step { kind, outbound: None, within_ms, commit: None, deliver: Vec::new(), error: None, attempts: Vec::new(), route: None, rule, why }
}

fn transport(kind: TransportKind, message: String) -> Failure {
    Failure::Transport(TransportFailure { kind, message })
}

fn http(head: ResponseHead, body: Vec<u8>) -> Failure {
    Failure::Http(HttpResponse { status: head.status, headers: head.headers, body })
}

fn phase_name(phase: &Phase) -> &'static str {
    match phase {
        Phase::Ready => "not started",
        Phase::Sleeping => "waiting",
        Phase::Sending => "waiting for a response head",
        Phase::ErrorBody(..) | Phase::Whole(..) | Phase::Passing(_) | Phase::Stream(_) => "reading a body",
        Phase::Over => "over",
    }
}
