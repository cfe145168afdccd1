//! A running policy that can be replaced while it serves. `PolicyHost` owns the one engine (the
//! policy's state) that every decision must see, serialises decisions on it, swaps in a new
//! component without losing a decision or a state change, and contains a failing policy.
//!
//! One instance behind a mutex, not a pool: decisions read and write one shared state
//! (cooldowns, circuits, budgets), so a pool would have to merge snapshots after every call to
//! decide the same way, and a decision costs microseconds, far less than the network call it
//! steers. The mutex is also the switch: a swap takes it, so a decision in flight finishes on
//! the instance it started on, and the snapshot the new policy restores already holds it.

use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::cache::{sha256_hex, ArtifactCache};
use crate::clock::Clock;
use crate::error::Error;
use crate::events::EventSink;
use crate::fault::{self, Supervision, FAULT_RULE};
use crate::host::Host;
use crate::instance::{Engine, Instance};
use crate::policy::{Policy, Tier};
use crate::store::{Fleet, FleetStats, Refreshed, StoreError};
use crate::types::{
    Action, CallProgress, CredentialInfo, Event, EventKind, Failure, FinalError, HttpResponse, NoRoute, Outbound, PrepareError, Request,
    Route, Start, VersionInfo,
};

/// A decision, and which instance made it (every new instance, swapped in or restarted after
/// a fault, has the next generation).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    pub value: T,
    pub generation: u64,
}

/// A swap that took place.
#[derive(Debug, Clone)]
pub struct Swapped {
    pub from: VersionInfo,
    pub to: VersionInfo,
    pub generation: u64,
}

/// What `PolicyHost::swap_tiered` did: the swap, and, when it served a baseline build, the
/// tier-up to the optimised one under way in the background.
pub struct TieredSwap {
    pub swapped: Swapped,
    /// Which build now serves.
    pub tier: Tier,
    pub tier_up: Option<TierUp>,
}

/// The optimised build of a policy swapped in at the baseline tier, being compiled on a
/// background thread; once ready it replaces the baseline build through the swap path, unless
/// another policy has taken over meanwhile. Dropping this handle does not stop it.
pub struct TierUp {
    done: mpsc::Receiver<Result<Swapped, Error>>,
}

impl TierUp {
    /// The tier-up's outcome, waiting at most `timeout`; `None` while it is still under way
    /// (or if the host was dropped first).
    pub fn wait(&self, timeout: Duration) -> Option<Result<Swapped, Error>> {
        self.done.recv_timeout(timeout).ok()
    }

    /// The outcome if it is already known, without waiting.
    pub fn try_outcome(&self) -> Option<Result<Swapped, Error>> {
        self.done.try_recv().ok()
    }
}

pub struct PolicyHost {
    /// Shared with a tier-up thread, which holds it weakly: dropping the host never waits for it.
    shared: Arc<Shared>,
}

struct Shared {
    slot: Mutex<Slot>,
    make_host: Box<dyn Fn() -> Host + Send + Sync>,
    config: String,
}

struct Slot {
    live: Live,
    /// The policy swapped out last, to fall back to when the current one crash-loops.
    previous: Option<Arc<Policy>>,
    /// The state after the last call that succeeded: what a restarted or swapped-in instance
    /// restores.
    last_good: String,
    crashes: VecDeque<Instant>,
    /// Why every call now fails closed, after a crash loop with nothing to fall back to.
    closed: Option<String>,
    credentials: Vec<CredentialInfo>,
    next_generation: u64,
    events: Box<dyn EventSink>,
    supervision: Supervision,
    /// The fleet's store, when the state is shared: refreshed at each call start, saved after
    /// each state change, flushed when the host is closed or dropped.
    fleet: Option<Fleet>,
}

struct Live {
    policy: Arc<Policy>,
    instance: Instance,
    engine: Engine,
    version: VersionInfo,
    generation: u64,
}

