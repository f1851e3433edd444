// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {DeployBase} from "../script/DeployBase.sol";
import {TaskSpec, Reveal} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";

/// Shared fixture: the real deployment plus funded, registered, staked
/// neurons, and helpers that walk the v1.1 task flow (post, draw, commit,
/// reveal, finalize).
abstract contract Hal9Test is Test, DeployBase {
    Deployment internal d;
    Config internal cfg;
    address internal whale = makeAddr("whale");
    address internal client = makeAddr("client");
    address[] internal ops;
    mapping(address => uint256) internal keyOf;

    uint256 internal constant STAKE = 1_000 ether;
    uint256 internal constant FEE = 10 ether;
    bytes internal constant CID = hex"01551220c0ffee";
    bytes32 internal constant RESULT = keccak256("the right result");

    function setUp() public virtual {
        vm.roll(64); // block 64: start of an epoch, apply phase
        address[] memory genesis = new address[](1);
        genesis[0] = whale;
        cfg = defaultConfig(genesis);
        d = deployAll(cfg, address(this));
        vm.prank(whale);
        d.token.transfer(client, 1_000_000 ether);
        vm.prank(client);
        d.token.approve(address(d.market), type(uint256).max);
    }

    function _peerId(address op) internal pure returns (bytes memory) {
        return abi.encodePacked(bytes2(0x0024), keccak256(abi.encode(op)));
    }

    /// Creates `n` more operators, each registered (capability bit 0) with `amount`.
    function _spawn(uint256 n, uint256 amount) internal {
        _spawnCaps(n, amount, 1);
    }

    function _spawnCaps(uint256 n, uint256 amount, uint64 caps) internal {
        _toApplyPhase();
        uint256 start = ops.length;
        for (uint256 i = start; i < start + n; i++) {
            (address op, uint256 pk) = makeAddrAndKey(string.concat("op", vm.toString(i)));
            ops.push(op);
            keyOf[op] = pk;
            vm.prank(whale);
            d.token.transfer(op, amount + 1_000 ether);
            vm.startPrank(op);
            d.token.approve(address(d.registry), type(uint256).max);
            d.token.approve(address(d.market), type(uint256).max);
            d.registry.register(_peerId(op), caps, amount, new bytes(64));
            vm.stopPrank();
        }
    }

    /// Moves to the next block that is in an apply phase (trees writable).
    function _toApplyPhase() internal {
        while (!d.registry.inApplyPhase()) {
            vm.roll(block.number + 1);
        }
    }

    function _spec(uint16 r, uint256 nonce) internal view returns (TaskSpec memory s) {
        s = TaskSpec({
            programCid: hex"01551220aabbccdd",
            inputHash: keccak256("input"),
            inputCid: "",
            replicas: r,
            fuelLimit: 1_000_000,
            capabilities: 1,
            submitter: client,
            nonce: nonce,
            deadline: uint64(block.timestamp + 1 hours)
        });
    }

    function _postOnly(uint16 r, uint256 nonce) internal returns (bytes32 id) {
        TaskSpec memory s = _spec(r, nonce);
        vm.prank(client);
        id = d.market.postTask(s, FEE);
    }

    /// Moves past the task's draw block (with a known hash) and draws.
    function _draw(bytes32 id) internal returns (address[] memory members) {
        bool ok;
        // A target on the last block of an epoch is re-targeted once.
        for (uint256 tries = 0; tries < 2 && !ok; tries++) {
            uint256 target = d.market.getTask(id).drawBlock;
            vm.roll(target + 1);
            vm.setBlockhash(target, keccak256(abi.encode("beacon", target)));
            ok = d.market.draw(id);
        }
        assertTrue(ok, "draw");
        ComputationMarket.Status s = d.market.statusOf(id);
        members = s == ComputationMarket.Status.Escalating ? d.market.escalationOf(id) : d.market.committeeOf(id);
    }

    function _post(uint16 r, uint256 nonce) internal returns (bytes32 id, address[] memory committee) {
        id = _postOnly(r, nonce);
        committee = _draw(id);
    }

    function _salt(address m, bytes32 id) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", m, id));
    }

    function _commit(bytes32 id, address m, bytes32 result) internal {
        bytes32[] memory ids = new bytes32[](1);
        bytes32[] memory cs = new bytes32[](1);
        ids[0] = id;
        cs[0] = d.market.commitmentOf(id, result, keccak256(CID), _salt(m, id), m);
        vm.prank(m);
        d.market.commitMany(ids, cs);
    }

    function _reveal(uint16 index, address m, bytes32 id, bytes32 result) internal pure returns (Reveal memory) {
        return Reveal({index: index, resultHash: result, outputCidHash: keccak256(CID), salt: _salt(m, id)});
    }

    /// Reveals of members [0, count) for `result`.
    function _reveals(address[] memory members, uint256 count, bytes32 id, bytes32 result)
        internal
        pure
        returns (Reveal[] memory rs)
    {
        rs = new Reveal[](count);
        for (uint256 i = 0; i < count; i++) {
            rs[i] = _reveal(uint16(i), members[i], id, result);
        }
    }

    function _afterCommit(bytes32 id) internal {
        vm.warp(d.market.getTask(id).commitEnd + 1);
    }

    function _afterChallenge(bytes32 id) internal {
        vm.warp(d.market.getTask(id).challengeEnd + 1);
    }

    function _signResult(address signer, bytes32 id, bytes32 result, bytes memory cid)
        internal
        view
        returns (bytes memory)
    {
        bytes32 digest = d.market.resultDigest(id, result, cid);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keyOf[signer], digest);
        return abi.encodePacked(r, s, v);
    }

    function _stake(address op) internal view returns (uint256) {
        return d.registry.neuron(op).stake;
    }

    /// Honest path: every member commits RESULT, all reveal, finalize.
    function _settleHonest(bytes32 id, address[] memory c) internal {
        for (uint256 i = 0; i < c.length; i++) {
            _commit(id, c[i], RESULT);
        }
        _afterCommit(id);
        d.market.submitVerdict(id, RESULT, CID, _reveals(c, c.length, id, RESULT));
        _afterChallenge(id);
        d.market.finalize(id);
    }
}
