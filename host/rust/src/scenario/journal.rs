//! What a scenario run records, shared by the scripted provider, the event sink and the
//! runner: the trace lines, and this step's sends and events for the expectations.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{json, Value};

use crate::clock::VirtualClock;
use crate::events::EventSink;
use crate::types::{Event, Route};

/// One send of the current step.
#[derive(Debug, Clone)]
pub(crate) struct Send {
    pub route: Route,
    pub outcome: String,
}

#[derive(Debug, Default)]
pub(crate) struct Entries {
    pub step: usize,
    pub lines: Vec<Value>,
    pub sends: Vec<Send>,
    pub events: Vec<Event>,
}

/// Clones share one record.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    entries: Arc<Mutex<Entries>>,
    clock: VirtualClock,
    start_ms: u64,
}

impl Journal {
    pub fn new(clock: VirtualClock, start_ms: u64) -> Self {
        Journal { entries: Arc::default(), clock, start_ms }
    }

    pub fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts step `step`: its sends and events start empty.
    pub fn begin_step(&self, step: usize) {
        let mut e = self.lock();
        e.step = step;
        e.sends.clear();
        e.events.clear();
    }

    /// Ms since the scenario's start, as the trace's `t`.
    pub fn t(&self) -> u64 {
        self.clock.now_ms().saturating_sub(self.start_ms)
    }

    /// Appends a trace line `{"t", "step", "type", ...fields}`.
    pub fn line(&self, kind: &str, fields: Value) {
        let t = self.t();
        let mut e = self.lock();
        let mut line = json!({"t": t, "step": e.step, "type": kind});
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        e.lines.push(line);
    }

    pub fn record_send(&self, route: &Route, outcome: &str, t: u64) {
        let mut e = self.lock();
        let line = json!({"t": t, "step": e.step, "type": "send", "route": route.label_with_credential(), "outcome": outcome});
        e.lines.push(line);
        e.sends.push(Send { route: route.clone(), outcome: outcome.to_string() });
    }
}

impl EventSink for Journal {
    fn emit(&mut self, event: Event) {
        self.line("event", json!({"kind": event.kind.as_str(), "rule": event.rule, "message": event.message}));
        self.lock().events.push(event);
    }
}
