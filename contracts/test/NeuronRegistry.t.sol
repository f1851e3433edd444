// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hal9Test} from "./Hal9Test.sol";
import {Dissent} from "../src/Hal9Types.sol";
import {NeuronRegistry, IStakeWeightHook} from "../src/NeuronRegistry.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract NeuronRegistryTest is Hal9Test {
    address internal op;

    function setUp() public override {
        super.setUp();
        _spawn(1, 0);
        op = ops[0];
    }

    function test_register_bindsPeerId() public {
        NeuronRegistry.Neuron memory n = d.registry.neuron(op);
        assertTrue(n.registered);
        assertEq(n.capabilities, 1);
        assertEq(d.registry.peerOwner(keccak256(n.peerId)), op);
        assertEq(d.registry.activeCount(), 1);
        assertEq(d.registry.activeAt(0), op);
    }

    function test_RevertWhen_register_twice() public {
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.AlreadyRegistered.selector, op));
        d.registry.register(hex"0102", 1);
    }

    function test_RevertWhen_register_badPeerId() public {
        vm.prank(whale);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.InvalidPeerId.selector, 64, 0));
        d.registry.register("", 1);
        vm.prank(whale);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.InvalidPeerId.selector, 64, 65));
        d.registry.register(new bytes(65), 1);
    }

    function test_RevertWhen_register_peerIdTaken() public {
        bytes memory pid = d.registry.neuron(op).peerId;
        vm.prank(whale);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.PeerIdTaken.selector, op));
        d.registry.register(pid, 1);
    }

    function test_setCapabilities() public {
        vm.prank(op);
        d.registry.setCapabilities(6);
        assertEq(d.registry.neuron(op).capabilities, 6);
        vm.prank(whale);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.NotRegistered.selector, whale));
        d.registry.setCapabilities(1);
    }

    function test_stake_addsNeverOverwrites() public {
        vm.startPrank(op);
        d.registry.stake(100 ether);
        d.registry.stake(50 ether);
        vm.stopPrank();
        assertEq(_stake(op), 150 ether);
        assertEq(d.registry.totalHeld(), 150 ether);
        assertEq(d.token.balanceOf(address(d.registry)), 150 ether);
        assertEq(d.rewards.weightOf(op), 150 ether, "rewards see the effective stake");
    }

    function test_RevertWhen_stake_zeroOrUnregistered() public {
        vm.prank(op);
        vm.expectRevert(NeuronRegistry.ZeroAmount.selector);
        d.registry.stake(0);
        vm.prank(whale);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.NotRegistered.selector, whale));
        d.registry.stake(1);
    }

    function test_lock_multiplierOneToThree() public {
        vm.startPrank(op);
        d.registry.stake(100 ether);
        assertEq(d.registry.multiplierBps(op), 10_000);
        d.registry.lock(365 days / 2);
        assertEq(d.registry.multiplierBps(op), 20_000);
        d.registry.lock(365 days);
        assertEq(d.registry.multiplierBps(op), 30_000);
        assertEq(d.registry.effectiveStake(op), 300 ether);
        vm.stopPrank();
        vm.warp(block.timestamp + 365 days);
        assertEq(d.registry.multiplierBps(op), 10_000, "1x once the lock ended");
    }

    function test_RevertWhen_lock_invalid() public {
        vm.startPrank(op);
        vm.expectRevert(NeuronRegistry.ZeroAmount.selector);
        d.registry.lock(0);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.LockTooLong.selector, 365 days, 365 days + 1));
        d.registry.lock(365 days + 1);
        d.registry.lock(100 days);
        vm.expectPartialRevert(NeuronRegistry.LockShortened.selector);
        d.registry.lock(10 days);
        vm.stopPrank();
    }

    function testFuzz_multiplier(uint64 lockLen, uint96 amount) public {
        uint64 l = uint64(bound(lockLen, 1, 365 days));
        uint256 a = bound(amount, 1, 1_000 ether);
        vm.startPrank(op);
        d.registry.stake(a);
        d.registry.lock(l);
        vm.stopPrank();
        uint256 m = d.registry.multiplierBps(op);
        assertEq(m, 10_000 + 20_000 * uint256(l) / 365 days);
        assertGe(m, 10_000);
        assertLe(m, 30_000);
        assertEq(d.registry.effectiveStake(op), a * m / 10_000);
        assertEq(d.rewards.weightOf(op), a * m / 10_000);
    }

    function testFuzz_stakeAccumulates(uint96[5] memory amounts) public {
        uint256 sum;
        vm.startPrank(op);
        for (uint256 i = 0; i < 5; i++) {
            uint256 a = bound(amounts[i], 1, 100 ether);
            d.registry.stake(a);
            sum += a;
        }
        vm.stopPrank();
        assertEq(_stake(op), sum);
        assertEq(d.registry.totalHeld(), sum);
    }

    function test_unbondAndWithdraw() public {
        vm.startPrank(op);
        d.registry.stake(100 ether);
        d.registry.requestUnbond(40 ether);
        assertEq(_stake(op), 60 ether);
        assertEq(d.registry.neuron(op).unbonding, 40 ether);
        vm.expectPartialRevert(NeuronRegistry.StillUnbonding.selector);
        d.registry.withdraw();
        vm.warp(block.timestamp + 1 days);
        uint256 bal = d.token.balanceOf(op);
        d.registry.withdraw();
        assertEq(d.token.balanceOf(op), bal + 40 ether);
        vm.expectRevert(NeuronRegistry.NothingUnbonding.selector);
        d.registry.withdraw();
        vm.stopPrank();
    }

    function test_RevertWhen_unbond_locked_or_tooMuch() public {
        vm.startPrank(op);
        d.registry.stake(100 ether);
        vm.expectRevert(NeuronRegistry.ZeroAmount.selector);
        d.registry.requestUnbond(0);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.InsufficientStake.selector, 100 ether, 101 ether));
        d.registry.requestUnbond(101 ether);
        d.registry.lock(10 days);
        vm.expectPartialRevert(NeuronRegistry.LockActive.selector);
        d.registry.requestUnbond(1 ether);
        vm.expectPartialRevert(NeuronRegistry.LockActive.selector);
        d.registry.deregister();
        vm.stopPrank();
    }

    function test_deregister_unbondsEverything() public {
        vm.startPrank(op);
        d.registry.stake(100 ether);
        d.registry.deregister();
        vm.stopPrank();
        NeuronRegistry.Neuron memory n = d.registry.neuron(op);
        assertFalse(n.registered);
        assertEq(n.stake, 0);
        assertEq(n.unbonding, 100 ether);
        assertEq(d.registry.activeCount(), 0);
        assertEq(d.registry.peerOwner(keccak256(n.peerId)), address(0));
        assertEq(d.rewards.weightOf(op), 0);
        vm.prank(op);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.NotRegistered.selector, op));
        d.registry.deregister();
    }

    function test_deregister_keepsOthersInOrder() public {
        _spawn(2, 500 ether);
        vm.prank(op);
        d.registry.deregister();
        assertEq(d.registry.activeCount(), 2);
        assertEq(d.registry.activeAt(0), ops[2], "last moved into the hole");
        assertEq(d.registry.activeAt(1), ops[1]);
        (address[] memory c, uint256[] memory w) = d.registry.candidates(1);
        assertEq(c.length, 2);
        assertEq(w[0], 500 ether);
    }

    function test_candidates_filter() public {
        _spawn(2, 500 ether);
        vm.prank(op);
        d.registry.stake(50 ether); // below minStake (100)
        vm.prank(ops[1]);
        d.registry.setCapabilities(2);
        (address[] memory c,) = d.registry.candidates(1);
        assertEq(c.length, 1);
        assertEq(c[0], ops[2]);
        (c,) = d.registry.candidates(0);
        assertEq(c.length, 2);
    }

    function test_RevertWhen_slash_notMarket() public {
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.NotMarket.selector, address(this)));
        d.registry.slash(op, 100, address(this));
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.NotMarket.selector, address(this)));
        d.registry.noteAssigned(op);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.NotMarket.selector, address(this)));
        d.registry.noteReleased(op);
    }

    function test_slash_reachesUnbondingStake() public {
        vm.startPrank(op);
        d.registry.stake(100 ether);
        d.registry.requestUnbond(100 ether);
        vm.stopPrank();
        vm.prank(address(d.market));
        uint256 got = d.registry.slash(op, 5_000, whale);
        assertEq(got, 50 ether);
        assertEq(d.registry.neuron(op).unbonding, 50 ether);
        assertEq(d.registry.totalHeld(), 50 ether);
        vm.prank(address(d.market));
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.BpsTooHigh.selector, 10_000, 10_001));
        d.registry.slash(op, 10_001, whale);
    }

    /// Attack: a neuron on an open task starts unbonding to escape a slash.
    /// Withdraw stays blocked while the task is open, and the slash still lands.
    function test_attack_slashedNeuronCannotEscapeThroughUnbonding() public {
        _spawn(2, STAKE);
        vm.prank(op);
        d.registry.stake(STAKE);
        (bytes32 id, address[] memory c) = _post(3, 1, 10 ether);
        address cheat = c[0];
        uint256 all = _stake(cheat);
        vm.prank(cheat);
        d.registry.requestUnbond(all);
        // The committee outvotes the cheat, who signed another result.
        bytes32 res = keccak256("r");
        d.market.submitVerdict(id, res, hex"01", _twoSigs(c[1], c[2], id, res), _dissent(cheat, id, keccak256("bad")));
        vm.warp(block.timestamp + 1 days + 1);
        vm.prank(cheat);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.ActiveTasks.selector, 1));
        d.registry.withdraw();
        d.market.finalize(id);
        assertEq(d.registry.neuron(cheat).unbonding, STAKE - STAKE / 10, "slash hit the unbonding stake");
        vm.prank(cheat);
        d.registry.withdraw();
    }

    function _twoSigs(address a, address b, bytes32 id, bytes32 res) internal view returns (bytes[] memory s) {
        s = new bytes[](2);
        s[0] = _sign(a, id, res, hex"01");
        s[1] = _sign(b, id, res, hex"01");
    }

    function _dissent(address who, bytes32 id, bytes32 res) internal view returns (Dissent[] memory ds) {
        ds = new Dissent[](1);
        ds[0] = Dissent(res, hex"01", _sign(who, id, res, hex"01"));
    }

    function test_poke_dropsExpiredLockWeight() public {
        vm.startPrank(op);
        d.registry.stake(100 ether);
        d.registry.lock(365 days);
        vm.stopPrank();
        assertEq(d.rewards.weightOf(op), 300 ether);
        vm.warp(block.timestamp + 365 days);
        d.registry.poke(op);
        assertEq(d.rewards.weightOf(op), 100 ether);
    }

    function test_setParams_boundsAndOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        d.registry.setParams(30 days, 2 days, 1 ether);
        vm.startPrank(address(d.timelock));
        vm.expectRevert(
            abi.encodeWithSelector(NeuronRegistry.ParamOutOfBounds.selector, "maxLock", 1 days, 4 * 365 days, 1 hours)
        );
        d.registry.setParams(1 hours, 2 days, 1 ether);
        // Unbonding shorter than the challenge window (10 minutes) is refused.
        vm.expectRevert(
            abi.encodeWithSelector(
                NeuronRegistry.ParamOutOfBounds.selector, "unbondingDelay", 10 minutes, 90 days, 5 minutes
            )
        );
        d.registry.setParams(30 days, 5 minutes, 1 ether);
        d.registry.setParams(30 days, 2 days, 1 ether);
        vm.stopPrank();
        assertEq(d.registry.maxLock(), 30 days);
        assertEq(d.registry.unbondingDelay(), 2 days);
        assertEq(d.registry.minStake(), 1 ether);
    }

    function test_RevertWhen_wireTwice() public {
        vm.expectRevert(NeuronRegistry.AlreadyWired.selector);
        d.registry.wire(address(d.market), IStakeWeightHook(address(d.rewards)));
    }
}
