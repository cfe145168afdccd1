//! One live policy instance (a wasmtime Store) and typed calls into it. Every guest failure
//! comes back as `Error::Guest`; after one, the instance is poisoned and only a new
//! `Policy::instantiate` (restored from a snapshot) recovers. Each call runs under the policy's
//! `Limits`: a time limit set afresh per call, and a size check on what crosses the boundary.
//! An instance speaks the contract version of its policy; an older policy's values are converted
//! to and from the current (0.3.0) types here, so callers see one API, and what an older
//! contract lacks is either done the old way (`changes`, `fold`) or refused (`begin`, `absorb`).

use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap};

use crate::bindings::{Convert, Exports};
use crate::contract::Contract;
use crate::error::Error;
use crate::host::StoreData;
use crate::limits::Limits;
use crate::types::{
    Action, CallFailure, CallInput, CallOptions, CallProgress, CallSuccess, CheckReport, Classified, CredentialInfo, Delta, Failure,
    FinalError, Folded, HttpResponse, NoRoute, Outbound, PrepareError, Request, Route, Start, StateError, Step, UnreadableState,
    VersionInfo,
};

/// The same call on every contract version: `current` on a 0.3.0 policy, `older` (the same
/// tokens, so its arguments and result go through `Convert`) on a 0.1.0 or 0.2.0 one.
macro_rules! each_version {
    ($exports:expr, |$b:ident| $current:expr, older: $older:expr) => {
        match $exports {
            Exports::V0_3($b) => $current,
            Exports::V0_2($b) => $older,
            Exports::V0_1($b) => $older,
        }
    };
}

pub struct Instance {
    store: Store<StoreData>,
    exports: Exports,
    limits: Limits,
}

/// An epoch deadline no call reaches (the epoch advances every 10 ms), without overflowing.
const NO_DEADLINE: u64 = u64::MAX / 2;

/// A policy engine (the WIT `engine` resource) living in one `Instance`. Use it only with the
/// instance that created it; release it with `Instance::drop_engine`.
#[derive(Debug)]
pub struct Engine(ResourceAny);

/// One driven call (the WIT `driven-call` resource, contract 0.2.0) living in one `Instance`:
/// made by `Instance::begin`, stepped with `Instance::next`, released with `Instance::drop_call`.
#[derive(Debug)]
pub struct DrivenCall(ResourceAny);

impl Instance {
    pub(crate) fn new(store: Store<StoreData>, exports: Exports, limits: Limits) -> Self {
        Instance { store, exports, limits }
    }

    /// The contract version the policy speaks.
    pub fn contract(&self) -> Contract {
        self.exports.contract()
    }

    /// Starts the time limit of the next call.
    fn arm(&mut self) {
        self.store.set_epoch_deadline(self.limits.ticks());
    }

