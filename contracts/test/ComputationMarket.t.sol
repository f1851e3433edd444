// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hal9Test} from "./Hal9Test.sol";
import {TaskSpec, Dissent} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";
import {CommitteeSampler} from "../src/CommitteeSampler.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

contract ComputationMarketTest is Hal9Test {
    bytes32 internal constant RESULT = keccak256("result");
    bytes internal constant CID = hex"01551220deadbeef";
    uint256 internal constant FEE = 100 ether;

    function setUp() public override {
        super.setUp();
        _spawn(10, STAKE);
    }

    function _verdict(bytes32 id, address[] memory c, uint256 n) internal {
        d.market.submitVerdict(id, RESULT, CID, _sigs(c, n, id, RESULT, CID), _noDissent());
    }

    // ------------------------------------------------------------ postTask

    function test_postTask_escrowsAndDrawsCommittee() public {
        uint256 before = d.token.balanceOf(client);
        TaskSpec memory s = _spec(3, 1);
        bytes32 expectedId = keccak256(abi.encode(s));
        vm.prank(client);
        bytes32 id = d.market.postTask(s, FEE);
        assertEq(id, expectedId, "task id is keccak256(abi.encode(spec))");
        assertEq(d.market.taskId(s), id);
        assertEq(d.token.balanceOf(client), before - FEE);
        assertEq(d.token.balanceOf(address(d.market)), FEE);
        assertEq(d.market.escrowed(), FEE);
        address[] memory c = d.market.committeeOf(id);
        assertEq(c.length, 3);
        for (uint256 i = 0; i < 3; i++) {
            assertEq(d.registry.neuron(c[i]).activeTasks, 1);
            for (uint256 j = 0; j < i; j++) {
                assertTrue(c[i] != c[j]);
            }
        }
        assertEq(uint8(d.market.statusOf(id)), uint8(ComputationMarket.Status.Posted));
    }

    function test_postTask_committeeMatchesSampler() public {
        TaskSpec memory s = _spec(5, 7);
        bytes32 id = keccak256(abi.encode(s));
        vm.prevrandao(bytes32(uint256(1234)));
        (address[] memory cands, uint256[] memory w) = d.registry.candidates(1);
        uint256[] memory picked = this.drawExt(keccak256(abi.encodePacked(uint256(1234), id)), w, 5);
        vm.prank(client);
        d.market.postTask(s, FEE);
        address[] memory c = d.market.committeeOf(id);
        for (uint256 i = 0; i < 5; i++) {
            assertEq(c[i], cands[picked[i]]);
        }
    }

    function drawExt(bytes32 seed, uint256[] memory w, uint256 r) external pure returns (uint256[] memory) {
        return CommitteeSampler.draw(seed, w, r);
    }

    function test_RevertWhen_postTask_wrongSubmitter() public {
        TaskSpec memory s = _spec(3, 1);
        vm.prank(whale);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.WrongSubmitter.selector, whale, client));
        d.market.postTask(s, FEE);
    }

    function test_RevertWhen_postTask_replicasOutOfRange() public {
        TaskSpec memory s = _spec(2, 1);
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.ReplicasOutOfRange.selector, 3, 15, 2));
        d.market.postTask(s, FEE);
        s.replicas = 16;
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.ReplicasOutOfRange.selector, 3, 15, 16));
        d.market.postTask(s, FEE);
    }

    function test_RevertWhen_postTask_badDeadline() public {
        TaskSpec memory s = _spec(3, 1);
        s.deadline = uint64(block.timestamp);
        vm.prank(client);
        vm.expectPartialRevert(ComputationMarket.BadDeadline.selector);
        d.market.postTask(s, FEE);
        s.deadline = uint64(block.timestamp + 2 days);
        vm.prank(client);
        vm.expectPartialRevert(ComputationMarket.BadDeadline.selector);
        d.market.postTask(s, FEE);
    }

    function test_RevertWhen_postTask_feeTooLow() public {
        TaskSpec memory s = _spec(3, 1);
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.FeeTooLow.selector, 0.001 ether, 1));
        d.market.postTask(s, 1);
    }

    function test_RevertWhen_postTask_badCid() public {
        TaskSpec memory s = _spec(3, 1);
        s.programCid = "";
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.BadCid.selector, 128, 0));
        d.market.postTask(s, FEE);
        s.programCid = new bytes(129);
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.BadCid.selector, 128, 129));
        d.market.postTask(s, FEE);
    }

    function test_RevertWhen_postTask_duplicate() public {
        (bytes32 id,) = _post(3, 1, FEE);
        TaskSpec memory s = _spec(3, 1);
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.TaskExists.selector, id));
        d.market.postTask(s, FEE);
    }

    function test_RevertWhen_postTask_notEnoughNeurons() public {
        TaskSpec memory s = _spec(11, 1);
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(CommitteeSampler.NotEnoughCandidates.selector, 11, 10));
        d.market.postTask(s, FEE);
    }

    function test_postTask_onlyCapableNeurons() public {
        // Neurons 0..9 offer capability 1; ask for bit 2, which only op0..op2 get.
        for (uint256 i = 0; i < 3; i++) {
            vm.prank(ops[i]);
            d.registry.setCapabilities(3);
        }
        TaskSpec memory s = _spec(3, 1);
        s.capabilities = 2;
        vm.prank(client);
        bytes32 id = d.market.postTask(s, FEE);
        address[] memory c = d.market.committeeOf(id);
        for (uint256 i = 0; i < 3; i++) {
            assertTrue(c[i] == ops[0] || c[i] == ops[1] || c[i] == ops[2]);
        }
    }

    // -------------------------------------------------------- submitVerdict

    function test_submitVerdict_quorumTwoOfThree() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        _verdict(id, c, 2);
        ComputationMarket.Task memory t = d.market.getTask(id);
        assertEq(uint8(t.status), uint8(ComputationMarket.Status.Verdict));
        assertEq(t.resultHash, RESULT);
        assertEq(t.outputCidHash, keccak256(CID));
        assertEq(t.majorityMask, 3);
        assertEq(t.challengeEnd, block.timestamp + 10 minutes);
    }

    function test_quorumValues() public view {
        assertEq(d.market.quorum(3), 2);
        assertEq(d.market.quorum(4), 3);
        assertEq(d.market.quorum(5), 4);
        assertEq(d.market.quorum(6), 4);
        assertEq(d.market.quorum(7), 5);
    }

    function test_RevertWhen_submitVerdict_noQuorum() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes[] memory sigs = _sigs(c, 1, id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.NoQuorum.selector, 2, 1));
        d.market.submitVerdict(id, RESULT, CID, sigs, _noDissent());
    }

    function test_RevertWhen_submitVerdict_duplicateSigner() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(c[0], id, RESULT, CID);
        sigs[1] = sigs[0];
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.DuplicateSigner.selector, c[0]));
        d.market.submitVerdict(id, RESULT, CID, sigs, _noDissent());
    }

    function test_RevertWhen_submitVerdict_nonCommitteeSigner() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        address outsider;
        for (uint256 i = 0; i < ops.length; i++) {
            if (ops[i] != c[0] && ops[i] != c[1] && ops[i] != c[2]) outsider = ops[i];
        }
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = _sign(c[0], id, RESULT, CID);
        sigs[1] = _sign(outsider, id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.NotCommitteeMember.selector, outsider));
        d.market.submitVerdict(id, RESULT, CID, sigs, _noDissent());
    }

    /// A signature over another task, result or CID recovers a different
    /// address, which is not a committee member.
    function test_RevertWhen_submitVerdict_replayAcrossTasks() public {
        (bytes32 id1, address[] memory c1) = _post(3, 1, FEE);
        (bytes32 id2,) = _post(3, 2, FEE);
        bytes[] memory sigs = _sigs(c1, 2, id1, RESULT, CID);
        vm.expectPartialRevert(ComputationMarket.NotCommitteeMember.selector);
        d.market.submitVerdict(id2, RESULT, CID, sigs, _noDissent());
        // And the same signatures do not prove another CID for their own task.
        vm.expectPartialRevert(ComputationMarket.NotCommitteeMember.selector);
        d.market.submitVerdict(id1, RESULT, hex"0155", sigs, _noDissent());
    }

    /// A signature made for another chain id does not verify here.
    function test_RevertWhen_submitVerdict_replayAcrossChains() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        uint256 home = block.chainid;
        vm.chainId(home + 1);
        bytes[] memory sigs = _sigs(c, 2, id, RESULT, CID);
        vm.chainId(home);
        vm.expectPartialRevert(ComputationMarket.NotCommitteeMember.selector);
        d.market.submitVerdict(id, RESULT, CID, sigs, _noDissent());
    }

    function test_RevertWhen_submitVerdict_malleableSignature() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes32 digest = d.market.attestationDigest(id, RESULT, CID);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keyOf[c[0]], digest);
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes32 highS = bytes32(n - uint256(s));
        bytes[] memory sigs = new bytes[](2);
        sigs[0] = abi.encodePacked(r, highS, v == 27 ? uint8(28) : uint8(27));
        sigs[1] = _sign(c[1], id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, highS));
        d.market.submitVerdict(id, RESULT, CID, sigs, _noDissent());
    }

    function test_RevertWhen_submitVerdict_afterDeadline() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes[] memory sigs = _sigs(c, 2, id, RESULT, CID);
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectPartialRevert(ComputationMarket.DeadlinePassed.selector);
        d.market.submitVerdict(id, RESULT, CID, sigs, _noDissent());
    }

    function test_RevertWhen_submitVerdict_twice() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        _verdict(id, c, 2);
        bytes[] memory sigs = _sigs(c, 2, id, RESULT, CID);
        vm.expectRevert(
            abi.encodeWithSelector(
                ComputationMarket.WrongStatus.selector,
                id,
                ComputationMarket.Status.Posted,
                ComputationMarket.Status.Verdict
            )
        );
        d.market.submitVerdict(id, RESULT, CID, sigs, _noDissent());
    }

    function test_RevertWhen_submitVerdict_unknownTask() public {
        bytes[] memory sigs = new bytes[](0);
        vm.expectPartialRevert(ComputationMarket.WrongStatus.selector);
        d.market.submitVerdict(bytes32(uint256(1)), RESULT, CID, sigs, _noDissent());
    }

    function test_RevertWhen_submitVerdict_emptyCid() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes[] memory sigs = _sigs(c, 2, id, RESULT, "");
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.BadCid.selector, 128, 0));
        d.market.submitVerdict(id, RESULT, "", sigs, _noDissent());
    }

    function test_RevertWhen_dissentAgreesWithVerdict() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        Dissent[] memory ds = new Dissent[](1);
        ds[0] = Dissent(RESULT, CID, _sign(c[2], id, RESULT, CID));
        bytes[] memory sigs = _sigs(c, 2, id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.DissentAgrees.selector, c[2]));
        d.market.submitVerdict(id, RESULT, CID, sigs, ds);
    }

    function test_RevertWhen_dissentFromMajorityMember() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes32 other = keccak256("other");
        Dissent[] memory ds = new Dissent[](1);
        ds[0] = Dissent(other, CID, _sign(c[0], id, other, CID));
        bytes[] memory sigs = _sigs(c, 2, id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.DuplicateSigner.selector, c[0]));
        d.market.submitVerdict(id, RESULT, CID, sigs, ds);
    }

    function test_joinVerdict_latecomerIsPaidNotSlashed() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        _verdict(id, c, 2);
        bytes[] memory late = new bytes[](1);
        late[0] = _sign(c[2], id, RESULT, CID);
        d.market.joinVerdict(id, CID, late);
        assertEq(d.market.getTask(id).majorityMask, 7);
        uint256 s2 = _stake(c[2]);
        uint256 b2 = d.token.balanceOf(c[2]);
        vm.warp(block.timestamp + 11 minutes);
        d.market.finalize(id);
        assertEq(_stake(c[2]), s2, "no liveness slash");
        assertEq(d.token.balanceOf(c[2]), b2 + (FEE - FEE / 100 - FEE * 2 / 100) / 3);
    }

    function test_RevertWhen_joinVerdict_invalid() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes[] memory late = new bytes[](1);
        late[0] = _sign(c[2], id, RESULT, CID);
        vm.expectPartialRevert(ComputationMarket.WrongStatus.selector);
        d.market.joinVerdict(id, CID, late);
        _verdict(id, c, 2);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.BadCid.selector, 128, 2));
        d.market.joinVerdict(id, hex"0155", late);
        bytes[] memory again = new bytes[](1);
        again[0] = _sign(c[0], id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.DuplicateSigner.selector, c[0]));
        d.market.joinVerdict(id, CID, again);
        vm.warp(block.timestamp + 11 minutes);
        vm.expectPartialRevert(ComputationMarket.WindowClosed.selector);
        d.market.joinVerdict(id, CID, late);
    }

    function test_RevertWhen_joinVerdict_minorityMember() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes32 other = keccak256("other");
        Dissent[] memory ds = new Dissent[](1);
        ds[0] = Dissent(other, CID, _sign(c[2], id, other, CID));
        d.market.submitVerdict(id, RESULT, CID, _sigs(c, 2, id, RESULT, CID), ds);
        bytes[] memory late = new bytes[](1);
        late[0] = _sign(c[2], id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.DuplicateSigner.selector, address(0)));
        d.market.joinVerdict(id, CID, late);
    }

    // ------------------------------------------------------------- finalize

    function test_finalize_paysMajorityBurnsAndSlashesMinority() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        bytes32 other = keccak256("other");
        Dissent[] memory ds = new Dissent[](1);
        ds[0] = Dissent(other, CID, _sign(c[2], id, other, CID));
        d.market.submitVerdict(id, RESULT, CID, _sigs(c, 2, id, RESULT, CID), ds);

        uint256 supply = d.token.totalSupply();
        uint256 tre = d.token.balanceOf(address(d.timelock));
        uint256 b0 = d.token.balanceOf(c[0]);
        uint256 b1 = d.token.balanceOf(c[1]);
        uint256 s2 = _stake(c[2]);

        vm.expectRevert(
            abi.encodeWithSelector(ComputationMarket.NotFinalizable.selector, id, ComputationMarket.Status.Verdict)
        );
        d.market.finalize(id);
        vm.warp(block.timestamp + 10 minutes + 1);
        d.market.finalize(id);

        uint256 burned = FEE / 100;
        uint256 toTreasury = FEE * 2 / 100;
        uint256 each = (FEE - burned - toTreasury) / 2;
        uint256 slashed = s2 / 10;
        assertEq(d.token.totalSupply(), supply - burned, "1% burned");
        assertEq(d.token.balanceOf(c[0]), b0 + each);
        assertEq(d.token.balanceOf(c[1]), b1 + each);
        assertEq(_stake(c[2]), s2 - slashed, "minority slashed slashBps");
        assertEq(d.token.balanceOf(address(d.timelock)), tre + toTreasury + slashed);
        assertEq(d.token.balanceOf(address(d.market)), 0);
        assertEq(d.market.escrowed(), 0);
        assertEq(d.registry.neuron(c[0]).activeTasks, 0);
        assertEq(uint8(d.market.statusOf(id)), uint8(ComputationMarket.Status.Finalized));

        vm.expectRevert(
            abi.encodeWithSelector(ComputationMarket.NotFinalizable.selector, id, ComputationMarket.Status.Finalized)
        );
        d.market.finalize(id);
    }

    function test_finalize_silentMemberGetsLivenessSlash() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        _verdict(id, c, 2);
        uint256 s2 = _stake(c[2]);
        vm.warp(block.timestamp + 11 minutes);
        d.market.finalize(id);
        assertEq(_stake(c[2]), s2 - s2 * 50 / 10_000);
    }

    function test_finalize_refundWithoutQuorum() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        uint256 before = d.token.balanceOf(client);
        uint256 s0 = _stake(c[0]);
        vm.expectPartialRevert(ComputationMarket.NotFinalizable.selector);
        d.market.finalize(id);
        vm.warp(block.timestamp + 1 hours + 1);
        d.market.finalize(id);
        assertEq(d.token.balanceOf(client), before + FEE);
        assertEq(_stake(c[0]), s0, "nobody slashed on refund");
        assertEq(uint8(d.market.statusOf(id)), uint8(ComputationMarket.Status.Refunded));
        assertEq(d.registry.neuron(c[0]).activeTasks, 0);
    }

    function testFuzz_feeSplitConserves(uint256 fee, uint8 majority) public view {
        fee = bound(fee, 0, 1e30);
        uint256 m = bound(majority, 1, 31);
        (uint256 burned, uint256 toTreasury, uint256 each) = d.market.feeSplit(fee, m);
        assertEq(burned + toTreasury + each * m, fee, "split adds up to the fee");
        assertEq(burned, fee / 100);
        assertGe(toTreasury, fee * 2 / 100);
        assertLt(toTreasury - fee * 2 / 100, m, "dust below one unit per member");
    }

    // ------------------------------------------------------------ challenge

    function _posted(uint16 r) internal returns (bytes32 id, address[] memory c) {
        (id, c) = _post(r, 99, FEE);
        _verdict(id, c, d.market.quorum(r));
    }

    function _challenger(address[] memory c) internal view returns (address x) {
        for (uint256 i = ops.length; i > 0; i--) {
            address o = ops[i - 1];
            bool member;
            for (uint256 j = 0; j < c.length; j++) {
                if (c[j] == o) member = true;
            }
            if (!member) return o;
        }
    }

    function test_challenge_wrongChallengerLosesBond() public {
        _spawn(4, STAKE);
        (bytes32 id, address[] memory c) = _posted(3);
        address ch = _challenger(c);
        uint256 chBal = d.token.balanceOf(ch);
        vm.prank(ch);
        d.market.challenge(id);
        ComputationMarket.Task memory t = d.market.getTask(id);
        assertEq(t.escalation.length, 7);
        assertEq(t.bond, FEE, "bond = max(min bond, fee * bondBps)");
        for (uint256 i = 0; i < 7; i++) {
            assertTrue(t.escalation[i] != ch);
            for (uint256 j = 0; j < 3; j++) {
                assertTrue(t.escalation[i] != c[j], "escalation excludes the committee");
            }
        }
        uint256 tre = d.token.balanceOf(address(d.timelock));
        uint256 liveness = _stake(c[2]) * 50 / 10_000; // c[2] did not sign
        uint256 e0 = d.token.balanceOf(t.escalation[0]);
        d.market.submitEscalationVerdict(id, RESULT, CID, _sigs(t.escalation, 5, id, RESULT, CID));
        d.market.finalize(id);
        assertEq(d.token.balanceOf(ch), chBal - FEE, "bond lost");
        assertEq(d.token.balanceOf(t.escalation[0]), e0 + FEE / 5, "bond pays the escalation majority");
        assertEq(d.token.balanceOf(address(d.timelock)), tre + FEE * 2 / 100 + liveness);
        assertEq(d.market.escrowed(), 0);
    }

    uint256 internal snapCh;
    uint256 internal snapE0;

    function test_challenge_rightChallengerRewarded() public {
        _spawn(4, STAKE);
        (bytes32 id, address[] memory c) = _posted(3);
        address ch = _challenger(c);
        snapCh = d.token.balanceOf(ch);
        vm.prank(ch);
        d.market.challenge(id);
        address[] memory e = d.market.getTask(id).escalation;
        uint256 s0 = _stake(c[0]);
        uint256 s1 = _stake(c[1]);
        snapE0 = d.token.balanceOf(e[0]);
        d.market.submitEscalationVerdict(id, keccak256("truth"), CID, _sigs(e, 5, id, keccak256("truth"), CID));
        d.market.finalize(id);
        assertEq(_stake(c[0]), s0 - s0 / 10, "wrong majority slashed");
        assertEq(_stake(c[1]), s1 - s1 / 10);
        assertEq(d.token.balanceOf(ch), snapCh + (s0 / 10 + s1 / 10) / 2, "bond back plus half the slash");
        assertEq(d.token.balanceOf(e[0]), snapE0 + (FEE - FEE / 100 - FEE * 2 / 100) / 5, "escalation majority paid");
        assertEq(d.market.getTask(id).resultHash, keccak256("truth"));
        assertEq(d.token.balanceOf(address(d.market)), 0);
    }

    function test_challenge_unresolvedEscalationReturnsBond() public {
        _spawn(4, STAKE);
        (bytes32 id, address[] memory c) = _posted(3);
        address ch = _challenger(c);
        uint256 chBal = d.token.balanceOf(ch);
        vm.prank(ch);
        d.market.challenge(id);
        vm.expectPartialRevert(ComputationMarket.NotFinalizable.selector);
        d.market.finalize(id);
        vm.warp(block.timestamp + 31 minutes);
        d.market.finalize(id);
        assertEq(d.token.balanceOf(ch), chBal);
    }

    function test_RevertWhen_challenge_notStaked() public {
        (bytes32 id,) = _posted(3);
        vm.prank(whale);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.NotStaked.selector, whale));
        d.market.challenge(id);
    }

    function test_RevertWhen_challenge_windowClosed() public {
        (bytes32 id, address[] memory c) = _posted(3);
        vm.warp(block.timestamp + 11 minutes);
        vm.prank(_challenger(c));
        vm.expectPartialRevert(ComputationMarket.WindowClosed.selector);
        d.market.challenge(id);
    }

    function test_RevertWhen_challenge_wrongStatus() public {
        (bytes32 id, address[] memory c) = _post(3, 1, FEE);
        vm.prank(_challenger(c));
        vm.expectPartialRevert(ComputationMarket.WrongStatus.selector);
        d.market.challenge(id);
    }

    function test_RevertWhen_challenge_tooFewFreshNeurons() public {
        (bytes32 id, address[] memory c) = _posted(3);
        vm.prank(_challenger(c));
        vm.expectRevert(abi.encodeWithSelector(CommitteeSampler.NotEnoughCandidates.selector, 7, 6));
        d.market.challenge(id);
    }

    function test_RevertWhen_escalationVerdict_errors() public {
        _spawn(4, STAKE);
        (bytes32 id, address[] memory c) = _posted(3);
        bytes[] memory none = new bytes[](0);
        vm.expectPartialRevert(ComputationMarket.WrongStatus.selector);
        d.market.submitEscalationVerdict(id, RESULT, CID, none);
        vm.prank(_challenger(c));
        d.market.challenge(id);
        address[] memory e = d.market.getTask(id).escalation;
        // Original committee members cannot sign for the escalation.
        bytes[] memory sigs = _sigs(c, 3, id, RESULT, CID);
        vm.expectPartialRevert(ComputationMarket.NotCommitteeMember.selector);
        d.market.submitEscalationVerdict(id, RESULT, CID, sigs);
        sigs = _sigs(e, 4, id, RESULT, CID);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.NoQuorum.selector, 5, 4));
        d.market.submitEscalationVerdict(id, RESULT, CID, sigs);
        sigs = _sigs(e, 5, id, RESULT, CID);
        d.market.submitEscalationVerdict(id, RESULT, CID, sigs);
        vm.expectPartialRevert(ComputationMarket.WrongStatus.selector);
        d.market.submitEscalationVerdict(id, RESULT, CID, sigs);
    }

    function test_RevertWhen_escalationVerdict_late() public {
        _spawn(4, STAKE);
        (bytes32 id, address[] memory c) = _posted(3);
        vm.prank(_challenger(c));
        d.market.challenge(id);
        address[] memory e = d.market.getTask(id).escalation;
        bytes[] memory sigs = _sigs(e, 5, id, RESULT, CID);
        vm.warp(block.timestamp + 31 minutes);
        vm.expectPartialRevert(ComputationMarket.WindowClosed.selector);
        d.market.submitEscalationVerdict(id, RESULT, CID, sigs);
    }

    // ----------------------------------------------------------- parameters

    function test_RevertWhen_setParams_notOwner() public {
        ComputationMarket.Params memory p = d.market.getParams();
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        d.market.setParams(p);
    }

    function test_setParams_boundsHold() public {
        ComputationMarket.Params memory p = cfg.market;
        vm.startPrank(address(d.timelock));
        p.minReplicas = 2;
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.ParamOutOfBounds.selector, "minReplicas", 3, 31, 2));
        d.market.setParams(p);
        p = cfg.market;
        p.burnBps = 1_001;
        vm.expectPartialRevert(ComputationMarket.ParamOutOfBounds.selector);
        d.market.setParams(p);
        p = cfg.market;
        p.treasuryBps = 1_001;
        vm.expectPartialRevert(ComputationMarket.ParamOutOfBounds.selector);
        d.market.setParams(p);
        p = cfg.market;
        p.slashBps = 5_001;
        vm.expectPartialRevert(ComputationMarket.ParamOutOfBounds.selector);
        d.market.setParams(p);
        p = cfg.market;
        p.maxReplicas = 32;
        vm.expectPartialRevert(ComputationMarket.ParamOutOfBounds.selector);
        d.market.setParams(p);
        p = cfg.market;
        // The challenge window can never outgrow the unbonding delay (1 day).
        p.challengeWindow = 1 days + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                ComputationMarket.ParamOutOfBounds.selector, "challengeWindow", 60, 1 days, 1 days + 1
            )
        );
        d.market.setParams(p);
        p = cfg.market;
        p.burnBps = 200;
        p.minReplicas = 5;
        d.market.setParams(p);
        vm.stopPrank();
        assertEq(d.market.getParams().minReplicas, 5);
        assertEq(d.market.getParams().burnBps, 200);
    }
}
