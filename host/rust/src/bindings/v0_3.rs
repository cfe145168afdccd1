//! The glue generated from contract 0.3.0 (`wit/policy.wit`), the one this host is written
//! against: its types are the crate's types. Imports are synchronous: the host's `send` and
//! `sleep-ms` block the calling thread.

wasmtime::component::bindgen!({
    world: "failover",
    path: "../../wit/policy.wit",
});