/// An instance of `policy`, and its version, not yet holding any state.
fn instantiate(policy: &Policy, host: Host) -> Result<(Instance, VersionInfo), Error> {
    let mut instance = policy.instantiate(host)?;
    let version = instance.version()?;
    Ok((instance, version))
}

impl Live {
    /// Restores `state` into the instance and requires its self-check to pass.
    fn restore(
        policy: Arc<Policy>,
        (mut instance, version): (Instance, VersionInfo),
        config: &str,
        state: Option<&str>,
        credentials: &[CredentialInfo],
        generation: u64,
    ) -> Result<Live, Error> {
        let engine = instance.create_engine(config, state, credentials)?;
        let report = instance.check(&engine)?;
        if !report.ok {
            return Err(Error::CheckFailed(report.findings.join("; ")));
        }
        Ok(Live { policy, instance, engine, version, generation })
    }
}

impl PolicyHost {
    /// Starts `policy` with `config` and optionally a snapshot. `make_host` supplies the host
    /// side of every instance (the first, each restart and each swap).
    pub fn start(
        policy: Policy,
        config: &str,
        state: Option<&str>,
        credentials: Vec<CredentialInfo>,
        make_host: impl Fn() -> Host + Send + Sync + 'static,
    ) -> Result<PolicyHost, Error> {
        let policy = Arc::new(policy);
        let fresh = instantiate(&policy, make_host())?;
        PolicyHost::begin(policy, fresh, config, state, credentials, make_host, None)
    }

    /// Starts `policy` with `config` and the state the fleet's store holds, then keeps sharing
    /// it: every call start (`select`, `start_call`) refreshes from the store at most every
    /// `refresh`, every state change is appended, and `close` (or dropping the host) flushes
    /// what is owed. A store that is down at start costs one timeout: the policy starts from
    /// nothing and the first refresh after the pause loads the fleet's state
    /// (`fleet_stats().last_error` says why).
    pub fn start_shared(
        policy: Policy,
        config: &str,
        mut fleet: Fleet,
        credentials: Vec<CredentialInfo>,
        make_host: impl Fn() -> Host + Send + Sync + 'static,
    ) -> Result<PolicyHost, Error> {
        let policy = Arc::new(policy);
        let mut fresh = instantiate(&policy, make_host())?;
        // A store that fails is already recorded in the fleet's stats and paused.
        let state = fleet.load(&mut fresh.0).ok().and_then(|stored| stored.state);
        PolicyHost::begin(policy, fresh, config, state.as_deref(), credentials, make_host, Some(fleet))
    }

    fn begin(
        policy: Arc<Policy>,
        fresh: (Instance, VersionInfo),
        config: &str,
        state: Option<&str>,
        credentials: Vec<CredentialInfo>,
        make_host: impl Fn() -> Host + Send + Sync + 'static,
        fleet: Option<Fleet>,
    ) -> Result<PolicyHost, Error> {
        let mut live = Live::restore(policy, fresh, config, state, &credentials, 0)?;
        let last_good = live.instance.snapshot(&live.engine)?;
        let slot = Slot {
            live,
            previous: None,
            last_good,
            crashes: VecDeque::new(),
            closed: None,
            credentials,
            next_generation: 1,
            events: Box::new(|_: Event| {}),
            supervision: Supervision::default(),
            fleet,
        };
        let shared = Shared { slot: Mutex::new(slot), make_host: Box::new(make_host), config: config.to_string() };
        Ok(PolicyHost { shared: Arc::new(shared) })
    }

    pub fn with_supervision(self, supervision: Supervision) -> Self {
        self.shared.lock().supervision = supervision;
        self
    }

    /// Where the host's own events go: swaps, refusals, faults and crash loops, all of kind
    /// `notice` with a `host.` rule. The guest's events go to each `Host`'s sink as before.
    pub fn with_events(self, sink: impl EventSink + 'static) -> Self {
        self.shared.lock().events = Box::new(sink);
        self
    }

