//! The Redis store, for fleets across machines: the base snapshot at `P`
//! (`failover-policy:<name>`), a stream of deltas at `P:log`, and at `P:folded` the id of the
//! last entry folded into the base (`tests/fleet/README.md`). A save is one pipelined round
//! trip (`XADD` + `PEXPIRE`) and never waits on another writer; a refresh is one round trip
//! (`GET P:folded` + `XREAD`). Plain TCP or TLS (`rediss://`, rustls, the system's roots or a CA
//! file), an ACL user and password from the URL. Every operation is bounded by the timeout.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::{Client, Connection, RedisError, Value};

use super::{join, now_ms, ttl_ms, Cursor, FoldOutcome, Loaded, Log, News, SetAside, StoreError, StreamId};
use crate::Instance;

pub struct RedisStore {
    client: Client,
    /// The URL without its password, for messages.
    shown: String,
    key: String,
    timeout: Duration,
    connect_timeout: Duration,
    /// One connection, kept between operations and dropped after any error.
    connection: Mutex<Option<Connection>>,
}

/// Read and write timeout of a command, unless configured.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// Setting a connection up (TCP, TLS, AUTH) takes longer than a command on a busy machine: a
/// fleet of processes starting at once timed out at 200 ms.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a corrupt value is kept aside for someone to look at.
const ASIDE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// Entries one refresh round trip reads at most; a longer backlog is read on the next ones.
const READ_COUNT: usize = 512;

impl RedisStore {
    /// The store at `url` (`redis://[user:password@]host:port/db`, or `rediss://` for TLS
    /// checked against the system's roots) for the policy `policy_name`, under the keys
    /// `failover-policy:<policy_name>[:log|:folded]`. Nothing is contacted until the first
    /// operation.
    pub fn new(url: &str, policy_name: &str) -> Result<RedisStore, StoreError> {
        let shown = redact(url);
        let client = Client::open(url).map_err(|e| StoreError::Backend { store: shown.clone(), message: e.to_string() })?;
        Ok(RedisStore::with_client(client, shown, policy_name))
    }

    /// Like `new` for a `rediss://` URL whose server certificate is checked against the CA
    /// certificates (PEM) in `ca_file` instead of the system's roots.
    pub fn with_ca_file(url: &str, policy_name: &str, ca_file: &Path) -> Result<RedisStore, StoreError> {
        let shown = redact(url);
        let backend = |message: String| StoreError::Backend { store: shown.clone(), message };
        if !url.starts_with("rediss://") {
            return Err(backend(format!("a CA file ({}) needs a rediss:// URL", ca_file.display())));
        }
        let pem = std::fs::read(ca_file).map_err(|source| StoreError::Io { path: ca_file.to_path_buf(), source })?;
        let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
        let client = Client::build_with_tls(url, certs).map_err(|e| backend(format!("CA file {}: {e}", ca_file.display())))?;
        Ok(RedisStore::with_client(client, shown, policy_name))
    }

    fn with_client(client: Client, shown: String, policy_name: &str) -> RedisStore {
        RedisStore {
            client,
            shown,
            key: format!("failover-policy:{policy_name}"),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            connection: Mutex::new(None),
        }
    }

    /// The longest any one command's read or write waits.
    pub fn with_timeout(mut self, timeout: Duration) -> RedisStore {
        self.timeout = timeout;
        self
    }

    /// The longest setting a connection up (TCP, TLS, AUTH) waits.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> RedisStore {
        self.connect_timeout = timeout;
        self
    }

    /// The base snapshot's key; the log is `<key>:log`, the folded mark `<key>:folded`.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn log_key(&self) -> String {
        format!("{}:log", self.key)
    }

    fn folded_key(&self) -> String {
        format!("{}:folded", self.key)
    }

    fn store(&self) -> String {
        format!("{} {}", self.shown, self.key)
    }

    /// Runs `op` on the kept connection (made first when there is none, within the timeout);
    /// after an error the connection is dropped, as a timed-out reply may still arrive on it.
    fn with_connection<T>(&self, op: impl FnOnce(&mut Connection) -> Result<T, RedisError>) -> Result<T, StoreError> {
        let mut slot = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        let connection = match slot.take() {
            Some(connection) => connection,
            None => self.connect().map_err(|e| self.error(e))?,
        };
        let mut connection = connection;
        let done = op(&mut connection).map_err(|e| self.error(e))?;
        *slot = Some(connection);
        Ok(done)
    }

    fn connect(&self) -> Result<Connection, RedisError> {
        let connection = self.client.get_connection_with_timeout(self.connect_timeout)?;
        connection.set_read_timeout(Some(self.timeout))?;
        connection.set_write_timeout(Some(self.timeout))?;
        Ok(connection)
    }

    fn error(&self, e: RedisError) -> StoreError {
        let (store, message) = (self.store(), e.to_string());
        if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
            StoreError::Unavailable { store, message }
        } else {
            StoreError::Backend { store, message }
        }
    }

    /// Base, folded mark and every log entry, read in one transaction.
    fn read_all(&self, con: &mut Connection) -> Result<Everything, RedisError> {
        let (base, folded, log): (Option<String>, Option<String>, Value) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&self.key)
            .cmd("GET")
            .arg(self.folded_key())
            .cmd("XRANGE")
            .arg(self.log_key())
            .arg("-")
            .arg("+")
            .query(con)?;
        Ok((base, folded.as_deref().and_then(StreamId::parse), entries(&log)))
    }

    /// Moves an unreadable base to `P:corrupt-<ms>`, unless it changed since it was read.
    fn set_aside_base(&self, raw: &str, why: String) -> Result<Option<SetAside>, StoreError> {
        let aside = format!("{}:corrupt-{}", self.key, now_ms());
        let moved: Option<Value> = self.with_connection(|con| {
            redis::cmd("WATCH").arg(&self.key).exec(con)?;
            let now: Option<String> = redis::cmd("GET").arg(&self.key).query(con)?;
            if now.as_deref() != Some(raw) {
                redis::cmd("UNWATCH").exec(con)?;
                return Ok(None);
            }
            redis::pipe().atomic().cmd("SET").arg(&aside).arg(raw).arg("PX").arg(ASIDE_TTL_MS).cmd("DEL").arg(&self.key).query(con)
        })?;
        Ok(moved.map(|_| SetAside { path: PathBuf::from(&self.key), aside: PathBuf::from(aside), why }))
    }
}

