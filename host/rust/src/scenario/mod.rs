//! The scenario runner of `tests/scenarios/README.md`: a scripted provider, a virtual clock,
//! the steps, their expectations, and the trace compared with (or blessed into) the golden file.
//! Every decision comes from the guest; this only drives it and records what happened.

mod expect;
mod file;
mod golden;
mod journal;
mod script;
mod timeline;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::clock::{Clock, VirtualClock};
use crate::drive::Begun;
use crate::error::Error;
use crate::host::Host;
use crate::instance::{Engine, Instance};
use crate::policy::Policy;
use crate::types::{Attempt, CallFailure, CallOptions, CallSuccess, CredentialInfo, Header, HttpResponse, Request};
use file::{Response, ScenarioFile, StepFile};
use journal::Journal;
use script::{ScriptedProvider, Scripts};

pub use golden::path_for as golden_path;
pub use timeline::render as render_timeline;

/// What to do with the golden trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Golden {
    Compare,
    /// Write the trace as the new golden file (expectations are still checked).
    Bless,
}

/// A scenario that could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("scenario {} is malformed at `{field}`: {message}", path.display())]
    Malformed { path: PathBuf, field: String, message: String },
    #[error("cannot write golden trace {}: {source}", path.display())]
    WriteGolden { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Policy(#[from] Error),
}

/// The outcome of one scenario.
#[derive(Debug)]
pub struct Report {
    pub name: String,
    pub description: String,
    /// The trace lines, as written to the golden file.
    pub trace: Vec<Value>,
    /// Each failed expectation or golden difference, naming the scenario and step.
    pub failures: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the scenario at `path` on a fresh instance of `policy`.
pub fn run(policy: &Policy, path: &Path, golden: Golden) -> Result<Report, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.into(), source })?;
    let scenario = parse(&text).map_err(|(field, message)| ScenarioError::Malformed { path: path.into(), field, message })?;
    let name = scenario.name.clone();
    let description = scenario.description.clone();

    let (trace, mut failures, completed) = Run::execute(policy, scenario)?;

    let golden_file = golden::path_for(path);
    match golden {
        Golden::Bless if completed => {
            golden::write(&golden_file, &trace).map_err(|source| ScenarioError::WriteGolden { path: golden_file, source })?
        }
        Golden::Bless => failures.push(format!("scenario `{name}`: not blessed, the run stopped early")),
        Golden::Compare => {
            if let Some(diff) = golden::compare(&golden_file, path, &trace) {
                failures.push(format!("scenario `{name}`: {diff}"));
            }
        }
    }
    Ok(Report { name, description, trace, failures })
}

fn parse(text: &str) -> Result<ScenarioFile, (String, String)> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let scenario: ScenarioFile = serde_path_to_error::deserialize(de).map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
    let scripts = scenario.providers.iter().map(|(k, s)| (format!("providers.{k}"), s));
    let step_scripts = scenario
        .steps
        .iter()
        .enumerate()
        .flat_map(|(i, step)| step.script.iter().flatten().map(move |(k, s)| (format!("steps[{i}].script.{k}"), s)));
    for (at, script) in scripts.chain(step_scripts) {
        for response in script.script.iter().chain(&script.default) {
            if let Response::Transport(t) = response {
                if crate::types::TransportKind::parse(&t.transport).is_none() {
                    return Err((at, format!("unknown transport kind `{}`", t.transport)));
                }
            }
        }
    }
    for (i, step) in scenario.steps.iter().enumerate() {
        let actions = [
            step.advance_ms.is_some(),
            step.select.is_some(),
            step.call.is_some(),
            step.stream.is_some(),
            step.restart.is_some(),
            step.set_credentials.is_some(),
            step.script.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            return Err((
                format!("steps[{i}]"),
                "needs exactly one of advance_ms, select, call, stream, restart, set_credentials, script".to_string(),
            ));
        }
    }
    Ok(scenario)
}

/// One run in progress.
struct Run {
    name: String,
    instance: Instance,
    engine: Option<Engine>,
    config: String,
    credentials: Vec<CredentialInfo>,
    clock: VirtualClock,
    journal: Journal,
    scripts: Scripts,
    failures: Vec<String>,
}