    /// A guest failure, said plainly when it was the time limit.
    fn fault(&self, e: wasmtime::Error) -> Error {
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Error::Guest(format!("the call ran past its time limit of {} ms", self.limits.call_time.as_millis())),
            // The wasm backtrace spans many lines; the causes say what happened.
            _ => Error::Guest(
                e.chain()
                    .map(|c| c.to_string())
                    .filter(|c| !c.starts_with("error while executing at wasm backtrace"))
                    .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()
                    .join(": "),
            ),
        }
    }

    /// How many events the guest has emitted through this instance.
    pub fn events_emitted(&self) -> u64 {
        self.store.data().host.emitted()
    }

    /// What a failure from `provider` means; stateless.
    pub fn classify(&mut self, provider: &str, failure: &Failure) -> Result<Classified, Error> {
        self.arm();
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().call_classify(&mut self.store, provider, failure),
            older: b.failover_policy_policy().call_classify(&mut self.store, provider, &failure.clone().convert()).map(Convert::convert));
        got.map_err(|e| self.fault(e))
    }

    /// Whether `response` is an answer (a 2xx whose body is no error event or error document);
    /// stateless. A host that drives `on_success`/`on_failure` itself asks this, not the status.
    pub fn succeeded(&mut self, response: &HttpResponse) -> Result<bool, Error> {
        self.arm();
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().call_succeeded(&mut self.store, response),
            older: b.failover_policy_policy().call_succeeded(&mut self.store, &response.clone().convert()));
        got.map_err(|e| self.fault(e))
    }

    /// A new engine from a config JSON and optionally a snapshot; `credentials` are the ids the
    /// host holds secrets for. A bad config or snapshot is `Error::Config`.
    pub fn create_engine(&mut self, config: &str, state: Option<&str>, credentials: &[CredentialInfo]) -> Result<Engine, Error> {
        self.limits.payload("the config", config.len())?;
        self.limits.payload("the snapshot", state.map_or(0, str::len))?;
        self.arm();
        let got = each_version!(&self.exports,
            |b| b.failover_policy_policy().engine().call_create(&mut self.store, config, state, credentials),
            older: b
                .failover_policy_policy()
                .engine()
                .call_create(&mut self.store, config, state, &credentials.to_vec().convert())
                .map(|created| created.map_err(Convert::convert)));
        match got.map_err(|e| self.fault(e))? {
            Ok(resource) => Ok(Engine(resource)),
            Err(e) => Err(Error::Config { field: e.field, message: e.message }),
        }
    }

    /// Releases the engine's guest state.
    pub fn drop_engine(&mut self, engine: Engine) -> Result<(), Error> {
        engine.0.resource_drop(&mut self.store).map_err(|e| self.fault(e))
    }

    /// The route to start with, or why there is none.
    pub fn select(&mut self, engine: &Engine) -> Result<Result<Route, NoRoute>, Error> {
        self.arm();
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().engine().call_select(&mut self.store, engine.0),
            older: b.failover_policy_policy().engine().call_select(&mut self.store, engine.0).map(Convert::convert));
        got.map_err(|e| self.fault(e))
    }

    /// The start of a call the host drives itself: the route and how long to wait first (with
    /// the `progress` for the first `on_failure`), or the final error when nothing will do.
    pub fn start_call(&mut self, engine: &Engine) -> Result<Result<Start, FinalError>, Error> {
        self.arm();
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().engine().call_start_call(&mut self.store, engine.0),
            older: b.failover_policy_policy().engine().call_start_call(&mut self.store, engine.0).map(Convert::convert));
        got.map_err(|e| self.fault(e))
    }

    /// The next action after a failed attempt; pass back the previous action's `progress`.
    /// The route's secret is taken out of `failure` first, should the provider have echoed it.
    pub fn on_failure(
        &mut self,
        engine: &Engine,
        route: &Route,
        failure: &Failure,
        progress: Option<&CallProgress>,
    ) -> Result<Action, Error> {
        let body = failure.response.as_ref().map_or(0, |r| r.body.len());
        self.limits.payload("the failure's response body", body)?;
        let scrub = self.store.data().host.scrub_for(&route.credential);
        let failure = scrub.failure(failure);
        self.arm();
        let got = each_version!(&self.exports,
        |b| b.failover_policy_policy().engine().call_on_failure(&mut self.store, engine.0, route, &failure, progress),
        older: {
            let progress: Option<_> = progress.cloned().convert();
            let policy = b.failover_policy_policy().engine();
            let (route, failure) = (route.clone().convert(), failure.clone().into_owned().convert());
            policy.call_on_failure(&mut self.store, engine.0, &route, &failure, progress.as_ref()).map(Convert::convert)
        });
        got.map_err(|e| self.fault(e))
    }

    pub fn on_success(&mut self, engine: &Engine, route: &Route) -> Result<(), Error> {
        self.arm();
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().engine().call_on_success(&mut self.store, engine.0, route),
            older: b.failover_policy_policy().engine().call_on_success(&mut self.store, engine.0, &route.clone().convert()));
        got.map_err(|e| self.fault(e))
    }

    /// The request rewritten for `route` (URL, model, auth header name, timeouts).
    pub fn prepare(&mut self, engine: &Engine, route: &Route, request: &Request) -> Result<Result<Outbound, PrepareError>, Error> {
        self.limits.payload("the request body", request.body.len())?;
        self.arm();
        let got = each_version!(&self.exports,
            |b| b.failover_policy_policy().engine().call_prepare(&mut self.store, engine.0, route, request),
            older: b
                .failover_policy_policy()
                .engine()
                .call_prepare(&mut self.store, engine.0, &route.clone().convert(), &request.clone().convert())
                .map(Convert::convert));
        got.map_err(|e| self.fault(e))
    }

    /// The whole guest-driven call: the guest sends, waits and decides through the host. No time
    /// limit: it waits on the network and sleeps by design (the memory limit still holds).
    pub fn call(&mut self, engine: &Engine, request: &Request) -> Result<Result<CallSuccess, CallFailure>, Error> {
        self.limits.payload("the request body", request.body.len())?;
        self.store.set_epoch_deadline(NO_DEADLINE);
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().engine().call_call(&mut self.store, engine.0, request),
            older: b.failover_policy_policy().engine().call_call(&mut self.store, engine.0, &request.clone().convert()).map(Convert::convert));
        got.map_err(|e| self.fault(e))
    }

    /// Starts a call the host carries out step by step (`next`), streamed or not. Contract
    /// 0.2.0 and later: a 0.1.0 policy answers `Error::Unsupported`, untouched; use `call` with it.
    pub fn begin(&mut self, engine: &Engine, request: &Request, options: &CallOptions) -> Result<DrivenCall, Error> {
        self.limits.payload("the request body", request.body.len())?;
        self.arm();
        let got = match &self.exports {
            Exports::V0_3(b) => b.failover_policy_policy().engine().call_begin(&mut self.store, engine.0, request, *options),
            Exports::V0_2(b) => {
                let request = request.clone().convert();
                b.failover_policy_policy().engine().call_begin(&mut self.store, engine.0, &request, (*options).convert())
            }
            Exports::V0_1(_) => return Err(Error::Unsupported { what: "the driven call (engine.begin)", contract: self.contract() }),
        };
        got.map(DrivenCall).map_err(|e| self.fault(e))
    }

    /// The next step of a driven call, given what came of the last one (`start` first).
    pub fn next(&mut self, call: &DrivenCall, input: &CallInput) -> Result<Step, Error> {
        self.limits.payload("the body bytes read", input.data.len())?;
        self.arm();
        let got = match &self.exports {
            Exports::V0_3(b) => b.failover_policy_policy().driven_call().call_next(&mut self.store, call.0, input),
            Exports::V0_2(b) => {
                b.failover_policy_policy().driven_call().call_next(&mut self.store, call.0, &input.clone().convert()).map(Convert::convert)
            }
            Exports::V0_1(_) => return Err(Error::Unsupported { what: "the driven call (driven-call.next)", contract: self.contract() }),
        };
        got.map_err(|e| self.fault(e))
    }

    /// Releases a driven call's guest state (its call need not be over).
    pub fn drop_call(&mut self, call: DrivenCall) -> Result<(), Error> {
        call.0.resource_drop(&mut self.store).map_err(|e| self.fault(e))
    }

    /// What carries out a driven call's steps: this instance's transport, secrets and clock.
    pub(crate) fn host_mut(&mut self) -> &mut crate::host::Host {
        &mut self.store.data_mut().host
    }

    /// Tells the engine which credentials the host now holds.
    pub fn set_credentials(&mut self, engine: &Engine, credentials: &[CredentialInfo]) -> Result<(), Error> {
        self.arm();
        let got = each_version!(&self.exports,
            |b| b.failover_policy_policy().engine().call_set_credentials(&mut self.store, engine.0, credentials),
            older: b.failover_policy_policy().engine().call_set_credentials(&mut self.store, engine.0, &credentials.to_vec().convert()));
        got.map_err(|e| self.fault(e))
    }

    /// The engine's state as JSON, for `create_engine` to continue from.
    pub fn snapshot(&mut self, engine: &Engine) -> Result<String, Error> {
        self.arm();
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().engine().call_snapshot(&mut self.store, engine.0),
            older: b.failover_policy_policy().engine().call_snapshot(&mut self.store, engine.0));
        let snapshot = got.map_err(|e| self.fault(e))?;
        self.limits.payload("the snapshot the policy returned", snapshot.len())?;
        Ok(snapshot)
    }

    pub fn check(&mut self, engine: &Engine) -> Result<CheckReport, Error> {
        self.arm();
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().engine().call_check(&mut self.store, engine.0),
            older: b.failover_policy_policy().engine().call_check(&mut self.store, engine.0).map(Convert::convert));
        got.map_err(|e| self.fault(e))
    }

    /// What other processes stored (`state`, a snapshot or a delta), merged into the running
    /// engine by `merge`'s rules: a key a peer found exhausted cools here from now on, while the
    /// engine keeps its chain position and calls under way go on. A state the policy cannot read
    /// is the inner `StateError`, and nothing changes. Contract 0.3.0 only: an older policy has
    /// no `absorb` and answers `Error::Unsupported`, untouched (its process takes the fleet's
    /// state only at start-up, through `create_engine`).
    pub fn absorb(&mut self, engine: &Engine, state: &str) -> Result<Result<(), StateError>, Error> {
        self.limits.payload("the state to absorb", state.len())?;
        self.arm();
        let Exports::V0_3(b) = &self.exports else {
            return Err(Error::Unsupported {
                what: "absorbing a peer's state into a running engine (engine.absorb)",
                contract: self.contract(),
            });
        };
        let got = b.failover_policy_policy().engine().call_absorb(&mut self.store, engine.0, state);
        got.map_err(|e| self.fault(e))
    }

    /// What `now` knows that `since` does not, as a snapshot to append to a fleet's log (none:
    /// nothing but the save time or randomness differs), with how long a store keeps it at least
    /// (`keep_until_ms`: the latest cooldown or open-circuit end in all of `now`). An older
    /// policy has no `changes`: the whole `now` when it differs from `since` at all, which
    /// `merge` joins just the same, with `keep_until_ms` 0 (it cannot say; a store keeps it for
    /// its `forget_after_ms`).
    pub fn changes(&mut self, since: &str, now: &str) -> Result<Result<Option<Delta>, StateError>, Error> {
        self.limits.payload("the state changes are taken since", since.len())?;
        self.limits.payload("the state to take changes of", now.len())?;
        self.arm();
        let got = match &self.exports {
            Exports::V0_3(b) => b.failover_policy_policy().call_changes(&mut self.store, since, now),
            Exports::V0_2(_) | Exports::V0_1(_) => {
                return Ok(Ok((since != now).then(|| Delta { state: now.to_string(), keep_until_ms: 0 })));
            }
        };
        let changes = got.map_err(|e| self.fault(e))?;
        if let Ok(Some(delta)) = &changes {
            self.limits.payload("the changes the policy returned", delta.state.len())?;
        }
        Ok(changes)
    }

    /// `states` (a base and the deltas appended since) merged into one, with the records of
    /// credentials and routes not seen for `forget_after_ms` before `now_ms` forgotten (0:
    /// none). States the policy cannot read are left out and listed in `unreadable`;
    /// `keep_until_ms` is the latest cooldown or open-circuit end in the result. An older policy
    /// has no `fold`: the states are merged pairwise with `merge`, nothing is forgotten and
    /// `keep_until_ms` is 0 (it cannot say; a store keeps the result for its `forget_after_ms`).
    pub fn fold(&mut self, states: &[String], now_ms: u64, forget_after_ms: u64) -> Result<Result<Folded, StateError>, Error> {
        for state in states {
            self.limits.payload("a state to fold", state.len())?;
        }
        self.arm();
        let got = match &self.exports {
            Exports::V0_3(b) => b.failover_policy_policy().call_fold(&mut self.store, states, now_ms, forget_after_ms),
            Exports::V0_2(_) | Exports::V0_1(_) => return self.fold_by_merge(states).map(Ok),
        };
        let folded = got.map_err(|e| self.fault(e))?;
        if let Ok(Folded { state: Some(state), .. }) = &folded {
            self.limits.payload("the folded state the policy returned", state.len())?;
        }
        Ok(folded)
    }

    /// `fold` for a policy without one: pairwise `merge`, each state first checked against what
    /// is merged so far (a readable accumulator means a refusal names the new state).
    fn fold_by_merge(&mut self, states: &[String]) -> Result<Folded, Error> {
        let mut merged: Option<String> = None;
        let mut unreadable = Vec::new();
        for (index, state) in states.iter().enumerate() {
            let joined = match &merged {
                Some(so_far) => self.merge(so_far, state)?,
                None => self.merge(state, state)?,
            };
            match joined {
                Ok(state) => merged = Some(state),
                Err(e) => {
                    let newer = e.message.contains("is newer than");
                    unreadable.push(UnreadableState { index: index as u32, message: format!("snapshot {index}: {}", e.message), newer });
                }
            }
        }
        Ok(Folded { state: merged, keep_until_ms: 0, unreadable, forgotten: 0 })
    }

    /// Two snapshots merged into one.
    pub fn merge(&mut self, a: &str, b: &str) -> Result<Result<String, StateError>, Error> {
        self.limits.payload("the first snapshot to merge", a.len())?;
        self.limits.payload("the second snapshot to merge", b.len())?;
        self.arm();
        let got = each_version!(&self.exports, |x| x.failover_policy_policy().call_merge(&mut self.store, a, b),
            older: x.failover_policy_policy().call_merge(&mut self.store, a, b).map(Convert::convert));
        let merged = got.map_err(|e| self.fault(e))?;
        if let Ok(json) = &merged {
            self.limits.payload("the merged snapshot the policy returned", json.len())?;
        }
        Ok(merged)
    }

    pub fn version(&mut self) -> Result<VersionInfo, Error> {
        self.arm();
        let got = each_version!(&self.exports, |b| b.failover_policy_policy().call_version(&mut self.store),
            older: b.failover_policy_policy().call_version(&mut self.store).map(Convert::convert));
        got.map_err(|e| self.fault(e))
    }
}
