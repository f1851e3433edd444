// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console2} from "forge-std/Test.sol";
import {Hal9Test} from "./Hal9Test.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";

/// Full task flows with r = 3, 5, 7 (verdict + finalize, and challenge +
/// escalation + finalize) that print the gas of each call. Run one r at a
/// time with `forge test --gas-report --match-test test_gasFlow_r3` for a
/// per-r gas report.
contract GasFlowsTest is Hal9Test {
    bytes32 internal constant RES = keccak256("res");
    bytes internal constant CID = hex"01551220deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

    function setUp() public override {
        super.setUp();
        _spawn(24, STAKE);
    }

    function _flow(uint16 r) internal {
        console2.log("r =", r);
        _plain(r);
        _challenged(r);
    }

    function _plain(uint16 r) internal {
        uint256 g = gasleft();
        (bytes32 id, address[] memory c) = _post(r, 1, 50 ether);
        console2.log("  postTask gas", g - gasleft());
        bytes[] memory sigs = _sigs(c, d.market.quorum(r), id, RES, CID);
        g = gasleft();
        d.market.submitVerdict(id, RES, CID, sigs, _noDissent());
        console2.log("  submitVerdict (q sigs) gas", g - gasleft());
        vm.warp(block.timestamp + 11 minutes);
        g = gasleft();
        d.market.finalize(id);
        console2.log("  finalize gas", g - gasleft());
        assertEq(uint8(d.market.statusOf(id)), uint8(ComputationMarket.Status.Finalized));
    }

    function _challenged(uint16 r) internal {
        (bytes32 id, address[] memory c) = _post(r, 2, 50 ether);
        bytes[] memory sigs = _sigs(c, d.market.quorum(r), id, RES, CID);
        d.market.submitVerdict(id, RES, CID, sigs, _noDissent());
        address ch = _outsider(c);
        vm.prank(ch);
        uint256 g = gasleft();
        d.market.challenge(id);
        console2.log("  challenge (2r+1 draw) gas", g - gasleft());
        address[] memory e = d.market.getTask(id).escalation;
        sigs = _sigs(e, d.market.quorum(e.length), id, keccak256("truth"), CID);
        g = gasleft();
        d.market.submitEscalationVerdict(id, keccak256("truth"), CID, sigs);
        console2.log("  submitEscalationVerdict gas", g - gasleft());
        g = gasleft();
        d.market.finalize(id);
        console2.log("  finalize after won challenge gas", g - gasleft());
        assertEq(d.market.getTask(id).resultHash, keccak256("truth"));
    }

    function _outsider(address[] memory c) internal view returns (address) {
        for (uint256 i = ops.length; i > 0; i--) {
            bool member;
            for (uint256 j = 0; j < c.length; j++) {
                if (c[j] == ops[i - 1]) member = true;
            }
            if (!member) return ops[i - 1];
        }
        revert("no outsider");
    }

    function test_gasFlow_r3() public {
        _flow(3);
    }

    function test_gasFlow_r5() public {
        _flow(5);
    }

    function test_gasFlow_r7() public {
        _flow(7);
    }
}