impl Run {
    /// The trace, the failures, and whether every step ran.
    fn execute(policy: &Policy, scenario: ScenarioFile) -> Result<(Vec<Value>, Vec<String>, bool), ScenarioError> {
        let clock = VirtualClock::new(scenario.start_ms);
        let journal = Journal::new(clock.clone(), scenario.start_ms);
        let scripts = Scripts::new(scenario.providers);
        let transport = ScriptedProvider { scripts: scripts.clone(), clock: clock.clone(), journal: journal.clone() };
        let host = Host::new(transport).with_clock(Clock::Virtual(clock.clone())).with_events(journal.clone()).with_seed(scenario.seed);
        let instance = policy.instantiate(host)?;
        let credentials = match scenario.credentials {
            Some(list) => list.into_iter().map(CredentialInfo::from).collect(),
            None => config_credentials(&scenario.config),
        };
        let state = match scenario.state {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        };
        let mut run = Run {
            name: scenario.name,
            instance,
            engine: None,
            config: scenario.config.to_string(),
            credentials,
            clock,
            journal,
            scripts,
            failures: Vec::new(),
        };

        // Events of the first create count as step 0's.
        run.journal.begin_step(0);
        let mut completed = run.create(state.as_deref(), 0);
        for (i, step) in scenario.steps.into_iter().enumerate() {
            if !completed {
                break;
            }
            completed = run.step(i, step);
        }
        let trace = std::mem::take(&mut run.journal.lock().lines);
        Ok((trace, run.failures, completed))
    }

    fn fail(&mut self, step: usize, what: &str, message: impl std::fmt::Display) {
        self.failures.push(format!("scenario `{}` step {step} ({what}): {message}", self.name));
    }

    fn create(&mut self, state: Option<&str>, step: usize) -> bool {
        match self.instance.create_engine(&self.config, state, &self.credentials) {
            Ok(engine) => {
                self.engine = Some(engine);
                true
            }
            Err(e) => {
                self.fail(step, "create engine", e);
                false
            }
        }
    }

    /// Runs one step; false when the run cannot go on (the guest failed, or no engine).
    fn step(&mut self, i: usize, step: StepFile) -> bool {
        if i > 0 {
            self.journal.begin_step(i);
        }
        let started = self.clock.now_ms();
        let (what, mut diffs) = match self.action(i, &step) {
            Ok(done) => done,
            Err(e) => {
                self.fail(i, "guest", e);
                return false;
            }
        };
        // A call checks its own elapsed time alongside its other expectations.
        if what != "call" && what != "stream" {
            diffs.extend(expect::elapsed(&step.expect, self.clock.now_ms() - started));
        }
        let events = self.journal.lock().events.clone();
        diffs.extend(expect::events(&step.events, &step.no_events, &events));
        for d in diffs {
            self.fail(i, what, d);
        }
        self.engine.is_some()
    }

    /// Does the step's action; returns its name and the expectation diffs.
    fn action(&mut self, i: usize, step: &StepFile) -> Result<(&'static str, Vec<String>), Error> {
        let Some(engine) = self.engine.as_ref() else {
            return Err(Error::Guest("no engine to run the step on".to_string()));
        };
        if let Some(ms) = step.advance_ms {
            self.clock.advance(ms);
            self.journal.line("advance", json!({}));
            return Ok(("advance", Vec::new()));
        }
        if step.select.is_some() {
            let got = self.instance.select(engine)?;
            match &got {
                Ok(route) => self.journal.line("select", json!({"route": route.label_with_credential()})),
                Err(no) => self.journal.line("select", json!({"no_route": no.message})),
            }
            return Ok(("select", expect::select(&step.expect, &got)));
        }
        if let Some(call) = &step.call {
            let started = self.clock.now_ms();
            let got = self.instance.call(engine, &request(call.request.as_ref()))?;
            self.journal.line("result", result_fields(&got));
            let sends = self.journal.lock().sends.clone();
            let elapsed = self.clock.now_ms() - started;
            return Ok(("call", expect::call(&step.expect, &got, &sends, elapsed)));
        }
        if let Some(stream) = &step.stream {
            let started = self.clock.now_ms();
            let options = CallOptions { timeout_ms: stream.timeout_ms };
            let got = match self.instance.stream(engine, &request(stream.request.as_ref()), &options)? {
                Begun::Failed { error, attempts } => {
                    Streamed { committed: None, delivered: Vec::new(), got: Err(CallFailure { error, attempts }) }
                }
                Begun::Answer(answer) => {
                    let committed = self.journal.t();
                    let head = answer.head().clone();
                    let (delivered, ended) = answer.finish().map_err(|e| Error::Guest(format!("reading the answer: {e}")))?;
                    let got = match ended.error {
                        Some(error) => Err(CallFailure { error, attempts: ended.attempts }),
                        None => {
                            let route = ended.route.ok_or_else(|| Error::Guest("an answer without its route".into()))?;
                            let response = HttpResponse { status: head.status, headers: head.headers, body: delivered.clone() };
                            Ok(CallSuccess { response, route, attempts: ended.attempts })
                        }
                    };
                    Streamed { committed: Some(committed), delivered, got }
                }
            };
            let mut fields = result_fields(&got.got);
            fields["committed_t"] = json!(got.committed);
            fields["delivered"] = json!(String::from_utf8_lossy(&got.delivered));
            self.journal.line("result", fields);
            let sends = self.journal.lock().sends.clone();
            let elapsed = self.clock.now_ms() - started;
            let mut diffs = expect::call(&step.expect, &got.got, &sends, elapsed);
            diffs.extend(expect::streamed(&step.expect, got.committed.is_some(), &got.delivered));
            return Ok(("stream", diffs));
        }
        if let Some(list) = &step.set_credentials {
            self.credentials = list.iter().cloned().map(CredentialInfo::from).collect();
            self.instance.set_credentials(engine, &self.credentials)?;
            self.journal.line("set_credentials", json!({}));
            return Ok(("set_credentials", Vec::new()));
        }
        if let Some(scripts) = &step.script {
            self.scripts.replace(scripts.clone());
            self.journal.line("script", json!({}));
            return Ok(("script", Vec::new()));
        }
        // What is left is `restart`: snapshot, drop, create from the snapshot.
        let snapshot = self.instance.snapshot(engine)?;
        if let Some(engine) = self.engine.take() {
            self.instance.drop_engine(engine)?;
        }
        self.journal.line("restart", json!({}));
        self.create(Some(&snapshot), i);
        Ok(("restart", Vec::new()))
    }
}