/// What a load reads: the base, the folded mark and every log entry.
type Everything = (Option<String>, Option<StreamId>, Vec<(StreamId, String)>);

impl Clone for RedisStore {
    /// The same store; the clone makes its own connection.
    fn clone(&self) -> Self {
        RedisStore {
            client: self.client.clone(),
            shown: self.shown.clone(),
            key: self.key.clone(),
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            connection: Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("url", &self.shown).field("key", &self.key).field("timeout", &self.timeout).finish()
    }
}

impl Log for RedisStore {
    fn load(&self, inst: &mut Instance) -> Result<Loaded, StoreError> {
        let (base, folded, log) = self.with_connection(|con| self.read_all(con))?;
        let texts: Vec<String> = log.iter().map(|(_, text)| text.clone()).collect();
        let joined = join(inst, &self.store(), base.as_deref(), &texts, now_ms(), 0)?;
        let last = log.last().map(|(id, _)| *id).or(folded).unwrap_or(StreamId { ms: 0, seq: 0 });
        let set_aside = match (joined.base_unreadable, &base) {
            (Some(why), Some(raw)) => self.set_aside_base(raw, why)?,
            _ => None,
        };
        Ok(Loaded { state: joined.state, cursor: Cursor::Stream(last), entries: log.len(), set_aside })
    }

    fn append(&self, delta: &str, ttl_ms: Option<u64>) -> Result<(), StoreError> {
        let log = self.log_key();
        let mut pipe = redis::pipe();
        pipe.cmd("XADD").arg(&log).arg("*").arg("state").arg(delta);
        // Pipelined with the append: still one round trip. No TTL: kept for ever.
        if let Some(ttl_ms) = ttl_ms {
            pipe.cmd("PEXPIRE").arg(&log).arg(ttl_ms);
        }
        self.with_connection(|con| pipe.exec(con))
    }