    /// The running policy's version.
    pub fn version(&self) -> VersionInfo {
        self.shared.lock().live.version.clone()
    }

    /// The generation of the running instance.
    pub fn generation(&self) -> u64 {
        self.shared.lock().live.generation
    }

    /// Which build of the running policy serves: `Baseline` only between a `swap_tiered` of a
    /// never-seen `.wasm` and its tier-up.
    pub fn tier(&self) -> Tier {
        self.shared.lock().live.policy.tier()
    }

    /// The state as of the last decision that succeeded.
    pub fn snapshot(&self) -> String {
        self.shared.lock().last_good.clone()
    }

    /// What the shared store did so far (none without one, see `start_shared`).
    pub fn fleet_stats(&self) -> Option<FleetStats> {
        self.shared.lock().fleet.as_ref().map(|fleet| fleet.stats().clone())
    }

    /// Appends what is owed to the shared store, waiting at most its `flush_wait`. Dropping the
    /// last handle to the host does the same; this says whether it worked.
    pub fn close(&self) -> Result<(), StoreError> {
        self.shared.lock().fleet.as_mut().map_or(Ok(()), Fleet::flush)
    }

    pub fn select(&self) -> Result<Answer<Result<Route, NoRoute>>, Error> {
        self.shared.decide(Mutates::WithAnEvent, |i, e| i.select(e), |_, why| Err(fault::no_route(why)))
    }

    pub fn start_call(&self) -> Result<Answer<Result<Start, FinalError>>, Error> {
        self.shared.decide(Mutates::WithAnEvent, |i, e| i.start_call(e), |_, why| Err(fault::final_error(why)))
    }

    pub fn on_failure(&self, route: &Route, failure: &Failure, progress: Option<&CallProgress>) -> Result<Answer<Action>, Error> {
        self.shared.decide(
            Mutates::Yes,
            |i, e| i.on_failure(e, route, failure, progress),
            |mode, why| fault::action(mode, route, failure, progress, why),
        )
    }

    /// Whether `response` is an answer (see `Instance::succeeded`). While the policy is faulted,
    /// a 2xx status is.
    pub fn succeeded(&self, response: &HttpResponse) -> Result<Answer<bool>, Error> {
        self.shared.decide(Mutates::No, |i, _| i.succeeded(response), |_, _| fault::succeeded(response))
    }

    pub fn on_success(&self, route: &Route) -> Result<Answer<()>, Error> {
        self.shared.decide(Mutates::Yes, |i, e| i.on_success(e, route), |_, _| ())
    }

    pub fn prepare(&self, route: &Route, request: &Request) -> Result<Answer<Result<Outbound, PrepareError>>, Error> {
        self.shared.decide(
            Mutates::No,
            |i, e| i.prepare(e, route, request),
            |_, why| Err(PrepareError { message: fault::final_error(why).message }),
        )
    }

    /// The host's credentials changed; restarts and swaps use the new list too.
    pub fn set_credentials(&self, credentials: Vec<CredentialInfo>) -> Result<Answer<()>, Error> {
        self.shared.lock().credentials = credentials.clone();
        self.shared.decide(Mutates::Yes, |i, e| i.set_credentials(e, &credentials), |_, _| ())
    }

    /// Replaces the running policy with `policy`, restored from the current state and
    /// self-checked, between two decisions. On any failure the running policy stays and the
    /// error says why (a refused snapshot is `Error::Config` at `state.schema`).
    pub fn swap(&self, policy: Policy) -> Result<Swapped, Error> {
        self.shared.swap(Arc::new(policy))
    }

