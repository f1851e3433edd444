// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hal9Test} from "./Hal9Test.sol";
import {NeuronRegistry, IStakeWeightHook} from "../src/NeuronRegistry.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// Reverts and views not covered by the per-contract suites.
contract EdgeCasesTest is Hal9Test {
    function test_RevertWhen_wireByStranger() public {
        NeuronRegistry r = new NeuronRegistry(IERC20(address(d.token)), address(d.timelock), 365 days, 1 days, 1);
        vm.prank(whale);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.NotWirer.selector, whale));
        r.wire(address(d.market), IStakeWeightHook(address(d.rewards)));
    }

    function test_RevertWhen_wireWithUnbondingShorterThanWindow() public {
        NeuronRegistry r = new NeuronRegistry(IERC20(address(d.token)), address(d.timelock), 365 days, 5 minutes, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                NeuronRegistry.ParamOutOfBounds.selector, "unbondingDelay", 10 minutes, 90 days, 5 minutes
            )
        );
        r.wire(address(d.market), IStakeWeightHook(address(d.rewards)));
    }

    function test_RevertWhen_registryConstructorOutOfBounds() public {
        vm.expectPartialRevert(NeuronRegistry.ParamOutOfBounds.selector);
        new NeuronRegistry(IERC20(address(d.token)), address(d.timelock), 1 hours, 1 days, 1);
        vm.expectPartialRevert(NeuronRegistry.ParamOutOfBounds.selector);
        new NeuronRegistry(IERC20(address(d.token)), address(d.timelock), 365 days, 91 days, 1);
    }

    function test_RevertWhen_marketConstructorOutOfBounds() public {
        ComputationMarket.Params memory p = cfg.market;
        p.minReplicas = 2;
        vm.expectPartialRevert(ComputationMarket.ParamOutOfBounds.selector);
        new ComputationMarket(IERC20(address(d.token)), d.registry, address(d.timelock), address(d.timelock), p);
    }

    function test_RevertWhen_garbageSignature() public {
        _spawn(3, STAKE);
        (bytes32 id,) = _post(3, 1, 1 ether);
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = hex"1234";
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureLength.selector, 2));
        d.market.submitVerdict(id, bytes32(0), hex"01", sigs, _noDissent());
    }

    function test_domainSeparatorIsHal9V1() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("hal9"),
                keccak256("1"),
                block.chainid,
                address(d.market)
            )
        );
        assertEq(d.market.domainSeparator(), expected);
        assertEq(d.market.challengeWindow(), 10 minutes);
        assertEq(
            d.market.ATTESTATION_TYPEHASH(), keccak256("Attestation(bytes32 taskId,bytes32 resultHash,bytes outputCid)")
        );
    }

    function test_attestationDigestIsEip712() public view {
        bytes32 id = keccak256("t");
        bytes32 res = keccak256("r");
        bytes memory cid = hex"0155";
        bytes32 structHash = keccak256(abi.encode(d.market.ATTESTATION_TYPEHASH(), id, res, keccak256(cid)));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", d.market.domainSeparator(), structHash));
        assertEq(d.market.attestationDigest(id, res, cid), digest);
    }

    /// Epochs with nobody staked emit nothing; the pool keeps it.
    function test_accrueWithoutWeightAllocatesNothing() public {
        vm.warp(block.timestamp + 5 days);
        d.rewards.accrue();
        assertEq(d.rewards.allocated(), 0);
        assertEq(d.rewards.lastEpoch(), 5);
        _spawn(1, STAKE);
        vm.warp(block.timestamp + 1 days);
        assertApproxEqAbs(d.rewards.pending(ops[0]), d.rewards.epochReward(5), 1);
    }

    function test_noteAssignedBlocksWithdrawUntilReleased() public {
        _spawn(1, STAKE);
        vm.prank(address(d.market));
        d.registry.noteAssigned(ops[0]);
        vm.startPrank(ops[0]);
        d.registry.requestUnbond(STAKE);
        vm.warp(block.timestamp + 2 days);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.ActiveTasks.selector, 1));
        d.registry.withdraw();
        vm.stopPrank();
        vm.prank(address(d.market));
        d.registry.noteReleased(ops[0]);
        vm.prank(ops[0]);
        d.registry.withdraw();
        assertEq(d.registry.neuron(ops[0]).unbonding, 0);
    }

    function test_reregisterAfterDeregister() public {
        _spawn(1, STAKE);
        address op = ops[0];
        bytes memory pid = d.registry.neuron(op).peerId;
        vm.startPrank(op);
        d.registry.deregister();
        d.registry.register(pid, 1);
        vm.stopPrank();
        assertEq(d.registry.activeCount(), 1);
        assertEq(d.registry.neuron(op).unbonding, STAKE, "earlier stake still unbonding");
        assertFalse(d.registry.isStaked(op));
    }

    uint256 internal sSupply;
    uint256 internal sTreasury;
    uint256 internal sHeld;
    uint256 internal sMembers;

    function _membersBalance(address[] memory c, uint256 n) internal view returns (uint256 sum) {
        for (uint256 i = 0; i < n; i++) {
            sum += d.token.balanceOf(c[i]);
        }
    }

    /// A fuzzed task settlement pays out exactly the fee: burn + treasury + members.
    function testFuzz_finalizeConservesFee(uint256 fee, uint8 rRaw, uint8 signersRaw) public {
        _spawn(7, STAKE);
        uint16 r = uint16(bound(rRaw, 3, 7));
        fee = bound(fee, 0.001 ether, 100_000 ether);
        (bytes32 id, address[] memory c) = _post(r, 1, fee);
        uint256 n = bound(signersRaw, d.market.quorum(r), r);
        d.market.submitVerdict(id, keccak256("x"), hex"01", _sigs(c, n, id, keccak256("x"), hex"01"), _noDissent());
        sSupply = d.token.totalSupply();
        sTreasury = d.token.balanceOf(address(d.timelock));
        sHeld = d.token.balanceOf(address(d.registry));
        sMembers = _membersBalance(c, n);
        vm.warp(block.timestamp + 11 minutes);
        d.market.finalize(id);
        uint256 burned = sSupply - d.token.totalSupply();
        uint256 slashed = sHeld - d.token.balanceOf(address(d.registry));
        uint256 toTreasury = d.token.balanceOf(address(d.timelock)) - sTreasury - slashed;
        uint256 toMembers = _membersBalance(c, n) - sMembers;
        assertEq(burned + toTreasury + toMembers, fee, "fee fully and exactly paid out");
        assertEq(burned, fee / 100);
        assertEq(toMembers % n, 0, "equal shares");
        assertEq(d.token.balanceOf(address(d.market)), 0);
    }
}
