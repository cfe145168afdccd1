//! The glue generated from each contract version this host speaks, one module per version,
//! and the enums that hold one version's linked policy or live exports. The host is written
//! against the newest (`v0_3`); older versions' values are converted (`convert`).

mod convert;
pub(crate) mod v0_1;
pub(crate) mod v0_2;
pub(crate) mod v0_3;

pub(crate) use convert::Convert;

use wasmtime::component::{HasSelf, InstancePre, Linker};
use wasmtime::Store;

use crate::contract::Contract;
use crate::host::{Host, StoreData};

/// A linked policy, ready to instantiate, of the contract version it speaks.
pub(crate) enum Pre {
    V0_1(v0_1::FailoverPre<StoreData>),
    V0_2(v0_2::FailoverPre<StoreData>),
    V0_3(v0_3::FailoverPre<StoreData>),
}

/// A live instance's exports, of the contract version it speaks.
pub(crate) enum Exports {
    V0_1(v0_1::Failover),
    V0_2(v0_2::Failover),
    V0_3(v0_3::Failover),
}

impl Pre {
    /// Checks that `pre` exports `contract`'s policy interface with its types.
    pub(crate) fn new(contract: Contract, pre: InstancePre<StoreData>) -> wasmtime::Result<Pre> {
        Ok(match contract {
            Contract::V0_1 => Pre::V0_1(v0_1::FailoverPre::new(pre)?),
            Contract::V0_2 => Pre::V0_2(v0_2::FailoverPre::new(pre)?),
            Contract::V0_3 => Pre::V0_3(v0_3::FailoverPre::new(pre)?),
        })
    }

    pub(crate) fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<Exports> {
        Ok(match self {
            Pre::V0_1(pre) => Exports::V0_1(pre.instantiate(store)?),
            Pre::V0_2(pre) => Exports::V0_2(pre.instantiate(store)?),
            Pre::V0_3(pre) => Exports::V0_3(pre.instantiate(store)?),
        })
    }

    pub(crate) fn contract(&self) -> Contract {
        match self {
            Pre::V0_1(_) => Contract::V0_1,
            Pre::V0_2(_) => Contract::V0_2,
            Pre::V0_3(_) => Contract::V0_3,
        }
    }
}

impl Exports {
    pub(crate) fn contract(&self) -> Contract {
        match self {
            Exports::V0_1(_) => Contract::V0_1,
            Exports::V0_2(_) => Contract::V0_2,
            Exports::V0_3(_) => Contract::V0_3,
        }
    }
}

/// The `host` imports of every version: each component links against those of its own.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    v0_1::Failover::add_to_linker::<StoreData, HasSelf<Host>>(linker, |data| &mut data.host)?;
    v0_2::Failover::add_to_linker::<StoreData, HasSelf<Host>>(linker, |data| &mut data.host)?;
    v0_3::Failover::add_to_linker::<StoreData, HasSelf<Host>>(linker, |data| &mut data.host)
}
