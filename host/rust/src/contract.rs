//! Which contract version a policy component speaks, read from its exports before linking, so
//! a component built for a version this host does not speak is refused with both named.

use std::fmt;

use wasmtime::component::Component;

use crate::error::Error;

/// A version of the `failover:policy` contract this host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Contract {
    /// Whole answers only: no driven call (`engine.begin`), so a streamed call goes through the
    /// policy's guest-driven `call`.
    V0_1,
    /// Adds the driven call and the stream event kinds.
    V0_2,
    /// Adds what a fleet sharing one store needs: `engine.absorb`, `changes` and `fold`.
    V0_3,
}

/// The interface every policy exports; its version is the contract's.
const POLICY_INTERFACE: &str = "failover:policy/policy";

impl Contract {
    /// Every version this host speaks, oldest first.
    pub const ALL: [Contract; 3] = [Contract::V0_1, Contract::V0_2, Contract::V0_3];

    /// The package version, e.g. `0.2.0`.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
            Contract::V0_3 => "0.3.0",
        }
    }

    /// `0.1.0, 0.2.0 and 0.3.0`: what refusals say this host speaks.
    pub fn spoken() -> String {
        let versions = Contract::ALL.map(Contract::version);
        match versions.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// The version `component` exports `failover:policy/policy` at; `Error::UnknownContract`
    /// naming what it exports when that is not a version this host speaks.
    pub(crate) fn of(component: &Component, engine: &wasmtime::Engine, origin: &str) -> Result<Contract, Error> {
        let ty = component.component_type();
        let exported = ty.exports(engine).map(|(name, _)| name).find(|name| name.split('@').next() == Some(POLICY_INTERFACE));
        let unknown = || Error::UnknownContract { origin: origin.to_string(), exported: exported.map(str::to_string) };
        let version = exported.and_then(|name| name.split_once('@')).map(|(_, version)| version).ok_or_else(unknown)?;
        Contract::ALL.into_iter().find(|c| c.version() == version).ok_or_else(unknown)
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failover:policy@{}", self.version())
    }
}
