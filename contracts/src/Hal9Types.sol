// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Wire types shared with the Rust side (alloy `sol!` reads this file).
// Keep this file to plain struct definitions so both parsers agree on it.

/// What a client asks the network to compute. The task id is
/// `keccak256(abi.encode(spec))`, identical on and off chain.
struct TaskSpec {
    /// CID (binary form) of the WASM program.
    bytes programCid;
    /// keccak256 of the input bytes.
    bytes32 inputHash;
    /// CID (binary form) of the input, empty when the input travels inline.
    bytes inputCid;
    /// Replication factor r: committee size.
    uint16 replicas;
    /// Fuel limit for one execution.
    uint64 fuelLimit;
    /// Capability bits a neuron must offer to be drawn (0 = any).
    uint64 capabilities;
    /// Who posts and pays; `postTask` requires msg.sender == submitter.
    address submitter;
    /// Free nonce so that identical work can be posted twice.
    uint256 nonce;
    /// Unix time by which a verdict must be submitted, else the fee is refunded.
    uint64 deadline;
}

/// A signed attestation of a committee member whose result differs from
/// the verdict; proves that member is in the minority.
struct Dissent {
    bytes32 resultHash;
    bytes outputCid;
    bytes signature;
}

/// A member's reveal (protocol v1.1): the opening of its on-chain commitment
/// keccak256(abi.encodePacked(taskId, resultHash, outputCidHash, salt, member)).
struct Reveal {
    /// Index of the member in the committee (or escalation committee).
    uint16 index;
    bytes32 resultHash;
    /// keccak256 of the member's output CID (binary form).
    bytes32 outputCidHash;
    bytes32 salt;
}
