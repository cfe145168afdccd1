//! Where a policy's state outlives the process and is shared by a fleet, in the layout every
//! host shares (`tests/fleet/README.md`): a base snapshot and a log of deltas, appended after
//! each state change and folded into the base now and then. A store only moves snapshots:
//! every merge is the component's (`changes`, `fold`, `absorb`, `merge`), so every host joins
//! state identically.
//!
//! A process drives a [`Fleet`]: it loads once at start-up, refreshes at the start of each call
//! (at most every `refresh_ms`, so a running process applies what its peers stored within about
//! that), saves after every state change (one append of what changed), and flushes what is owed
//! when closed or dropped. A store that is down costs a call at most its timeout once; then
//! refreshes and saves pause for `retry_ms` while the engine decides from memory (what saves
//! learn stays owed), the first save after the pause catches up, and a close tries once more
//! whatever the pause:
//!
//! ```no_run
//! use failover_host::store::{Fleet, RedisStore};
//! use failover_host::{Host, HttpTransport, Policy, Secrets};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = std::fs::read_to_string("config.json")?;
//! let secrets = Secrets::from_env(&config);
//! let credentials = secrets.credentials();
//! let mut fleet = Fleet::new(RedisStore::new("rediss://gw:secret@10.0.0.5:6380/0", "gateway")?);
//! let mut inst = Policy::load_default()?.instantiate(Host::new(HttpTransport::new()).with_secrets(secrets))?;
//! // The fleet's state, or only our own while the store is down.
//! let state = fleet.load(&mut inst).map(|s| s.state).unwrap_or_else(|e| { eprintln!("{e}"); None });
//! let engine = inst.create_engine(&config, state.as_deref(), &credentials)?;
//! fleet.refresh(&mut inst, &engine)?;       // at the start of every call
//! let route = inst.select(&engine)?;
//! // ... and after every on_failure, on_success or call:
//! if let Err(e) = fleet.save(&mut inst, &engine) {
//!     eprintln!("state not saved yet, the next save or the close catches up: {e}");
//! }
//! fleet.close()?;                           // or drop it: what is owed is flushed either way
//! # Ok(()) }
//! ```

mod file;
mod fleet;
mod redis;

use std::path::PathBuf;

pub use self::redis::RedisStore;
pub use file::FileStore;
pub use fleet::{Fleet, FleetOptions, FleetStats, Refreshed, Saved};

use crate::types::Folded;
use crate::Instance;

/// A fleet's store: a file (the default) or Redis.
#[derive(Debug, Clone)]
pub enum Store {
    File(FileStore),
    // Boxed: a Redis client is ten times a file store's size.
    Redis(Box<RedisStore>),
}

impl From<FileStore> for Store {
    fn from(store: FileStore) -> Store {
        Store::File(store)
    }
}

impl From<RedisStore> for Store {
    fn from(store: RedisStore) -> Store {
        Store::Redis(Box::new(store))
    }
}

impl Store {
    /// The store a URL names for the policy `policy_name`: `file:/abs/path` (the base file; the
    /// log and lock beside it), `redis://` or `rediss://` (TLS, checked against `ca_file` when
    /// given, else the system's roots), with `user:password@` for an ACL user.
    pub fn open(url: &str, policy_name: &str, ca_file: Option<&std::path::Path>) -> Result<Store, StoreError> {
        let unknown = || StoreError::Backend {
            store: url.split('@').next_back().unwrap_or_default().to_string(),
            message: "a store is file:/abs/path, redis://... or rediss://...".into(),
        };
        if let Some(path) = url.strip_prefix("file:") {
            return Ok(Store::File(FileStore::new(path)));
        }
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(unknown());
        }
        Ok(Store::from(match ca_file {
            Some(ca_file) => RedisStore::with_ca_file(url, policy_name, ca_file)?,
            None => RedisStore::new(url, policy_name)?,
        }))
    }

    fn log(&self) -> &dyn Log {
        match self {
            Store::File(store) => store,
            Store::Redis(store) => store.as_ref(),
        }
    }

    /// The stored state (base and log folded, nothing forgotten), checked by the component: a
    /// base it cannot read is set aside and reads as none.
    pub fn load(&self, inst: &mut Instance) -> Result<Stored, StoreError> {
        self.log().load(inst).map(|loaded| Stored { state: loaded.state, set_aside: loaded.set_aside })
    }
}

