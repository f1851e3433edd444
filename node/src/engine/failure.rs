//! Deterministic execution failures as results a committee can agree on.
//!
//! Running the same module on the same input with the same limits ends in
//! the same failure on every honest member (out of fuel, a trap, an output
//! over the network limit...). Such a failure is committed and revealed like
//! an output: its result hash is `keccak256` of a canonical failure record
//! that holds only what every member computes alike, the failure's kind and
//! the spec's fuel limit; never a message text, a wall-clock figure or a
//! host path. The record's raw CID stands in for the output CID.
//!
//! Failures that depend on the host (a program fetch timeout, the
//! wall-clock guard, a busy host, I/O) are not results: the member abstains.

use hal9_consensus::{ResultHash, keccak256};

use super::cid::RawCid;

/// First bytes of every failure record. A NUL byte and a version, so an
/// ordinary program output is not mistaken for one by accident.
pub const FAILURE_MAGIC: &[u8] = b"\0hal9/failure/1\0";

/// The kinds of deterministic failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The fuel limit of the spec ran out.
    OutOfFuel,
    /// Linear memory grew beyond the limit.
    MemoryLimit,
    /// A table grew beyond the limit.
    TableLimit,
    /// The program wrote more than the network's output limit.
    OutputTooLarge,
    /// A host call got a pointer outside linear memory.
    BadPointer,
    /// A WebAssembly trap (unreachable, division by zero, out of bounds...).
    Trap,
    /// The program returned a non-zero status.
    GuestError,
    /// The input is larger than the network's input limit.
    InputTooLarge,
    /// The input named by CID does not hash to the spec's `inputHash`.
    InputMismatch,
}

impl FailureKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FailureKind; 9] = [
        FailureKind::OutOfFuel,
        FailureKind::MemoryLimit,
        FailureKind::TableLimit,
        FailureKind::OutputTooLarge,
        FailureKind::BadPointer,
        FailureKind::Trap,
        FailureKind::GuestError,
        FailureKind::InputTooLarge,
        FailureKind::InputMismatch,
    ];

    /// Stable label, part of the canonical encoding.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::OutOfFuel => "out_of_fuel",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::TableLimit => "table_limit",
            FailureKind::OutputTooLarge => "output_too_large",
            FailureKind::BadPointer => "bad_pointer",
            FailureKind::Trap => "trap",
            FailureKind::GuestError => "guest_error",
            FailureKind::InputTooLarge => "input_too_large",
            FailureKind::InputMismatch => "input_mismatch",
        }
    }

    /// The kind of a plugin error, if that error is deterministic.
    pub fn of_plugin_error(e: &hal9_plugins::Error) -> Option<Self> {
        use hal9_plugins::Error as E;
        Some(match e {
            E::OutOfFuel { .. } => FailureKind::OutOfFuel,
            E::MemoryLimit { .. } => FailureKind::MemoryLimit,
            E::TableLimit { .. } => FailureKind::TableLimit,
            E::OutputTooLarge { .. } => FailureKind::OutputTooLarge,
            E::BadPointer { .. } => FailureKind::BadPointer,
            E::Trap(_) => FailureKind::Trap,
            E::Guest { .. } => FailureKind::GuestError,
            E::InputTooLarge { .. } => FailureKind::InputTooLarge,
            _ => return None,
        })
    }
}

/// A deterministic failure of one task's execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// What happened.
    pub kind: FailureKind,
    /// The spec's fuel limit.
    pub fuel_limit: u64,
}

impl Failure {
    /// Canonical record: magic | u8 label length | label | u64 BE fuel limit.
    pub fn encode(&self) -> Vec<u8> {
        let label = self.kind.label().as_bytes();
        let mut out = Vec::with_capacity(FAILURE_MAGIC.len() + 1 + label.len() + 8);
        out.extend_from_slice(FAILURE_MAGIC);
        out.push(label.len() as u8);
        out.extend_from_slice(label);
        out.extend_from_slice(&self.fuel_limit.to_be_bytes());
        out
    }

    /// The result hash members commit to.
    pub fn result(&self) -> ResultHash {
        ResultHash::of_output(&self.encode())
    }

    /// The raw CID of the record, in place of an output CID.
    pub fn cid(&self) -> RawCid {
        RawCid::of(&self.encode())
    }

    /// The failure whose result hash is `result`, for a spec with `fuel_limit`.
    pub fn identify(result: &[u8; 32], fuel_limit: u64) -> Option<Self> {
        FailureKind::ALL
            .into_iter()
            .map(|kind| Failure { kind, fuel_limit })
            .find(|f| keccak256(&[&f.encode()]) == *result)
    }

    /// What `task status` says.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            FailureKind::OutOfFuel => format!("out of fuel (fuel limit {})", self.fuel_limit),
            FailureKind::MemoryLimit => "memory limit hit".into(),
            FailureKind::TableLimit => "table limit hit".into(),
            FailureKind::OutputTooLarge => "output larger than the network limit".into(),
            FailureKind::BadPointer => "bad guest pointer in a host call".into(),
            FailureKind::Trap => "the program trapped".into(),
            FailureKind::GuestError => "the program returned an error status".into(),
            FailureKind::InputTooLarge => "input larger than the network limit".into(),
            FailureKind::InputMismatch => {
                "the input named by CID does not hash to the spec's inputHash".into()
            }
        };
        format!("deterministic failure agreed by the committee: {what}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_result_hash() {
        for kind in FailureKind::ALL {
            let f = Failure {
                kind,
                fuel_limit: 1234,
            };
            assert_eq!(Failure::identify(&f.result().0, 1234), Some(f));
            // Another fuel limit is another result.
            assert_eq!(Failure::identify(&f.result().0, 1235), None);
        }
        assert_eq!(
            Failure::identify(&ResultHash::of_output(b"output").0, 1234),
            None
        );
    }

    #[test]
    fn encoding_is_canonical_and_distinct_per_kind() {
        let a = Failure {
            kind: FailureKind::OutOfFuel,
            fuel_limit: 1,
        };
        let b = Failure {
            kind: FailureKind::Trap,
            fuel_limit: 1,
        };
        assert_eq!(a.encode(), a.encode());
        assert_ne!(a.result(), b.result());
        assert_eq!(a.cid(), RawCid::of(&a.encode()));
        assert!(a.encode().starts_with(FAILURE_MAGIC));
    }

    #[test]
    fn host_dependent_errors_are_not_failures() {
        use std::time::Duration;
        let e = hal9_plugins::Error::Timeout {
            limit: Duration::from_secs(1),
        };
        assert_eq!(FailureKind::of_plugin_error(&e), None);
        assert_eq!(
            FailureKind::of_plugin_error(&hal9_plugins::Error::Busy("x".into())),
            None
        );
        assert_eq!(
            FailureKind::of_plugin_error(&hal9_plugins::Error::OutOfFuel { limit: 5 }),
            Some(FailureKind::OutOfFuel)
        );
    }
}
