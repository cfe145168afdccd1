//! What the host does for the guest: the `host` interface's imports (send, clock, events,
//! seed) and the WASI context std needs. The guest decides; this only carries out. These are
//! contract 0.3.0's; older versions' imports convert and delegate here (`bindings::convert`).

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::v0_3::failover::policy::{host, types};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::limits::MemoryLimit;
use crate::secrets::{Scrub, Secrets, StreamScrub};
use crate::types::{Event, Header, HttpResponse, Outbound, ResponseHead, TransportFailure};

use crate::upstream::{auth_header, Chunk, Opened, Upstream, Whole};

/// Carries one outbound request. Implementations never panic on network trouble: every
/// problem is a `TransportFailure`.
pub trait Transport: Send {
    /// `auth` is the secret header for `request.route.credential` (absent when the host has no
    /// secret for it); it must be sent along with `request.headers`.
    fn send(&mut self, request: &Outbound, auth: Option<&Header>) -> Result<HttpResponse, TransportFailure>;

    /// Sends for a driven call and hands back the response once its head came, within
    /// `within_ms`, for its body to be read piece by piece. By default: `send`, then the whole
    /// body in one piece (a transport that cannot stream still serves driven calls).
    fn open(&mut self, request: &Outbound, auth: Option<&Header>, within_ms: u64) -> Opened {
        let _ = within_ms;
        match self.send(request, auth) {
            Ok(r) => Opened::Head(Box::new(Whole::new(r.status, r.headers, r.body))),
            Err(f) => Opened::Failed(f),
        }
    }
}

/// The host side of one instance: how it sends, which secrets it holds, its clock, where
/// events go and the jitter seed.
pub struct Host {
    transport: Box<dyn Transport>,
    secrets: Secrets,
    clock: Clock,
    events: Box<dyn EventSink>,
    seed: Option<u64>,
    /// Events emitted so far: a select or start-call that emitted none changed no state (a WIT promise).
    emitted: u64,
}

impl Host {
    /// A host that sends with `transport`, with no secrets, the system clock, events
    /// discarded and an entropy seed; the builder methods below change each.
    pub fn new(transport: impl Transport + 'static) -> Self {
        Host {
            transport: Box::new(transport),
            secrets: Secrets::default(),
            clock: Clock::System,
            events: Box::new(|_: Event| {}),
            seed: None,
            emitted: 0,
        }
    }

    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_events(mut self, sink: impl EventSink + 'static) -> Self {
        self.events = Box::new(sink);
        self
    }

    /// What the `seed` import returns (the guest uses it only when its config has no seed).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

impl Host {
    fn auth(&self, request: &Outbound) -> Option<Header> {
        self.secrets.get(&request.route.credential).map(|secret| auth_header(request, secret))
    }

    /// Opens a response for a driven call's `send` step, with the secret attached, and takes
    /// the secret back out of everything that comes back (head, body, transport errors).
    pub(crate) fn open(&mut self, request: &Outbound, within_ms: u64) -> Opened {
        let auth = self.auth(request);
        let scrub = self.secrets.scrub_for(&request.route.credential);
        match self.transport.open(request, auth.as_ref(), within_ms) {
            Opened::Head(upstream) => Opened::Head(Box::new(Scrubbed::new(upstream, &scrub))),
            Opened::Failed(f) => Opened::Failed(scrub.transport(f)),
            Opened::TimedOut => Opened::TimedOut,
        }
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }
}

impl host::Host for Host {
    /// The answer reaches the guest without the secret, even when the provider echoes it.
    fn send(&mut self, request: Outbound) -> Result<HttpResponse, TransportFailure> {
        let auth = self.auth(&request);
        let sent = self.transport.send(&request, auth.as_ref());
        self.secrets.scrub_for(&request.route.credential).outcome(sent)
    }

    fn now_ms(&mut self) -> u64 {
        self.clock.now_ms()
    }

    fn sleep_ms(&mut self, ms: u64) {
        self.clock.sleep_ms(ms)
    }

    fn emit(&mut self, event: Event) {
        self.emitted += 1;
        self.events.emit(event)
    }

    fn seed(&mut self) -> u64 {
        self.seed.unwrap_or_else(entropy)
    }
}

impl types::Host for Host {}

impl Host {
    pub(crate) fn emitted(&self) -> u64 {
        self.emitted
    }

    /// What to take out of answers to requests sent with `credential`'s secret.
    pub(crate) fn scrub_for(&self, credential: &str) -> Scrub {
        self.secrets.scrub_for(credential)
    }
}

/// A response whose head and body have the secret the host attached taken out, also when a
/// provider echoes it split across reads.
struct Scrubbed {
    upstream: Box<dyn Upstream>,
    head: ResponseHead,
    scrub: Scrub,
    body: Option<StreamScrub>,
    /// The end came while bytes were held back: they go first, then the end.
    ended: bool,
}

impl Scrubbed {
    fn new(upstream: Box<dyn Upstream>, scrub: &Scrub) -> Scrubbed {
        let head = upstream.head();
        let headers =
            head.headers.iter().map(|h| Header { name: scrub.text(h.name.clone()), value: scrub.text(h.value.clone()) }).collect();
        let head = ResponseHead { status: head.status, headers };
        Scrubbed { upstream, head, scrub: scrub.clone(), body: Some(scrub.stream()), ended: false }
    }
}

impl Upstream for Scrubbed {
    fn head(&self) -> &ResponseHead {
        &self.head
    }

    fn read(&mut self, within_ms: u64) -> Chunk {
        if self.ended {
            return Chunk::End;
        }
        loop {
            match self.upstream.read(within_ms) {
                Chunk::Data(data) => {
                    let out = self.body.as_mut().map(|b| b.push(&data)).unwrap_or(data);
                    // All of it may be held back as a possible start of the secret: read on.
                    if !out.is_empty() {
                        return Chunk::Data(out);
                    }
                }
                Chunk::End => {
                    let rest = self.body.take().map(StreamScrub::finish).unwrap_or_default();
                    if rest.is_empty() {
                        return Chunk::End;
                    }
                    self.ended = true;
                    return Chunk::Data(rest);
                }
                Chunk::Failed(f) => return Chunk::Failed(self.scrub.transport(f)),
                Chunk::TimedOut => return Chunk::TimedOut,
            }
        }
    }
}

/// A random u64 from std's per-process hash keys and the time: jitter needs no better.
fn entropy() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Clock::System.now_ms());
    h.finish()
}

/// Everything one Store holds: the host, its memory limits, and a WASI context with no env,
/// args, preopens or stdio (std's imports need it; the guest gets nothing through it).
pub(crate) struct StoreData {
    pub(crate) host: Host,
    pub(crate) limits: MemoryLimit,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl StoreData {
    pub(crate) fn new(host: Host, memory_bytes: usize) -> Self {
        StoreData { host, limits: MemoryLimit(memory_bytes), wasi: WasiCtx::builder().build(), table: ResourceTable::new() }
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