    /// Swaps in the policy `.wasm` `bytes` (named `origin`), under the running policy's limits,
    /// as fast as it can: a `.wasm` whose optimised build `cache` holds loads from there, as
    /// `Policy::from_bytes_cached` would; a never-seen one is compiled by the baseline compiler
    /// (several times faster, slower code) and swapped in at once, while a background thread
    /// compiles it with the optimising compiler into `cache` and then swaps that build in
    /// through the same path (the state carried over, version and self-check required), with a
    /// `host.policy-tiered-up` notice. A tier-up that fails leaves the baseline build serving
    /// (`host.tier-up-failed`); one overtaken by another swap is dropped.
    pub fn swap_tiered(&self, bytes: &[u8], origin: &str, cache: &ArtifactCache) -> Result<TieredSwap, Error> {
        let sha256 = sha256_hex(bytes);
        let limits = self.shared.lock().live.policy.limits();
        // A component that does not load (of a contract version this host does not speak, say)
        // is a refused swap like any other.
        if let Some(policy) = Policy::from_cache_only(&sha256, origin, cache).map_err(|e| self.shared.refused(e))? {
            let swapped = self.shared.swap(Arc::new(policy.with_limits(limits)))?;
            return Ok(TieredSwap { swapped, tier: Tier::Optimised, tier_up: None });
        }
        let baseline = Policy::baseline(bytes, sha256.clone(), origin).map_err(|e| self.shared.refused(e))?;
        let baseline = Arc::new(baseline.with_limits(limits));
        let swapped = self.shared.swap(baseline.clone())?;
        let (sent, done) = mpsc::channel();
        let job = TierUpJob {
            host: Arc::downgrade(&self.shared),
            baseline: Arc::downgrade(&baseline),
            bytes: bytes.to_vec(),
            sha256,
            origin: origin.to_string(),
            cache: cache.clone(),
            limits,
        };
        drop(baseline);
        let spawned = std::thread::Builder::new().name("failover-tier-up".into()).spawn(move || {
            let _ = sent.send(job.run());
        });
        if let Err(e) = spawned {
            let message = format!("cannot start the optimising compile of {origin} ({e}); the baseline build keeps serving");
            notice(&mut *self.shared.lock().events, "host.tier-up-failed", message);
        }
        Ok(TieredSwap { swapped, tier: Tier::Baseline, tier_up: Some(TierUp { done }) })
    }
}

fn overtaken() -> Error {
    Error::Runtime("another policy took over before the optimised build was ready".into())
}

/// The background half of `swap_tiered`.
struct TierUpJob {
    host: Weak<Shared>,
    baseline: Weak<Policy>,
    bytes: Vec<u8>,
    sha256: String,
    origin: String,
    cache: ArtifactCache,
    limits: crate::limits::Limits,
}

impl TierUpJob {
    fn run(self) -> Result<Swapped, Error> {
        let gone = || Error::Runtime("the policy host was dropped before the tier-up".into());
        // Nothing to do for a host already gone, or a baseline build already replaced.
        if self.host.strong_count() == 0 {
            return Err(gone());
        }
        if self.baseline.strong_count() == 0 {
            return Err(overtaken());
        }
        let built = Policy::cached_with_sha256(&self.bytes, self.sha256, &self.origin, &self.cache);
        let host = self.host.upgrade().ok_or_else(gone)?;
        let optimised = match built {
            Ok(policy) => Arc::new(policy.with_limits(self.limits)),
            Err(e) => {
                let message = format!("the optimising compile of {} failed ({e}); the baseline build keeps serving", self.origin);
                notice(&mut *host.lock().events, "host.tier-up-failed", message);
                return Err(e);
            }
        };
        host.tier_up(&self.baseline, optimised)
    }
}

impl Shared {
    /// Replaces the running policy with `policy` (see `PolicyHost::swap`).
    fn swap(&self, policy: Arc<Policy>) -> Result<Swapped, Error> {
        self.replace(policy, None)
    }

    /// Replaces the baseline build `baseline` with `optimised`, if it still serves: the same
    /// swap, except that the policy to fall back to stays the one before the baseline build.
    fn tier_up(&self, baseline: &Weak<Policy>, optimised: Arc<Policy>) -> Result<Swapped, Error> {
        self.replace(optimised, Some(baseline))
    }

