//! The Redis store, for fleets across machines: one key per policy, updated with optimistic
//! `WATCH`/`GET`/`MULTI`/`SET`/`EXEC` (bounded retries), merged through the component, with a
//! TTL no shorter than the longest cooldown or open circuit it holds. Every network operation
//! has a timeout, so a Redis that is down costs a call at most that bound.

use std::path::PathBuf;
use std::time::Duration;

use redis::{Client, Connection, RedisError, Value};

use super::{join, now_ms, Joined, SetAside, StateStore, StoreError, Stored};
use crate::Instance;

#[derive(Debug, Clone)]
pub struct RedisStore {
    client: Client,
    url: String,
    key: String,
    timeout: Duration,
    attempts: u32,
}

/// Connect, read and write timeout, unless configured.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// `WATCH` rounds before a save gives up as contended (the next save writes again).
const DEFAULT_ATTEMPTS: u32 = 16;
/// The shortest TTL: state that holds no cooldown still outlives a quiet night.
const MIN_TTL_MS: u64 = 24 * 3600 * 1000;
/// How long a corrupt value is kept aside for someone to look at.
const ASIDE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

impl RedisStore {
    /// The store at `url` (`redis://host:port/db`) for the policy `policy_name`, under the key
    /// `failover-policy:<policy_name>`. Nothing is contacted until the first load or save.
    pub fn new(url: &str, policy_name: &str) -> Result<RedisStore, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::Backend { store: url.to_string(), message: e.to_string() })?;
        Ok(RedisStore {
            client,
            url: url.to_string(),
            key: format!("failover-policy:{policy_name}"),
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        })
    }

    /// The longest any one connect, read or write waits.
    pub fn with_timeout(mut self, timeout: Duration) -> RedisStore {
        self.timeout = timeout;
        self
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// The stored state, checked by the component (a corrupt value is set aside and reads as none).
    pub fn load(&self, inst: &mut Instance) -> Result<Stored, StoreError> {
        self.update(inst, None)
    }

    /// Merges `ours` into the stored state and writes the result; returns what is now stored.
    pub fn save(&self, inst: &mut Instance, ours: &str) -> Result<Stored, StoreError> {
        self.update(inst, Some(ours))
    }

    /// One optimistic transaction, retried while another writer changes the key between our
    /// `WATCH` and `EXEC`. `ours` none: only check (and set aside) what is stored.
    fn update(&self, inst: &mut Instance, ours: Option<&str>) -> Result<Stored, StoreError> {
        let mut con = self.connect()?;
        for _ in 0..self.attempts {
            redis::cmd("WATCH").arg(&self.key).exec(&mut con).map_err(|e| self.error(e))?;
            let current: Option<String> = redis::cmd("GET").arg(&self.key).query(&mut con).map_err(|e| self.error(e))?;
            let (merged, unreadable) = match current.as_deref().map(|c| join(inst, c, ours.unwrap_or(c))).transpose()? {
                None => (ours.map(str::to_string), None),
                Some(Joined::Merged(state)) => (Some(state), None),
                Some(Joined::Unreadable(why)) => (ours.map(str::to_string), Some(why)),
                Some(Joined::Newer(message)) => {
                    redis::cmd("UNWATCH").exec(&mut con).map_err(|e| self.error(e))?;
                    return Err(StoreError::Refused { store: self.store(), message });
                }
            };
            if ours.is_none() && unreadable.is_none() {
                redis::cmd("UNWATCH").exec(&mut con).map_err(|e| self.error(e))?;
                return Ok(Stored { state: merged, set_aside: None });
            }
            let mut tx = redis::pipe();
            tx.atomic();
            let aside_key = format!("{}:corrupt-{}", self.key, now_ms());
            if let (Some(_), Some(raw)) = (&unreadable, &current) {
                tx.cmd("SET").arg(&aside_key).arg(raw).arg("PX").arg(ASIDE_TTL_MS);
            }
            match &merged {
                Some(state) => tx.cmd("SET").arg(&self.key).arg(state).arg("PX").arg(ttl_ms(state, now_ms())),
                None => tx.cmd("DEL").arg(&self.key),
            };
            // EXEC answers nil when a watched key changed: merge again with what is there now.
            let done: Option<Value> = tx.query(&mut con).map_err(|e| self.error(e))?;
            if done.is_some() {
                let set_aside = unreadable.map(|why| SetAside { path: PathBuf::from(&self.key), aside: PathBuf::from(aside_key), why });
                return Ok(Stored { state: merged, set_aside });
            }
        }
        Err(StoreError::Contended { store: self.store(), attempts: self.attempts })
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let con = self.client.get_connection_with_timeout(self.timeout).map_err(|e| self.error(e))?;
        con.set_read_timeout(Some(self.timeout)).map_err(|e| self.error(e))?;
        con.set_write_timeout(Some(self.timeout)).map_err(|e| self.error(e))?;
        Ok(con)
    }

    fn store(&self) -> String {
        format!("{} {}", self.url, self.key)
    }

    fn error(&self, e: RedisError) -> StoreError {
        let (store, message) = (self.store(), e.to_string());
        if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
            StoreError::Unavailable { store, message }
        } else {
            StoreError::Backend { store, message }
        }
    }
}

impl StateStore for RedisStore {
    fn load(&self, inst: &mut Instance) -> Result<Stored, StoreError> {
        RedisStore::load(self, inst)
    }

    fn save(&self, inst: &mut Instance, ours: &str) -> Result<Stored, StoreError> {
        RedisStore::save(self, inst, ours)
    }
}

/// The key's TTL: until the latest cooldown or open-circuit end in `state`, at least a day.
fn ttl_ms(state: &str, now_ms: u64) -> u64 {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(state) else { return MIN_TTL_MS };
    let ends = |section: &str, field: &str| -> Vec<u64> {
        json.get(section).and_then(|s| s.as_object()).into_iter().flatten().filter_map(|(_, v)| v.get(field)?.as_u64()).collect()
    };
    let latest = ends("credentials", "cooldown_until_ms").into_iter().chain(ends("routes", "open_until_ms")).max().unwrap_or(0);
    latest.saturating_sub(now_ms).max(MIN_TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::{ttl_ms, MIN_TTL_MS};

    #[test]
    fn the_ttl_outlives_the_latest_cooldown_or_open_circuit() {
        let day = MIN_TTL_MS;
        assert_eq!(ttl_ms(r#"{"schema": 2}"#, 0), day);
        let s = format!(
            r#"{{"credentials": {{"a": {{"cooldown_until_ms": {}}}}}, "routes": {{"p/m": {{"open_until_ms": {}}}}}}}"#,
            3 * day,
            5 * day
        );
        assert_eq!(ttl_ms(&s, day), 4 * day);
        assert_eq!(ttl_ms(&s, 10 * day), day, "ends in the past: the floor");
    }
}
