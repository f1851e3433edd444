// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {Hal9Test} from "./Hal9Test.sol";
import {TaskSpec, Reveal} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";
import {DeployBase} from "../script/DeployBase.sol";

/// Drives the v1.1 flow with random but well-formed actions and records
/// ghost facts the invariants check.
contract Handler is Test {
    DeployBase.Deployment internal d;
    address internal client;
    address[] public ops;
    bytes32[] public ids;
    uint256 internal nonce;
    bytes internal constant CID = hex"01551220c0ffee";

    uint256 public lastSupply;
    bool public supplyRose;
    bool public paidTwice;
    bool public paidAndSlashed;
    uint256 public settled;

    constructor(DeployBase.Deployment memory d_, address client_, address[] memory ops_) {
        d = d_;
        client = client_;
        ops = ops_;
        lastSupply = d.token.totalSupply();
    }

    modifier track() {
        _;
        uint256 s = d.token.totalSupply();
        if (s > lastSupply) supplyRose = true;
        lastSupply = s;
    }

    function _id(uint256 i) internal view returns (bytes32) {
        return ids[i % ids.length];
    }

    function _salt(address m, bytes32 id) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", m, id));
    }

    function _result(address m, bytes32 id) internal pure returns (bytes32) {
        // Most members agree; some compute another result.
        return uint256(keccak256(abi.encode(m, id))) % 5 == 0 ? keccak256("other") : keccak256("right");
    }

    function post(uint16 r) external track {
        r = uint16(bound(r, 3, 4));
        TaskSpec memory s = TaskSpec({
            programCid: hex"01551220aabbccdd",
            inputHash: keccak256("input"),
            inputCid: "",
            replicas: r,
            fuelLimit: 1,
            capabilities: 1,
            submitter: client,
            nonce: nonce++,
            deadline: uint64(block.timestamp + 2 hours)
        });
        vm.prank(client);
        try d.market.postTask(s, 5 ether) returns (bytes32 id) {
            ids.push(id);
        } catch {}
    }

    function advance(uint16 blocks, uint16 secs) external track {
        vm.roll(block.number + bound(blocks, 1, 40));
        vm.warp(block.timestamp + bound(secs, 1, 20 minutes));
        vm.setBlockhash(block.number - 1, keccak256(abi.encode(block.number)));
    }

    function draw(uint256 i) external track {
        if (ids.length == 0) return;
        bytes32 id = _id(i);
        uint256 target = d.market.getTask(id).drawBlock;
        if (target < block.number && blockhash(target) == bytes32(0)) {
            vm.setBlockhash(target, keccak256(abi.encode(target)));
        }
        try d.market.draw(id) {} catch {}
    }

    function commit(uint256 i, uint256 who) external track {
        if (ids.length == 0) return;
        bytes32 id = _id(i);
        ComputationMarket.Status s = d.market.statusOf(id);
        address[] memory c =
            s == ComputationMarket.Status.Escalating ? d.market.escalationOf(id) : d.market.committeeOf(id);
        if (c.length == 0) return;
        address m = c[who % c.length];
        bytes32[] memory a = new bytes32[](1);
        bytes32[] memory b = new bytes32[](1);
        a[0] = id;
        b[0] = d.market.commitmentOf(id, _result(m, id), keccak256(CID), _salt(m, id), m);
        vm.prank(m);
        try d.market.commitMany(a, b) {} catch {}
    }

    function verdict(uint256 i) external track {
        if (ids.length == 0) return;
        bytes32 id = _id(i);
        ComputationMarket.Status s = d.market.statusOf(id);
        bool esc = s == ComputationMarket.Status.Escalating;
        address[] memory c = esc ? d.market.escalationOf(id) : d.market.committeeOf(id);
        Reveal[] memory rs = new Reveal[](c.length);
        uint256 k;
        for (uint256 j = 0; j < c.length; j++) {
            if (d.market.committed(id, c[j]) == bytes32(0)) continue;
            rs[k++] = Reveal(uint16(j), _result(c[j], id), keccak256(CID), _salt(c[j], id));
        }
        assembly ("memory-safe") {
            mstore(rs, k)
        }
        if (esc) {
            try d.market.submitEscalationVerdict(id, keccak256("right"), CID, rs) {} catch {}
        } else {
            try d.market.submitVerdict(id, keccak256("right"), CID, rs) {} catch {}
        }
    }

    function challenge(uint256 i, uint256 who) external track {
        if (ids.length == 0) return;
        vm.prank(ops[who % ops.length]);
        try d.market.challenge(_id(i)) {} catch {}
    }

    function finalize(uint256 i) external track {
        if (ids.length == 0) return;
        bytes32 id = _id(i);
        ComputationMarket.Task memory t = d.market.getTask(id);
        uint256 n = t.committee.length + t.escalation.length;
        address[] memory ms = new address[](n);
        uint256[] memory bal = new uint256[](n);
        uint256[] memory held = new uint256[](n);
        for (uint256 j = 0; j < n; j++) {
            ms[j] = j < t.committee.length ? t.committee[j] : t.escalation[j - t.committee.length];
            bal[j] = d.token.balanceOf(ms[j]);
            held[j] = d.registry.neuron(ms[j]).stake + d.registry.neuron(ms[j]).unbonding;
        }
        try d.market.finalize(id) {
            settled++;
            for (uint256 j = 0; j < n; j++) {
                bool paid = d.token.balanceOf(ms[j]) > bal[j];
                uint256 h = d.registry.neuron(ms[j]).stake + d.registry.neuron(ms[j]).unbonding;
                if (paid && h < held[j]) paidAndSlashed = true;
            }
            // A second settlement of the same task must never go through.
            try d.market.finalize(id) {
                paidTwice = true;
            } catch {}
        } catch {}
    }

    function unbond(uint256 who, uint256 amount) external track {
        address m = ops[who % ops.length];
        uint256 s = d.registry.neuron(m).stake;
        if (s == 0) return;
        vm.prank(m);
        try d.registry.requestUnbond(bound(amount, 1, s)) {} catch {}
    }

    function withdraw(uint256 who, uint256 amount) external track {
        address m = ops[who % ops.length];
        uint256 u = d.registry.neuron(m).unbonding;
        if (u == 0) return;
        vm.prank(m);
        try d.registry.withdraw(bound(amount, 1, u)) {} catch {}
    }

    function apply_(uint256) external track {
        if (!d.registry.inApplyPhase()) return;
        d.registry.applyQueued(ops);
    }

    function idCount() external view returns (uint256) {
        return ids.length;
    }
}

