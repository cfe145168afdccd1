//! What one process does with a fleet's store, the same over a file or Redis: what it knows the
//! store holds (`known`), where it read the log up to, what it owes (a delta not yet appended),
//! when it may refresh next, the pause after a failure, and the flush at close and drop.

use std::time::{Duration, Instant};

use super::{now_ms, ttl_ms, Cursor, FoldOutcome, News, SetAside, Store, StoreError, Stored};
use crate::contract::Contract;
use crate::types::Delta;
use crate::{Engine, Instance};

/// The per-process knobs of `tests/fleet/README.md`, same names in every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetOptions {
    /// The least time between two refreshes (a call start refreshes only when this has passed).
    pub refresh: Duration,
    /// After a load, save or refresh fails: how long refreshes and saves pause (saves stay owed).
    pub retry: Duration,
    /// Log entries this process has seen since the base (read, loaded or appended by itself)
    /// before it tries to fold them into the base.
    pub fold_after: usize,
    /// Records of credentials and routes with no sign of life for this long are forgotten at a
    /// fold (0: never), and no key of the store expires sooner (0: no key expires).
    pub forget_after_ms: u64,
    /// The longest a close (or drop) keeps trying to append what is owed, pause or not.
    pub flush_wait: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            refresh: Duration::from_millis(250),
            retry: Duration::from_millis(5000),
            fold_after: 256,
            forget_after_ms: 7 * 24 * 3600 * 1000,
            flush_wait: Duration::from_secs(2),
        }
    }
}

/// What this process did with the store so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetStats {
    /// Appends that reached the store.
    pub saves: u64,
    /// The wall time of each append attempt, in milliseconds.
    pub save_ms: Vec<f64>,
    /// Refreshes that asked the store (paced and paused ones are not counted).
    pub refreshes: u64,
    /// Folds this process made.
    pub folds: u64,
    /// Store operations that failed (each pauses the store for `retry`, but a refused newer base).
    pub failures: u64,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The changes were appended.
    Appended,
    /// Nothing the store does not hold already.
    Unchanged,
    /// The store failed a moment ago: the changes stay owed until the pause ends (the next
    /// save, or the close, appends them).
    Owed,
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// Not yet: the last one was less than `refresh` ago, or the store is paused after a
    /// failure, or the policy (contract 0.1/0.2) has no `absorb` and loads only at start.
    Skipped,
    /// Asked the store; `entries` new entries were merged into the engine.
    Read { entries: usize },
    /// The log was folded past what we had read: the whole state was loaded and merged.
    Reloaded,
}

/// One process's view of a fleet's store. Load once, refresh at the start of each call, save
/// after each state change; what could not be appended stays owed and is flushed by the next
/// save, by `close`, or when this is dropped (bounded by `flush_wait`).
pub struct Fleet {
    store: Store,
    options: FleetOptions,
    /// The state this process knows the store holds (loaded, absorbed or appended).
    known: Option<String>,
    /// Where the log was read up to; none before a load succeeded.
    cursor: Option<Cursor>,
    /// Log entries seen since the last fold, ours included.
    entries: usize,
    next_refresh: Option<Instant>,
    paused_until: Option<Instant>,
    /// A delta computed but not appended yet; the next save's delta includes it, as `known`
    /// only advances after an append.
    owed: Option<Delta>,
    stats: FleetStats,
}

impl Fleet {
    pub fn new(store: impl Into<Store>) -> Fleet {
        Fleet {
            store: store.into(),
            options: FleetOptions::default(),
            known: None,
            cursor: None,
            entries: 0,
            next_refresh: None,
            paused_until: None,
            owed: None,
            stats: FleetStats::default(),
        }
    }

    pub fn with_options(mut self, options: FleetOptions) -> Fleet {
        self.options = options;
        self
    }

