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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::clock::Clock;
use crate::error::Error;
use crate::events::EventSink;
use crate::fault::{self, Supervision, FAULT_RULE};
use crate::host::Host;
use crate::instance::{Engine, Instance};
use crate::policy::Policy;
use crate::types::{
    Action, CallProgress, CredentialInfo, Event, EventKind, Failure, FinalError, NoRoute, Outbound, PrepareError,
    Request, Route, Start, VersionInfo,
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

pub struct PolicyHost {
    slot: Mutex<Slot>,
    make_host: Box<dyn Fn() -> Host + Send + Sync>,
    config: String,
    supervision: Supervision,
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
        };
        Ok(PolicyHost { slot: Mutex::new(slot), make_host: Box::new(make_host), config: config.to_string(), supervision: Supervision::default() })
    }

    pub fn with_supervision(mut self, supervision: Supervision) -> Self {
        self.supervision = supervision;
        self
    }

    /// Where the host's own events go: swaps, refusals, faults and crash loops, all of kind
    /// `notice` with a `host.` rule. The guest's events go to each `Host`'s sink as before.
    pub fn with_events(mut self, sink: impl EventSink + 'static) -> Self {
        self.lock_mut().events = Box::new(sink);
        self
    }

    /// The running policy's version.
    pub fn version(&self) -> VersionInfo {
        self.lock().live.version.clone()
    }

    /// The generation of the running instance.
    pub fn generation(&self) -> u64 {
        self.lock().live.generation
    }

    /// The state as of the last decision that succeeded.
    pub fn snapshot(&self) -> String {
        self.lock().last_good.clone()
    }

    pub fn select(&self) -> Result<Answer<Result<Route, NoRoute>>, Error> {
        self.decide(Mutates::WithAnEvent, |i, e| i.select(e), |_, why| Err(fault::no_route(why)))
    }

    pub fn start_call(&self) -> Result<Answer<Result<Start, FinalError>>, Error> {
        self.decide(Mutates::WithAnEvent, |i, e| i.start_call(e), |_, why| Err(fault::final_error(why)))
    }

    pub fn on_failure(
        &self,
        route: &Route,
        failure: &Failure,
        progress: Option<&CallProgress>,
    ) -> Result<Answer<Action>, Error> {
        self.decide(
            Mutates::Yes,
            |i, e| i.on_failure(e, route, failure, progress),
            |mode, why| fault::action(mode, route, failure, progress, why),
        )
    }

    pub fn on_success(&self, route: &Route) -> Result<Answer<()>, Error> {
        self.decide(Mutates::Yes, |i, e| i.on_success(e, route), |_, _| ())
    }

    pub fn prepare(&self, route: &Route, request: &Request) -> Result<Answer<Result<Outbound, PrepareError>>, Error> {
        self.decide(
            Mutates::No,
            |i, e| i.prepare(e, route, request),
            |_, why| Err(PrepareError { message: fault::final_error(why).message }),
        )
    }

    /// The host's credentials changed; restarts and swaps use the new list too.
    pub fn set_credentials(&self, credentials: Vec<CredentialInfo>) -> Result<Answer<()>, Error> {
        self.lock().credentials = credentials.clone();
        self.decide(Mutates::Yes, |i, e| i.set_credentials(e, &credentials), |_, _| ())
    }

    /// Replaces the running policy with `policy`, restored from the current state and
    /// self-checked, between two decisions. On any failure the running policy stays and the
    /// error says why (a refused snapshot is `Error::Config` at `state.schema`).
    pub fn swap(&self, policy: Policy) -> Result<Swapped, Error> {
        let policy = Arc::new(policy);
        // Instantiating costs microseconds, but needs no lock: decisions go on meanwhile.
        let fresh = instantiate(&policy, (self.make_host)());
        let mut slot = self.lock();
        let slot = &mut *slot;
        let restored = fresh.and_then(|fresh| {
            Live::restore(policy, fresh, &self.config, Some(&slot.last_good), &slot.credentials, slot.next_generation)
        });
        let live = match restored {
            Ok(live) => live,
            Err(e) => {
                let message = format!("refused a new policy, keeping {}: {e}", slot.live.version.policy);
                notice(&mut *slot.events, "host.swap-refused", message);
                return Err(e);
            }
        };
        slot.next_generation += 1;
        let old = std::mem::replace(&mut slot.live, live);
        let swapped = Swapped { from: old.version, to: slot.live.version.clone(), generation: slot.live.generation };
        slot.previous = Some(old.policy);
        slot.crashes.clear();
        slot.closed = None;
        let message = format!(
            "swapped policy {} (schema {}) for {} (schema {}), generation {}",
            swapped.from.policy, swapped.from.schema, swapped.to.policy, swapped.to.schema, swapped.generation
        );
        notice(&mut *slot.events, "host.policy-swapped", message);
        Ok(swapped)
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
        let emitted = live.instance.events_emitted();
        let value = match call(&mut live.instance, &live.engine) {
            Ok(value) => value,
            // Refused before the call (too large): the instance is unharmed.
            Err(e @ Error::TooLarge { .. }) => return Err(e),
            Err(e) => {
                let why = e.to_string();
                self.recover(slot, &why);
                return Ok(Answer { value: fallback(self.supervision.on_fault, &why), generation });
            }
        };
        let changed = match mutates {
            Mutates::Yes => true,
            Mutates::WithAnEvent => live.instance.events_emitted() != emitted,
            Mutates::No => false,
        };
        if changed {
            match live.instance.snapshot(&live.engine) {
                Ok(state) => slot.last_good = state,
                Err(e) => self.recover(slot, &e.to_string()),
            }
        }
        Ok(Answer { value, generation })
    }

    /// After a fault: restart the policy from the last good state, or, in a crash loop, fall
    /// back to the previous policy, or fail closed.
    fn recover(&self, slot: &mut Slot, why: &str) {
        let now = Instant::now();
        slot.crashes.push_back(now);
        while slot.crashes.front().is_some_and(|t| now.duration_since(*t) > self.supervision.crash_window) {
            slot.crashes.pop_front();
        }
        let name = slot.live.version.policy.clone();
        let faults = slot.crashes.len();
        let window = self.supervision.crash_window.as_secs();
        let mut why = why.to_string();
        if faults < self.supervision.max_crashes {
            match self.restart(slot, slot.live.policy.clone()) {
                Ok(()) => {
                    let message = format!(
                        "policy {name} failed ({why}); restarted it from the last good state (fault {faults}, at {} within {window} s stops restarts)",
                        self.supervision.max_crashes
                    );
                    return notice(&mut *slot.events, FAULT_RULE, message);
                }
                Err(e) => why = format!("{why}; restarting it failed too: {e}"),
            }
        }
        slot.crashes.clear();
        if let Some(previous) = slot.previous.take() {
            if self.restart(slot, previous).is_ok() {
                let message = format!(
                    "policy {name} failed {faults} times within {window} s (last: {why}); fell back to the previous policy {}",
                    slot.live.version.policy
                );
                return notice(&mut *slot.events, "host.policy-crash-loop", message);
            }
        }
        let message = format!(
            "policy {name} failed {faults} times within {window} s (last: {why}) and no previous policy could take over; \
             every call fails closed until a new policy is swapped in"
        );
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

    fn lock_mut(&mut self) -> &mut Slot {
        self.slot.get_mut().unwrap_or_else(PoisonError::into_inner)
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

fn notice(events: &mut dyn EventSink, rule: &str, message: String) {
    events.emit(Event { kind: EventKind::Notice, at_ms: Clock::System.now_ms(), route: None, rule: rule.into(), message });
}
