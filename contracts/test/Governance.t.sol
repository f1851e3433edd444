// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hal9Test} from "./Hal9Test.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";
import {HAL9Governor} from "../src/HAL9Governor.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";

contract GovernanceTest is Hal9Test {
    address internal attacker = makeAddr("attacker");

    function setUp() public override {
        super.setUp();
        vm.prank(whale);
        d.token.delegate(whale);
        vm.warp(block.timestamp + 1);
        vm.roll(block.number + 1);
    }

    function _proposal(address target, bytes memory data)
        internal
        pure
        returns (address[] memory t, uint256[] memory v, bytes[] memory c)
    {
        t = new address[](1);
        v = new uint256[](1);
        c = new bytes[](1);
        t[0] = target;
        c[0] = data;
    }

    /// Proposes as the whale, votes for, and queues; returns the id.
    function _passAndQueue(address target, bytes memory data, string memory desc) internal returns (uint256 id) {
        (address[] memory t, uint256[] memory v, bytes[] memory c) = _proposal(target, data);
        vm.prank(whale);
        id = d.governor.propose(t, v, c, desc);
        vm.warp(block.timestamp + d.governor.votingDelay() + 1);
        vm.roll(block.number + 1);
        vm.prank(whale);
        d.governor.castVote(id, 1);
        vm.warp(block.timestamp + d.governor.votingPeriod() + 1);
        vm.roll(block.number + 1);
        assertEq(uint8(d.governor.state(id)), uint8(IGovernor.ProposalState.Succeeded));
        d.governor.queue(t, v, c, keccak256(bytes(desc)));
        vm.warp(block.timestamp + cfg.timelockDelay + 1);
    }

    function _execute(address target, bytes memory data, string memory desc) internal {
        (address[] memory t, uint256[] memory v, bytes[] memory c) = _proposal(target, data);
        d.governor.execute(t, v, c, keccak256(bytes(desc)));
    }

    function test_settings() public view {
        assertEq(d.governor.votingDelay(), 1 days);
        assertEq(d.token.CLOCK_MODE(), "mode=timestamp");
        assertEq(d.token.clock(), block.timestamp);
        assertEq(d.governor.votingPeriod(), 7 days);
        assertEq(d.governor.proposalThreshold(), 100_000 ether);
        assertEq(d.governor.quorumNumerator(), 4);
        assertEq(d.market.owner(), address(d.timelock));
        assertEq(d.registry.owner(), address(d.timelock));
        assertEq(d.governor.timelock(), address(d.timelock));
        assertFalse(d.timelock.hasRole(d.timelock.DEFAULT_ADMIN_ROLE(), address(this)), "deployer gave up admin");
    }

    function test_proposalChangesParameter() public {
        ComputationMarket.Params memory p = d.market.getParams();
        p.burnBps = 250;
        bytes memory data = abi.encodeCall(ComputationMarket.setParams, (p));
        _passAndQueue(address(d.market), data, "raise burn");
        _execute(address(d.market), data, "raise burn");
        assertEq(d.market.getParams().burnBps, 250);
    }

    function test_treasurySpendNeedsProposal() public {
        bytes memory data = abi.encodeCall(d.token.transfer, (attacker, 1_000 ether));
        vm.prank(attacker);
        vm.expectRevert();
        d.timelock.execute(address(d.token), 0, data, bytes32(0), bytes32(0));
        _passAndQueue(address(d.token), data, "grant");
        _execute(address(d.token), data, "grant");
        assertEq(d.token.balanceOf(attacker), 1_000 ether);
    }

    /// Attack: a proposal that would drop replication below 3 passes the vote
    /// but cannot execute; the parameter keeps its value.
    function test_attack_proposalBreakingBoundFails() public {
        ComputationMarket.Params memory p = d.market.getParams();
        p.minReplicas = 1;
        bytes memory data = abi.encodeCall(ComputationMarket.setParams, (p));
        _passAndQueue(address(d.market), data, "unsafe");
        (address[] memory t, uint256[] memory v, bytes[] memory c) = _proposal(address(d.market), data);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.ParamOutOfBounds.selector, "minReplicas", 3, 31, 1));
        d.governor.execute(t, v, c, keccak256(bytes("unsafe")));
        assertEq(d.market.getParams().minReplicas, 3);
    }

    function test_attack_quorumCannotDropBelowFourPercent() public {
        bytes memory data = abi.encodeCall(d.governor.updateQuorumNumerator, (3));
        _passAndQueue(address(d.governor), data, "low quorum");
        (address[] memory t, uint256[] memory v, bytes[] memory c) = _proposal(address(d.governor), data);
        vm.expectRevert(abi.encodeWithSelector(HAL9Governor.QuorumOutOfBounds.selector, 4, 50, 3));
        d.governor.execute(t, v, c, keccak256(bytes("low quorum")));
    }

    /// Attack: vote buying with a flash loan. Tokens borrowed after the
    /// snapshot carry no weight, and borrowed tokens cannot reach the
    /// proposal threshold in the same block either.
    function test_attack_flashLoanVotesAreWorthless() public {
        ComputationMarket.Params memory p = d.market.getParams();
        p.slashBps = 0;
        (address[] memory t, uint256[] memory v, bytes[] memory c) =
            _proposal(address(d.market), abi.encodeCall(ComputationMarket.setParams, (p)));

        // Borrow 200M and propose in the same block: below threshold.
        vm.prank(whale);
        d.token.transfer(attacker, 200_000_000 ether);
        vm.startPrank(attacker);
        d.token.delegate(attacker);
        vm.expectPartialRevert(IGovernor.GovernorInsufficientProposerVotes.selector);
        d.governor.propose(t, v, c, "flash");
        d.token.transfer(whale, 200_000_000 ether); // repay
        vm.stopPrank();

        // A proposal exists; the attacker borrows after the snapshot and votes.
        vm.prank(whale);
        uint256 id = d.governor.propose(t, v, c, "no slashing");
        vm.warp(block.timestamp + d.governor.votingDelay() + 1);
        vm.roll(block.number + 1);
        vm.prank(whale);
        d.token.transfer(attacker, 200_000_000 ether);
        vm.prank(attacker);
        uint256 weight = d.governor.castVote(id, 1);
        assertEq(weight, 0, "votes are read at the snapshot");
        vm.warp(block.timestamp + d.governor.votingPeriod() + 1);
        vm.roll(block.number + 1);
        assertEq(uint8(d.governor.state(id)), uint8(IGovernor.ProposalState.Defeated));
    }
}