    fn read_new(&self, after: &Cursor) -> Result<News, StoreError> {
        let Cursor::Stream(last) = after else { return Ok(News::Moved) };
        let (folded, read): (Option<String>, Value) = self.with_connection(|con| {
            redis::pipe()
                .cmd("GET")
                .arg(self.folded_key())
                .cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("STREAMS")
                .arg(self.log_key())
                .arg(last.to_string())
                .query(con)
        })?;
        if folded.as_deref().and_then(StreamId::parse).is_some_and(|f| f > *last) {
            return Ok(News::Moved);
        }
        // XREAD answers [[key, entries]] (RESP2) or {key: entries} (RESP3), nil when none.
        let log = match read {
            Value::Array(streams) => streams.into_iter().find_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
                _ => None,
            }),
            Value::Map(streams) => streams.into_iter().next().map(|(_, v)| v),
            _ => None,
        };
        let log = log.map(|v| entries(&v)).unwrap_or_default();
        let cursor = Cursor::Stream(log.last().map_or(*last, |(id, _)| *id));
        Ok(News::Entries { entries: log.into_iter().map(|(_, text)| text).collect(), cursor })
    }

    fn fold(&self, inst: &mut Instance, forget_after_ms: u64) -> Result<FoldOutcome, StoreError> {
        let (base, _, log) = self.with_connection(|con| {
            redis::cmd("WATCH").arg(&self.key).arg(self.folded_key()).exec(con)?;
            // Plain reads after WATCH: the transaction below fails if base or mark changed.
            let (base, folded): (Option<String>, Option<String>) =
                redis::pipe().cmd("GET").arg(&self.key).cmd("GET").arg(self.folded_key()).query(con)?;
            let log: Value = redis::cmd("XRANGE").arg(self.log_key()).arg("-").arg("+").query(con)?;
            Ok((base, folded, entries(&log)))
        })?;
        let unwatch = || self.with_connection(|con| redis::cmd("UNWATCH").exec(con));
        let Some((last, _)) = log.last() else {
            unwatch()?;
            return Ok(FoldOutcome::Skipped);
        };
        let texts: Vec<String> = log.iter().map(|(_, text)| text.clone()).collect();
        let now = now_ms();
        let joined = match join(inst, &self.store(), base.as_deref(), &texts, now, forget_after_ms) {
            Ok(joined) if !joined.newer_entries => joined,
            Ok(_) => {
                unwatch()?;
                return Ok(FoldOutcome::Skipped);
            }
            Err(e) => {
                unwatch()?;
                return Err(e);
            }
        };
        let aside = format!("{}:corrupt-{now}", self.key);
        // Base and mark live as long as each other: a mark without its base, or the reverse,
        // would make a reader skip entries or read them against the wrong base.
        let ttl = ttl_ms(joined.keep_until_ms, now, forget_after_ms);
        // `PX` on the command just queued; no TTL at all when nothing is ever forgotten.
        let expiring = |tx: &mut redis::Pipeline| {
            if let Some(ttl) = ttl {
                tx.arg("PX").arg(ttl);
            }
        };
        let mut tx = redis::pipe();
        tx.atomic();
        match &joined.state {
            Some(state) => expiring(tx.cmd("SET").arg(&self.key).arg(state)),
            None => {
                tx.cmd("DEL").arg(&self.key);
            }
        }
        expiring(tx.cmd("SET").arg(self.folded_key()).arg(last.to_string()));
        tx.cmd("XTRIM").arg(self.log_key()).arg("MINID").arg(last.next().to_string());
        let mut set_aside = None;
        let mut unreadable: Vec<&str> = joined.unreadable.iter().map(String::as_str).collect();
        if let (Some(why), Some(raw)) = (&joined.base_unreadable, &base) {
            unreadable.insert(0, raw);
            set_aside = Some(SetAside { path: PathBuf::from(&self.key), aside: PathBuf::from(&aside), why: why.clone() });
        }
        if !unreadable.is_empty() {
            tx.cmd("SET").arg(&aside).arg(unreadable.join("\n")).arg("PX").arg(ASIDE_TTL_MS);
            let why = format!("{} log entr(y/ies) the policy could not read", joined.unreadable.len());
            set_aside.get_or_insert(SetAside { path: PathBuf::from(self.log_key()), aside: PathBuf::from(&aside), why });
        }
        // EXEC answers nil when another process folded first: its fold holds ours.
        let done: Option<Value> = self.with_connection(|con| tx.query(con))?;
        Ok(match done {
            Some(_) => FoldOutcome::Folded { forgotten: joined.forgotten, set_aside },
            None => FoldOutcome::Skipped,
        })
    }
}

impl StreamId {
    fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId { ms: ms.parse().ok()?, seq: seq.parse().ok()? })
    }

    /// The least id after this one.
    fn next(self) -> StreamId {
        match self.seq.checked_add(1) {
            Some(seq) => StreamId { ms: self.ms, seq },
            None => StreamId { ms: self.ms.saturating_add(1), seq: 0 },
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A stream's entries (`[[id, [field, value, ...]], ...]`) as (id, the `state` field); entries
/// of another shape are skipped (nothing of ours writes them).
fn entries(value: &Value) -> Vec<(StreamId, String)> {
    let Value::Array(items) = value else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else { return None };
            let id = StreamId::parse(&text(pair.first()?)?)?;
            let fields = match pair.get(1)? {
                Value::Array(fields) => fields.chunks(2).filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?))).collect(),
                Value::Map(fields) => fields.iter().filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect(),
                _ => Vec::new(),
            };
            let state = fields.into_iter().find(|(k, _)| k == "state").map(|(_, v)| v)?;
            Some((id, state))
        })
        .collect()
}

fn text(value: &Value) -> Option<String> {
    match value {
        // Invalid UTF-8 reaches the component as text it refuses, and is set aside.
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Some(s.clone()),
        _ => None,
    }
}

/// `url` with its password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_string() };
    let user = rest[..at].split_once(':').map_or(&rest[..at], |(user, _)| user);
    let shown_user = if rest[..at].contains(':') { format!("{user}:***") } else { "***".to_string() };
    format!("{scheme}://{shown_user}@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::{redact, StreamId};

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(redact("rediss://gw:s3cret@10.0.0.5:6380/0"), "rediss://gw:***@10.0.0.5:6380/0");
        assert_eq!(redact("redis://:s3cret@host/"), "redis://:***@host/");
        assert_eq!(redact("redis://s3cret@host/"), "redis://***@host/");
        assert_eq!(redact("redis://host:6379/"), "redis://host:6379/");
    }

    #[test]
    fn stream_ids_order_and_step_like_redis() {
        let id = StreamId::parse("1700000000000-5").expect("an id");
        assert_eq!(id.next().to_string(), "1700000000000-6");
        assert!(StreamId::parse("1700000000001-0") > Some(id));
        assert_eq!(StreamId::parse("garbage"), None);
    }
}