contract InvariantsTest is Hal9Test {
    Handler internal h;

    function setUp() public override {
        super.setUp();
        _spawn(20, STAKE);
        h = new Handler(d, client, ops);
        targetContract(address(h));
    }

    /// The handler's actions do reach settlement (the invariants are not vacuous).
    function test_handlerSettlesTasks() public {
        for (uint256 k = 0; k < 3; k++) {
            h.post(3);
        }
        for (uint256 step = 0; step < 30; step++) {
            h.advance(3, 60);
            for (uint256 i = 0; i < 3; i++) {
                h.draw(i);
                for (uint256 w = 0; w < 4; w++) {
                    h.commit(i, w);
                }
                h.verdict(i);
                h.finalize(i);
            }
        }
        assertGt(h.settled(), 0);
    }

    /// Supply only falls (by burns: the token has no mint after construction).
    function invariant_supplyNeverRises() public view {
        assertFalse(h.supplyRose());
    }

    /// Escrow adds up: the market holds exactly the open fees and bonds, the
    /// registry exactly the stake and unbonding it accounts for.
    function invariant_balancesAddUp() public view {
        assertEq(d.token.balanceOf(address(d.market)), d.market.escrowed());
        assertEq(d.token.balanceOf(address(d.registry)), d.registry.totalHeld());
        uint256 sum;
        for (uint256 i = 0; i < ops.length; i++) {
            sum += d.registry.neuron(ops[i]).stake + d.registry.neuron(ops[i]).unbonding;
        }
        assertEq(sum, d.registry.totalHeld());
    }

    /// No task is settled twice.
    function invariant_noTaskPaidTwice() public view {
        assertFalse(h.paidTwice());
    }

    /// No member is both paid and slashed by one settlement.
    function invariant_neverPaidAndSlashed() public view {
        assertFalse(h.paidAndSlashed());
    }
}
