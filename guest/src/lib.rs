//! The failover policy: classification, credential pools, the fallback chain, retry plans,
//! route health and snapshots. Plain Rust; `component` is the only WIT-aware module.

pub mod budget;
pub mod chain;
pub mod classify;
pub mod config;
pub mod drive;
pub mod engine;
pub mod env;
pub mod health;
pub mod pool;
pub mod redact;
pub mod retry;
pub mod snapshot;
pub mod stream;
pub mod timefmt;
pub mod types;

#[cfg(target_arch = "wasm32")]
mod component;

pub use drive::DrivenCall;
pub use engine::Engine;
pub use env::Env;

/// The crate version, reported by the component's `version` export.
pub const POLICY_VERSION: &str = env!("CARGO_PKG_VERSION");