/// What a `stream` step's caller saw: when the head came (ms since start), the bytes it read,
/// and how the call ended.
struct Streamed {
    committed: Option<u64>,
    delivered: Vec<u8>,
    got: Result<CallSuccess, CallFailure>,
}

/// The README's default credentials: every id in the config, fingerprint `fp-<id>`.
fn config_credentials(config: &Value) -> Vec<CredentialInfo> {
    let providers = config.get("providers").and_then(Value::as_object);
    providers
        .into_iter()
        .flat_map(|p| p.values())
        .filter_map(|p| p.get("credentials").and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("id").and_then(Value::as_str))
        .map(|id| CredentialInfo { id: id.to_string(), fingerprint: format!("fp-{id}") })
        .collect()
}

fn request(file: Option<&file::RequestFile>) -> Request {
    let default_body = || json!({"model": "placeholder", "messages": [{"role": "user", "content": "hello"}]});
    match file {
        None => Request {
            path: "/chat/completions".to_string(),
            method: "POST".to_string(),
            headers: Vec::new(),
            body: default_body().to_string().into_bytes(),
        },
        Some(r) => Request {
            path: r.path.clone(),
            method: r.method.clone(),
            headers: r.headers.iter().map(|(name, value)| Header { name: name.clone(), value: value.clone() }).collect(),
            body: match &r.body {
                None => default_body().to_string().into_bytes(),
                Some(Value::String(s)) => s.clone().into_bytes(),
                Some(other) => other.to_string().into_bytes(),
            },
        },
    }
}

fn result_fields(got: &Result<CallSuccess, CallFailure>) -> Value {
    match got {
        Ok(s) => json!({"ok": true, "route": s.route.label_with_credential(), "attempts": attempts(&s.attempts)}),
        Err(f) => json!({
            "ok": false,
            "reason": f.error.reason.as_str(),
            "message": f.error.message,
            "attempts": attempts(&f.attempts),
        }),
    }
}

fn attempts(list: &[Attempt]) -> Vec<Value> {
    list.iter()
        .map(|a| {
            json!({
                "route": a.route.label_with_credential(),
                "outcome": a.outcome,
                "reason": a.classified.as_ref().map(|c| c.reason.as_str()),
                "action": a.action.as_ref().map(|x| x.kind.as_str()),
                "rule": a.action.as_ref().map(|x| x.rule.as_str()),
                "delay_ms": a.action.as_ref().map(|x| x.delay_ms),
            })
        })
        .collect()
}

/// Runs every `*.json` in `dir` (sorted), for test suites.
pub fn run_dir(policy: &Policy, dir: &Path) -> Result<Vec<Report>, ScenarioError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ScenarioError::Read { path: dir.into(), source })?;
    let mut paths: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    paths.sort();
    paths.iter().map(|p| run(policy, p, Golden::Compare)).collect()
}
