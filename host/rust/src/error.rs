//! The library's error type: what went wrong, said once, for a user.

use std::path::PathBuf;

use crate::contract::Contract;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy `.wasm` could not be read.
    #[error("cannot read policy component `{}`: {source}", path.display())]
    ReadPolicy { path: PathBuf, source: std::io::Error },
    /// The bytes are not a component, or not one of world `failover:policy/failover`.
    #[error("`{origin}` is not a usable policy component: {message}")]
    InvalidPolicy { origin: String, message: String },
    /// The component exports a contract version this host does not speak (or no policy at all);
    /// `exported` is the name of its `failover:policy/policy` export, e.g. `...@0.3.0`.
    #[error(
        "`{origin}` exports {}; this host speaks {}",
        .exported.as_deref().unwrap_or("no failover:policy/policy interface"),
        Contract::spoken()
    )]
    UnknownContract { origin: String, exported: Option<String> },
    /// The policy's contract version lacks what was asked (a 0.1.0 policy has no driven call);
    /// the instance is untouched.
    #[error("{what} is not in {contract}, the contract this policy speaks")]
    Unsupported { what: &'static str, contract: Contract },
    /// The guest refused a config or snapshot; `field` is the JSON path of the problem.
    #[error("bad config or state at `{field}`: {message}")]
    Config { field: String, message: String },
    /// The guest trapped (or the instance was already poisoned by an earlier trap). Recover
    /// with a fresh `Policy::instantiate` and the last snapshot.
    #[error("the policy component failed: {0}")]
    Guest(String),
    /// A string or byte list is over `Limits::max_payload_bytes`; nothing was called.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { what: &'static str, size: usize, limit: usize },
    /// The self-check of a freshly restored engine did not pass.
    #[error("the policy's self-check failed: {0}")]
    CheckFailed(String),
    /// Wasmtime itself could not be set up.
    #[error("cannot set up the WebAssembly runtime: {0}")]
    Runtime(String),
}

impl Error {
    /// A wasmtime error's cause chain on one line (some causes span several, e.g. byte dumps).
    pub(crate) fn one_line(e: &wasmtime::Error) -> String {
        e.chain().map(|c| c.to_string().split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join(": ")
    }

    /// A trap or other wasmtime error from a guest call, with its cause chain on one line.
    pub(crate) fn guest(e: wasmtime::Error) -> Self {
        Error::Guest(format!("{e:#}"))
    }
}
