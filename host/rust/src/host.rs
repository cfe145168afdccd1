//! What the host does for the guest: the `host` interface's imports (send, clock, events,
//! seed) and the WASI context std needs. The guest decides; this only carries out.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::failover::policy::{host, types};
use crate::clock::Clock;
use crate::events::EventSink;
use crate::limits::MemoryLimit;
use crate::secrets::{Scrub, Secrets};
use crate::types::{Event, Header, HttpResponse, Outbound, TransportFailure};

/// Carries one outbound request. Implementations never panic on network trouble: every
/// problem is a `TransportFailure`.
pub trait Transport: Send {
    /// `auth` is the secret header for `request.route.credential` (absent when the host has no
    /// secret for it); it must be sent along with `request.headers`.
    fn send(&mut self, request: &Outbound, auth: Option<&Header>) -> Result<HttpResponse, TransportFailure>;
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

impl host::Host for Host {
    /// The answer reaches the guest without the secret, even when the provider echoes it.
    fn send(&mut self, request: Outbound) -> Result<HttpResponse, TransportFailure> {
        let auth = self.secrets.get(&request.route.credential).map(|secret| Header {
            name: request.secret_header.clone(),
            value: format!("{}{secret}", request.secret_prefix),
        });
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