    /// A swap, or with `tier_up_of` the tier-up of that baseline build.
    fn replace(&self, policy: Arc<Policy>, tier_up_of: Option<&Weak<Policy>>) -> Result<Swapped, Error> {
        // Instantiating costs microseconds, but needs no lock: decisions go on meanwhile.
        let fresh = instantiate(&policy, (self.make_host)());
        let mut slot = self.lock();
        let slot = &mut *slot;
        if let Some(baseline) = tier_up_of.map(Weak::upgrade) {
            let is_baseline = |p: &Arc<Policy>| baseline.as_ref().is_some_and(|b| Arc::ptr_eq(b, p));
            if !is_baseline(&slot.live.policy) {
                if slot.previous.as_ref().is_some_and(is_baseline) {
                    slot.previous = Some(policy);
                }
                return Err(overtaken());
            }
        }
        let restored = fresh
            .and_then(|fresh| Live::restore(policy, fresh, &self.config, Some(&slot.last_good), &slot.credentials, slot.next_generation));
        let live = match restored {
            Ok(live) => live,
            Err(e) => {
                let name = &slot.live.version.policy;
                let (rule, message) = match tier_up_of {
                    None => (SWAP_REFUSED, refusal(name, &e)),
                    Some(_) => (
                        "host.tier-up-failed",
                        format!("the optimised build of {name} was refused ({e}); the baseline build keeps serving"),
                    ),
                };
                notice(&mut *slot.events, rule, message);
                return Err(e);
            }
        };
        slot.next_generation += 1;
        let old = std::mem::replace(&mut slot.live, live);
        let swapped = Swapped { from: old.version, to: slot.live.version.clone(), generation: slot.live.generation };
        slot.crashes.clear();
        let (rule, message) = match tier_up_of {
            None => {
                slot.previous = Some(old.policy);
                slot.closed = None;
                let message = format!(
                    "swapped policy {} (schema {}) for {} (schema {}), generation {}",
                    swapped.from.policy, swapped.from.schema, swapped.to.policy, swapped.to.schema, swapped.generation
                );
                ("host.policy-swapped", message)
            }
            Some(_) => {
                let message = format!(
                    "tiered up policy {} (schema {}) from its baseline build to its optimised build, generation {}",
                    swapped.to.policy, swapped.to.schema, swapped.generation
                );
                ("host.policy-tiered-up", message)
            }
        };
        notice(&mut *slot.events, rule, message);
        Ok(swapped)
    }

    /// A policy that did not even load for a swap: `e`, after a notice like any refused swap's.
    fn refused(&self, e: Error) -> Error {
        let mut slot = self.lock();
        let message = refusal(&slot.live.version.policy, &e);
        notice(&mut *slot.events, SWAP_REFUSED, message);
        e
    }

    /// Runs one call on the live instance and keeps the state it leaves; when the policy
    /// fails, `fallback` decides instead and the policy is restarted or replaced.
    fn decide<T>(
        &self,
        mutates: Mutates,
        call: impl FnOnce(&mut Instance, &Engine) -> Result<T, Error>,
        fallback: impl FnOnce(fault::OnFault, &str) -> T,
    ) -> Result<Answer<T>, Error> {
        let mut guard = self.lock();
        let slot = &mut *guard;
        let generation = slot.live.generation;
        if let Some(why) = &slot.closed {
            return Ok(Answer { value: fallback(fault::OnFault::FailClosed, why), generation });
        }
        let live = &mut slot.live;
        // A call start is where a running process takes in what its peers learned (paced, and
        // errors only pause the store: the call goes on from memory).
        let mut absorbed = false;
        if let (Mutates::WithAnEvent, Some(fleet)) = (mutates, slot.fleet.as_mut()) {
            absorbed =
                matches!(fleet.refresh(&mut live.instance, &live.engine), Ok(Refreshed::Read { entries: 1.. } | Refreshed::Reloaded));
        }
        let emitted = live.instance.events_emitted();
        let value = match call(&mut live.instance, &live.engine) {
            Ok(value) => value,
            // Refused before the call (too large): the instance is unharmed.
            Err(e @ Error::TooLarge { .. }) => return Err(e),
            Err(e) => {
                let why = e.to_string();
                self.recover(slot, &why);
                return Ok(Answer { value: fallback(slot.supervision.on_fault, &why), generation });
            }
        };
        let changed = absorbed
            || match mutates {
                Mutates::Yes => true,
                Mutates::WithAnEvent => live.instance.events_emitted() != emitted,
                Mutates::No => false,
            };
        if changed {
            match live.instance.snapshot(&live.engine) {
                Ok(state) => {
                    if let Some(fleet) = slot.fleet.as_mut() {
                        // A failed save stays owed in the fleet (see `Fleet::save_snapshot`).
                        let _ = fleet.save_snapshot(&mut live.instance, &state);
                    }
                    slot.last_good = state;
                }
                Err(e) => self.recover(slot, &e.to_string()),
            }
        }
        Ok(Answer { value, generation })
    }