    pub fn options(&self) -> FleetOptions {
        self.options
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn stats(&self) -> &FleetStats {
        &self.stats
    }

    /// Whether a delta is waiting to be appended.
    pub fn owes(&self) -> bool {
        self.owed.is_some()
    }

    /// The fleet's state for `create_engine`: the base and every log entry folded. A base the
    /// policy cannot read is set aside; one of a newer schema is refused and left untouched.
    pub fn load(&mut self, inst: &mut Instance) -> Result<Stored, StoreError> {
        let loaded = self.guard(|store| store.log().load(inst))?;
        self.known = loaded.state.clone();
        self.cursor = Some(loaded.cursor);
        self.entries = loaded.entries;
        self.next_refresh = Some(Instant::now() + self.options.refresh);
        Ok(Stored { state: loaded.state, set_aside: loaded.set_aside })
    }

    /// At the start of a call: what peers appended since the last refresh, merged into the
    /// running engine (`absorb`). Asks the store at most every `refresh`, never while paused.
    pub fn refresh(&mut self, inst: &mut Instance, engine: &Engine) -> Result<Refreshed, StoreError> {
        let now = Instant::now();
        if inst.contract() != Contract::V0_3 || self.paused(now) || self.next_refresh.is_some_and(|at| now < at) {
            return Ok(Refreshed::Skipped);
        }
        self.next_refresh = Some(now + self.options.refresh);
        self.stats.refreshes += 1;
        // A save owed from a pause goes out now, not only with the next state change.
        self.pay_owed(inst)?;
        let news = match &self.cursor {
            Some(cursor) => {
                let cursor = cursor.clone();
                self.guard(|store| store.log().read_new(&cursor))?
            }
            // Never loaded (the store was down at start-up): load now.
            None => News::Moved,
        };
        match news {
            News::Entries { entries, cursor } => {
                let read = entries.len();
                self.entries += read;
                self.cursor = Some(cursor);
                self.absorb(inst, engine, &entries)?;
                self.fold_if_due(inst);
                Ok(Refreshed::Read { entries: read })
            }
            News::Moved => {
                let loaded = self.guard(|store| store.log().load(inst))?;
                self.cursor = Some(loaded.cursor);
                self.entries = loaded.entries;
                self.absorb(inst, engine, &loaded.state.into_iter().collect::<Vec<_>>())?;
                self.fold_if_due(inst);
                Ok(Refreshed::Reloaded)
            }
        }
    }

    /// After a state change: what the engine knows that the store does not, appended.
    pub fn save(&mut self, inst: &mut Instance, engine: &Engine) -> Result<Saved, StoreError> {
        let snapshot = inst.snapshot(engine)?;
        self.save_snapshot(inst, &snapshot)
    }

    /// `save` with the engine's snapshot already taken. While the store is paused after a
    /// failure, the delta is only computed and stays owed.
    pub fn save_snapshot(&mut self, inst: &mut Instance, snapshot: &str) -> Result<Saved, StoreError> {
        // Nothing known to be stored (an empty store, or one that could not be loaded): the
        // guest's delta from nothing, which leaves out records that say nothing.
        let since = self.known.as_deref().unwrap_or("");
        let delta = inst.changes(since, snapshot)?.map_err(|e| StoreError::Merge(e.message))?;
        let Some(delta) = delta else {
            self.owed = None;
            return Ok(Saved::Unchanged);
        };
        if self.paused(Instant::now()) {
            self.owed = Some(delta);
            return Ok(Saved::Owed);
        }
        self.owed = Some(delta);
        self.pay_owed(inst)?;
        self.fold_if_due(inst);
        Ok(Saved::Appended)
    }

    /// Appends the owed delta, if any; on success the store holds it (`known`), else it stays
    /// owed.
    fn pay_owed(&mut self, inst: &mut Instance) -> Result<(), StoreError> {
        let Some(delta) = self.owed.take() else { return Ok(()) };
        if let Err(e) = self.append(&delta) {
            self.owed = Some(delta);
            return Err(e);
        }
        // Our own entries count towards a fold too, so a process that only writes folds as well
        // (read back at a refresh they count again: folding a little early costs nothing).
        self.entries += 1;
        self.known = Some(match &self.known {
            Some(known) => inst.merge(known, &delta.state)?.map_err(|e| StoreError::Merge(e.message))?,
            None => delta.state,
        });
        Ok(())
    }

    /// Appends what is owed, trying again until `flush_wait` has passed, whatever the pause
    /// after a failure (the last chance before the process ends). Needs no instance: the owed
    /// delta was computed when it was saved.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let Some(delta) = self.owed.clone() else { return Ok(()) };
        let deadline = Instant::now() + self.options.flush_wait;
        loop {
            match self.append(&delta) {
                Ok(()) => {
                    self.owed = None;
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Flushes what is owed (see `flush`); dropping a `Fleet` does the same, silently.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.flush()
    }

    /// Base and log folded into a new base now, forgetting records not seen for
    /// `forget_after_ms`; `None` when another process holds the fold or folded first.
    pub fn fold(&mut self, inst: &mut Instance) -> Result<Option<(u32, Option<SetAside>)>, StoreError> {
        let forget_after_ms = self.options.forget_after_ms;
        // Counted afresh whatever comes of it: whoever folded, the next refresh sees it, and a
        // fold that cannot be done (a newer base) is not tried again after every save.
        self.entries = 0;
        let outcome = self.guard(|store| store.log().fold(inst, forget_after_ms))?;
        Ok(match outcome {
            FoldOutcome::Folded { forgotten, set_aside } => {
                self.stats.folds += 1;
                Some((forgotten, set_aside))
            }
            FoldOutcome::Skipped => None,
        })
    }

    /// A fold when this process has seen more than `fold_after` entries since the base, or a
    /// file log has grown past its size bound.
    fn fold_if_due(&mut self, inst: &mut Instance) {
        let large = matches!(&self.store, Store::File(file) if file.log_is_large());
        if self.entries > self.options.fold_after || large {
            // Optional work: a failed fold loses nothing, so its error only pauses the store
            // (and is in the stats); the save or refresh that led here went through.
            let _ = self.fold(inst);
        }
    }

    fn absorb(&mut self, inst: &mut Instance, engine: &Engine, entries: &[String]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // Forget nothing here: forgetting is the fold's, which rewrites the base.
        let folded = inst.fold(entries, now_ms(), 0)?.map_err(|e| StoreError::Merge(e.message))?;
        let Some(state) = folded.state else { return Ok(()) };
        // A state the engine refuses (a newer schema) is a newer policy's: leave it to that one.
        if inst.absorb(engine, &state)?.is_err() {
            return Ok(());
        }
        self.known = Some(match &self.known {
            Some(known) => inst.merge(known, &state)?.map_err(|e| StoreError::Merge(e.message))?,
            None => state,
        });
        Ok(())
    }

    fn append(&mut self, delta: &Delta) -> Result<(), StoreError> {
        let ttl = ttl_ms(delta.keep_until_ms, now_ms(), self.options.forget_after_ms);
        let start = Instant::now();
        let appended = self.guard(|store| store.log().append(&delta.state, ttl));
        self.stats.save_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        if appended.is_ok() {
            self.stats.saves += 1;
        }
        appended
    }

    fn paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|until| now < until)
    }

    /// Runs one store operation: a failure pauses the store for `retry`, a success ends the pause.
    fn guard<T>(&mut self, op: impl FnOnce(&Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match op(&self.store) {
            Ok(value) => {
                self.paused_until = None;
                self.stats.last_error = None;
                Ok(value)
            }
            Err(e) => {
                // A newer schema is no outage: pausing would not change it.
                if !matches!(e, StoreError::Refused { .. }) {
                    self.paused_until = Some(Instant::now() + self.options.retry);
                }
                self.stats.failures += 1;
                self.stats.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Nobody is left to tell: a failed flush is as if the process had died a moment earlier,
        // and peers still hold everything they learned themselves.
        let _ = self.flush();
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("store", &self.store).field("owes", &self.owes()).field("stats", &self.stats).finish()
    }
}
