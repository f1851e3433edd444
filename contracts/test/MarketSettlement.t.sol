// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hal9Test} from "./Hal9Test.sol";
import {Dissent} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";
import {MarketSettlement} from "../src/MarketSettlement.sol";

/// The market split for EIP-170: its code fits 24,576 bytes, and the
/// MarketSettlement it created (finalize, challenge, proveEquivocation run
/// by DELEGATECALL) cannot be driven from outside.
contract MarketSettlementTest is Hal9Test {
    uint256 internal constant EIP170 = 24_576;

    MarketSettlement internal settlement;

    function setUp() public override {
        super.setUp();
        _spawn(24, STAKE);
        // The market's first creation (contract nonces start at 1).
        settlement = MarketSettlement(vm.computeCreateAddress(address(d.market), 1));
    }

    function test_deployedCodeFitsEip170() public view {
        assertGt(address(settlement).code.length, 0, "settlement deployed by the market");
        assertLt(address(d.market).code.length, EIP170, "market runtime code");
        assertLt(address(settlement).code.length, EIP170, "settlement runtime code");
    }

    /// A finalizable task cannot be finalized, nor challenged, by calling the
    /// module directly (it would act on its own empty storage); the market
    /// still settles it.
    function test_attack_callSettlementDirectly_fails() public {
        (bytes32 id, address[] memory c) = _post(3, 1);
        for (uint256 i = 0; i < c.length; i++) {
            _commit(id, c[i], RESULT);
        }
        _afterCommit(id);
        d.market.submitVerdict(id, RESULT, CID, _reveals(c, c.length, id, RESULT));

        address challenger = ops[ops.length - 1];
        vm.prank(challenger);
        vm.expectRevert(MarketSettlement.NotDelegated.selector);
        settlement.challenge(id);

        bytes memory s1 = _signResult(c[0], id, RESULT, CID);
        bytes memory s2 = _signResult(c[0], id, keccak256("other"), CID);
        vm.expectRevert(MarketSettlement.NotDelegated.selector);
        settlement.proveEquivocation(id, Dissent(RESULT, CID, s1), Dissent(keccak256("other"), CID, s2));

        _afterChallenge(id);
        vm.expectRevert(MarketSettlement.NotDelegated.selector);
        settlement.finalize(id);
        assertEq(uint8(d.market.statusOf(id)), uint8(ComputationMarket.Status.Verdict));

        uint256 escrowed = d.market.escrowed();
        d.market.finalize(id);
        assertEq(uint8(d.market.statusOf(id)), uint8(ComputationMarket.Status.Finalized));
        assertEq(d.market.escrowed(), escrowed - FEE, "the market's escrow, not the module's, is released");
        assertEq(d.token.balanceOf(address(settlement)), 0, "the module never holds tokens");
    }

    /// Errors raised in the module reach the caller unchanged: a malformed
    /// signature is ECDSA's error, a wrong status the market's.
    function test_moduleRevertsBubbleUp() public {
        (bytes32 id, address[] memory c) = _post(3, 2);
        bytes memory good = _signResult(c[0], id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.ECDSAInvalidSignatureLength.selector, uint256(10)));
        d.market.proveEquivocation(id, Dissent(RESULT, CID, new bytes(10)), Dissent(keccak256("x"), CID, good));

        vm.expectRevert(
            abi.encodeWithSelector(
                ComputationMarket.WrongStatus.selector,
                id,
                ComputationMarket.Status.Verdict,
                ComputationMarket.Status.Drawn
            )
        );
        d.market.challenge(id);

        vm.expectRevert(
            abi.encodeWithSelector(ComputationMarket.NotFinalizable.selector, id, ComputationMarket.Status.Drawn)
        );
        d.market.finalize(id);
    }
}
