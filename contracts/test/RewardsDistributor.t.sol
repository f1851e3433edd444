// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hal9Test} from "./Hal9Test.sol";
import {RewardsDistributor} from "../src/RewardsDistributor.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

contract RewardsDistributorTest is Hal9Test {
    uint256 internal r0;

    function setUp() public override {
        super.setUp();
        r0 = d.rewards.initialEpochReward();
    }

    function test_scheduleHalves() public view {
        assertEq(r0, uint256(400_000_000 ether) / (2 * 365));
        assertEq(d.rewards.epochReward(0), r0);
        assertEq(d.rewards.epochReward(364), r0);
        assertEq(d.rewards.epochReward(365), r0 / 2);
        assertEq(d.rewards.epochReward(365 * 3), r0 / 8);
        assertEq(d.rewards.epochReward(365 * 64), 0, "zero after 64 halvings");
        assertEq(d.rewards.epochReward(type(uint256).max), 0);
    }

    function testFuzz_cumulativeMatchesSumAndStaysInPool(uint32 n) public view {
        uint256 epochs = bound(n, 0, 365 * 70);
        uint256 cum = d.rewards.cumulativeEmission(epochs);
        assertLe(cum, d.rewards.pool(), "schedule never asks more than the pool");
        if (epochs > 0) {
            assertEq(cum - d.rewards.cumulativeEmission(epochs - 1), d.rewards.epochReward(epochs - 1));
        }
    }

    function test_claimProportionalToEffectiveStake() public {
        _spawn(2, STAKE);
        vm.prank(ops[1]);
        d.registry.lock(365 days); // 3x
        vm.warp(block.timestamp + 1 days);
        uint256 b0 = d.token.balanceOf(ops[0]);
        uint256 b1 = d.token.balanceOf(ops[1]);
        vm.prank(ops[0]);
        uint256 c0 = d.rewards.claim();
        vm.prank(ops[1]);
        uint256 c1 = d.rewards.claim();
        assertEq(d.token.balanceOf(ops[0]), b0 + c0);
        assertEq(d.token.balanceOf(ops[1]), b1 + c1);
        assertApproxEqAbs(c0 + c1, r0, 2, "one epoch emitted");
        assertApproxEqAbs(c1, 3 * c0, 3, "3x weight earns 3x");
        vm.prank(ops[0]);
        vm.expectRevert(abi.encodeWithSelector(RewardsDistributor.NothingToClaim.selector, ops[0]));
        d.rewards.claim();
    }

    function test_pendingMatchesClaim() public {
        _spawn(1, STAKE);
        vm.warp(block.timestamp + 3 days + 5);
        uint256 p = d.rewards.pending(ops[0]);
        vm.prank(ops[0]);
        assertEq(d.rewards.claim(), p);
        assertApproxEqAbs(p, 3 * r0, 1);
    }

    function test_RevertWhen_updateWeight_notRegistry() public {
        vm.expectRevert(abi.encodeWithSelector(RewardsDistributor.NotRegistry.selector, address(this)));
        d.rewards.updateWeight(address(this), 1);
    }

    function test_RevertWhen_emptyPoolOrBadSchedule() public {
        vm.expectRevert(abi.encodeWithSelector(RewardsDistributor.InvalidSchedule.selector, 0, 1 days, 365));
        new RewardsDistributor(IERC20(address(d.token)), address(d.registry), 1 days, 365);
    }

    /// Far in the future the whole schedule is spent and payouts stop at the pool.
    function test_neverPaysBeyondPool() public {
        _spawn(1, STAKE);
        vm.warp(block.timestamp + 365 days * 80);
        vm.prank(ops[0]);
        uint256 got = d.rewards.claim();
        assertLe(got, d.rewards.pool());
        assertGt(got, d.rewards.pool() - 1e9, "all but dust of the pool was scheduled");
        assertEq(d.token.balanceOf(address(d.rewards)), d.rewards.pool() - got);
        vm.warp(block.timestamp + 365 days);
        vm.prank(ops[0]);
        vm.expectPartialRevert(RewardsDistributor.NothingToClaim.selector);
        d.rewards.claim();
    }
}
