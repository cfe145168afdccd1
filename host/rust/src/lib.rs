//! The Rust host of the failover policy: loads the policy component (a WASI component built
//! from `guest/`), supplies what only a host can do (HTTP, clock, events, secrets) and calls it.
//! The guest decides; this crate carries out.
//!
//! ```no_run
//! use failover_host::{HttpTransport, Host, Policy, Secrets};
//! # fn main() -> Result<(), failover_host::Error> {
//! let config = std::fs::read_to_string("config.json").unwrap_or_default();
//! let secrets = Secrets::from_env(&config);
//! let credentials = secrets.credentials();
//! let policy = Policy::load_default()?;
//! let mut instance = policy.instantiate(Host::new(HttpTransport::new()).with_secrets(secrets))?;
//! let engine = instance.create_engine(&config, None, &credentials)?;
//! let route = instance.select(&engine)?;
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
mod clock;
mod contract;
mod drive;
mod error;
mod events;
mod fault;
mod host;
mod http;
mod instance;
mod limits;
mod policy;
mod policy_host;
pub mod scenario;
mod secrets;
pub mod store;
pub mod stream_mock;
pub mod timefmt;
pub mod types;
pub mod upstream;
mod wasm;

pub use cache::{sha256_hex, ArtifactCache};
pub use clock::{Clock, VirtualClock};
pub use contract::Contract;
pub use drive::{Begun, Ended, Streamed};
pub use error::Error;
pub use events::{EventLog, EventSink};
pub use fault::{OnFault, Supervision, FAIL_OPEN_DELAY_MS, FAULT_RULE};
pub use host::{Host, Transport};
pub use http::{HttpTransport, SUCCESS_BODY_LIMIT};
pub use instance::{DrivenCall, Engine, Instance};
pub use limits::Limits;
pub use policy::{Policy, Tier, DEFAULT_POLICY};
pub use policy_host::{Answer, PolicyHost, Swapped, TierUp, TieredSwap};
pub use secrets::{default_env_var, fingerprint, Scrub, Secrets, StreamScrub};