/// What one backend does in the shared layout; `Fleet` holds the per-process logic on top.
trait Log: Send {
    /// Base and every log entry, folded (nothing forgotten), and where the log was read up to.
    fn load(&self, inst: &mut Instance) -> Result<Loaded, StoreError>;
    /// One delta appended; `ttl_ms` is how long the store must keep it at least (none: for ever,
    /// see [`ttl_ms`]).
    fn append(&self, delta: &str, ttl_ms: Option<u64>) -> Result<(), StoreError>;
    /// The entries past `after`, or `News::Moved` when the log was folded or replaced past it.
    fn read_new(&self, after: &Cursor) -> Result<News, StoreError>;
    /// Base and log folded into a new base, forgetting records not seen for `forget_after_ms`,
    /// unless another process holds the fold (then nothing happens: folding is optional work).
    fn fold(&self, inst: &mut Instance, forget_after_ms: u64) -> Result<FoldOutcome, StoreError>;
}

/// Where a process has read a log up to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    /// A Redis stream entry id, `<ms>-<seq>`.
    Stream(StreamId),
    /// A log file (by inode) and the offset after its last complete line read.
    File { inode: u64, offset: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId {
    ms: u64,
    seq: u64,
}

/// What a load found.
struct Loaded {
    state: Option<String>,
    cursor: Cursor,
    /// Entries in the log (not yet folded into the base).
    entries: usize,
    set_aside: Option<SetAside>,
}

/// What a refresh read.
enum News {
    Entries {
        entries: Vec<String>,
        cursor: Cursor,
    },
    /// The log was folded or replaced past the cursor: load again.
    Moved,
}

/// What a fold did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FoldOutcome {
    Folded {
        forgotten: u32,
        set_aside: Option<SetAside>,
    },
    /// Another process holds the fold, folded first, or an entry is of a newer schema.
    Skipped,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// Another process held the lock longer than the configured bound; what this process owes
    /// stays owed, and the next save (or the close) appends it.
    #[error("state store `{}` stayed locked for {waited_ms} ms: what is owed stays owed", path.display())]
    LockTimeout { path: PathBuf, waited_ms: u64 },
    /// The stored state is of a newer schema than this policy: it is left untouched.
    #[error("state store `{store}` holds state this policy cannot read: {message}")]
    Refused { store: String, message: String },
    /// The store cannot be reached in time (Redis down, a timeout): the policy goes on deciding
    /// from its in-memory state, and the next save catches up.
    #[error("state store `{store}` is unavailable: {message}")]
    Unavailable { store: String, message: String },
    /// The store answered with an error of its own (a wrong type at the key, a denied command,
    /// a bad URL or CA file).
    #[error("state store `{store}`: {message}")]
    Backend { store: String, message: String },
    /// Our own state was refused by the component (a bug in the caller, never the store's data).
    #[error("cannot take the changes of our own state: {0}")]
    Merge(String),
    #[error(transparent)]
    Policy(#[from] crate::Error),
}

/// Corrupt or truncated state, set aside so nothing is lost and the policy goes on (for Redis,
/// `path` and `aside` are key names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub path: PathBuf,
    pub aside: PathBuf,
    /// Why it could not be read, as the component said.
    pub why: String,
}

/// What a load found: the state now in the store, and a corrupt base set aside, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub state: Option<String>,
    pub set_aside: Option<SetAside>,
}