    /// After a fault: restart the policy from the last good state, or, in a crash loop, fall
    /// back to the previous policy, or fail closed.
    fn recover(&self, slot: &mut Slot, why: &str) {
        let supervision = slot.supervision;
        let now = Instant::now();
        slot.crashes.push_back(now);
        while slot.crashes.front().is_some_and(|t| now.duration_since(*t) > supervision.crash_window) {
            slot.crashes.pop_front();
        }
        let name = slot.live.version.policy.clone();
        let faults = slot.crashes.len();
        let window = supervision.crash_window.as_secs();
        let mut why = why.to_string();
        if faults < supervision.max_crashes {
            match self.restart(slot, slot.live.policy.clone()) {
                Ok(()) => {
                    let message = format!(
                        "policy {name} failed ({why}); restarted it from the last good state (fault {faults}, at {} within {window} s stops restarts)",
                        supervision.max_crashes
                    );
                    return notice(&mut *slot.events, FAULT_RULE, message);
                }
                Err(e) => why = format!("{why}; restarting it failed too: {e}"),
            }
        }
        slot.crashes.clear();
        if let Some(previous) = slot.previous.take() {
            if self.restart(slot, previous).is_ok() {
                let message = crate::fault::crash_loop_message(faults, window, &why);
                return notice(&mut *slot.events, "host.policy-crash-loop", message);
            }
        }
        let message = crate::fault::closed_message(faults, window, &why);
        slot.closed = Some(format!("policy {name} is stopped after repeated failures"));
        notice(&mut *slot.events, "host.policy-closed", message);
    }

    /// A fresh instance of `policy` from the last good state replaces the live one.
    fn restart(&self, slot: &mut Slot, policy: Arc<Policy>) -> Result<(), Error> {
        let fresh = instantiate(&policy, (self.make_host)())?;
        let live = Live::restore(policy, fresh, &self.config, Some(&slot.last_good), &slot.credentials, slot.next_generation)?;
        slot.next_generation += 1;
        slot.live = live;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic while holding the lock leaves no half-made decision (`decide` mutates the
        // slot only after the call returns), so the data is still consistent.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a call can change the engine's state: only then is the last good state taken
/// again, since a snapshot costs as much as a decision.
#[derive(Clone, Copy, PartialEq)]
enum Mutates {
    Yes,
    /// select and start-call: only when they emitted an event (a promise of the WIT contract,
    /// held by tests/promises.rs).
    WithAnEvent,
    No,
}

const SWAP_REFUSED: &str = "host.swap-refused";

/// What a refused swap's notice says.
fn refusal(running: &str, e: &Error) -> String {
    format!("refused a new policy, keeping {running}: {e}")
}

fn notice(events: &mut dyn EventSink, rule: &str, message: String) {
    events.emit(Event { kind: EventKind::Notice, at_ms: Clock::System.now_ms(), route: None, rule: rule.into(), message });
}