/// A base and log entries folded (nothing forgotten unless `forget_after_ms` says so), with
/// what could not be read sorted out: a base the policy cannot read (`base_unreadable`), one of
/// a newer schema (`Refused`), unreadable entries (`unreadable`, their text) and whether any
/// entry is of a newer schema (`newer_entries`: a newer policy must fold those).
struct Joined {
    state: Option<String>,
    /// The guest's `keep_until_ms` for `state`: the latest cooldown or open-circuit end in it.
    keep_until_ms: u64,
    base_unreadable: Option<String>,
    unreadable: Vec<String>,
    newer_entries: bool,
    forgotten: u32,
}

fn join(
    inst: &mut Instance,
    store: &str,
    base: Option<&str>,
    entries: &[String],
    now_ms: u64,
    forget_after_ms: u64,
) -> Result<Joined, StoreError> {
    let states: Vec<String> = base.map(str::to_string).into_iter().chain(entries.iter().cloned()).collect();
    let Folded { state, keep_until_ms, unreadable, forgotten } =
        inst.fold(&states, now_ms, forget_after_ms)?.map_err(|e| StoreError::Refused { store: store.to_string(), message: e.message })?;
    let offset = usize::from(base.is_some());
    let mut joined = Joined { state, keep_until_ms, base_unreadable: None, unreadable: Vec::new(), newer_entries: false, forgotten };
    for u in unreadable {
        let index = u.index as usize;
        match (index.checked_sub(offset), u.newer) {
            (None, true) => return Err(StoreError::Refused { store: store.to_string(), message: u.message }),
            (None, false) => joined.base_unreadable = Some(u.message),
            (Some(_), true) => joined.newer_entries = true,
            (Some(i), false) => joined.unreadable.extend(entries.get(i).cloned()),
        }
    }
    Ok(joined)
}

/// How long a store keeps what it writes (`tests/fleet/README.md`, "TTL of every key"): until
/// the guest's `keep_until_ms` (a cooldown or open circuit still running must not vanish with
/// its key), and at least `forget_after_ms` (a record is not forgotten sooner by a fold, so no
/// key may expire sooner either). None, no TTL at all, when `forget_after_ms` is 0: such a fleet
/// forgets nothing, so nothing may expire. The same rule for an append (the delta's
/// `keep_until_ms`) and a fold (the folded state's), in every host.
fn ttl_ms(keep_until_ms: u64, now_ms: u64, forget_after_ms: u64) -> Option<u64> {
    (forget_after_ms > 0).then(|| keep_until_ms.saturating_sub(now_ms).max(forget_after_ms))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::ttl_ms;

    #[test]
    fn a_ttl_runs_to_keep_until_at_least_forget_after_and_is_none_when_nothing_is_forgotten() {
        const DAY: u64 = 24 * 3600 * 1000;
        let now = 1_000 * DAY;
        // (keep_until_ms, forget_after_ms, expected, why)
        let cases = [
            (0, 7 * DAY, Some(7 * DAY), "nothing running (or a 0.1/0.2 policy): forget_after alone"),
            (now + DAY, 7 * DAY, Some(7 * DAY), "a cooldown ending before forget_after: forget_after"),
            (now + 30 * DAY, 7 * DAY, Some(30 * DAY), "a cooldown ending after forget_after: until it ends"),
            (now + 7 * DAY + 1, 7 * DAY, Some(7 * DAY + 1), "one ms past forget_after counts"),
            (now - DAY, 7 * DAY, Some(7 * DAY), "an end already past: forget_after"),
            (0, 1, Some(1), "the least forget_after"),
            (0, 0, None, "forgetting nothing: no TTL at all"),
            (now + 30 * DAY, 0, None, "forgetting nothing: no TTL even with a cooldown running"),
            (u64::MAX, 7 * DAY, Some(u64::MAX - now), "no overflow"),
        ];
        for (keep_until_ms, forget_after_ms, expected, why) in cases {
            assert_eq!(ttl_ms(keep_until_ms, now, forget_after_ms), expected, "{why}");
        }
    }
}
