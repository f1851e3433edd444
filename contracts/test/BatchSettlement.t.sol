// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Test.sol";
import {Hal9Test} from "./Hal9Test.sol";
import {Dissent} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";

/// submitVerdicts and finalizeMany: the same checks and effects as the
/// single calls, a bad entry skipped with an event, the rest applied.
contract BatchSettlementTest is Hal9Test {
    bytes32 internal constant RESULT = keccak256("result");
    bytes internal constant CID = hex"01551220deadbeef";
    uint256 internal constant FEE = 100 ether;

    event VerdictSubmitted(
        bytes32 indexed taskId, bytes32 resultHash, bytes outputCid, uint256 majorityMask, uint256 minorityMask
    );
    event VerdictSkipped(bytes32 indexed taskId, bytes reason);
    event FinalizeSkipped(bytes32 indexed taskId, bytes reason);

    function setUp() public override {
        super.setUp();
        _spawn(10, STAKE);
    }

    /// Posts `n` tasks (nonces 1..n) with r = 3.
    function _postMany(uint256 n) internal returns (bytes32[] memory ids, address[][] memory cs) {
        ids = new bytes32[](n);
        cs = new address[][](n);
        for (uint256 i = 0; i < n; i++) {
            (ids[i], cs[i]) = _post(3, i + 1, FEE);
        }
    }

    function _input(bytes32 id, address[] memory c, uint256 nSigs)
        internal
        view
        returns (ComputationMarket.VerdictInput memory v)
    {
        v = ComputationMarket.VerdictInput({
            taskId: id,
            resultHash: RESULT,
            outputCid: CID,
            signatures: _sigs(c, nSigs, id, RESULT, CID),
            dissents: _noDissent()
        });
    }

    function _status(bytes32 id) internal view returns (uint8) {
        return uint8(d.market.statusOf(id));
    }

    // ------------------------------------------------------- submitVerdicts

    function test_submitVerdicts_settlesEveryEntry() public {
        (bytes32[] memory ids, address[][] memory cs) = _postMany(4);
        ComputationMarket.VerdictInput[] memory vs = new ComputationMarket.VerdictInput[](4);
        for (uint256 i = 0; i < 4; i++) {
            vs[i] = _input(ids[i], cs[i], i % 2 == 0 ? 2 : 3);
        }
        for (uint256 i = 0; i < 4; i++) {
            vm.expectEmit(true, false, false, true, address(d.market));
            emit VerdictSubmitted(ids[i], RESULT, CID, i % 2 == 0 ? 3 : 7, 0);
        }
        uint256 settled = d.market.submitVerdicts(vs);
        assertEq(settled, 4);
        for (uint256 i = 0; i < 4; i++) {
            ComputationMarket.Task memory t = d.market.getTask(ids[i]);
            assertEq(uint8(t.status), uint8(ComputationMarket.Status.Verdict));
            assertEq(t.resultHash, RESULT);
            assertEq(t.outputCidHash, keccak256(CID));
            assertEq(t.challengeEnd, block.timestamp + 10 minutes);
        }
    }

    /// A batch of one records exactly what submitVerdict records, dissents included.
    function test_submitVerdicts_sameRecordAsSingleCall() public {
        (bytes32[] memory ids, address[][] memory cs) = _postMany(2);
        bytes32 other = keccak256("other");
        Dissent[] memory ds0 = new Dissent[](1);
        ds0[0] = Dissent(other, CID, _sign(cs[0][2], ids[0], other, CID));
        Dissent[] memory ds1 = new Dissent[](1);
        ds1[0] = Dissent(other, CID, _sign(cs[1][2], ids[1], other, CID));

        d.market.submitVerdict(ids[0], RESULT, CID, _sigs(cs[0], 2, ids[0], RESULT, CID), ds0);
        ComputationMarket.VerdictInput[] memory vs = new ComputationMarket.VerdictInput[](1);
        vs[0] = _input(ids[1], cs[1], 2);
        vs[0].dissents = ds1;
        assertEq(d.market.submitVerdicts(vs), 1);

        ComputationMarket.Task memory a = d.market.getTask(ids[0]);
        ComputationMarket.Task memory b = d.market.getTask(ids[1]);
        assertEq(uint8(a.status), uint8(b.status));
        assertEq(a.resultHash, b.resultHash);
        assertEq(a.outputCidHash, b.outputCidHash);
        assertEq(a.majorityMask, b.majorityMask);
        assertEq(a.minorityMask, b.minorityMask);
        assertEq(b.minorityMask, 4);
        assertEq(a.challengeEnd, b.challengeEnd);
    }

    /// Bad entries (short quorum, forged signer, malleable signature, agreeing
    /// dissent, a task settled earlier in the same batch, an unknown task) are
    /// skipped with the error submitVerdict would revert with; the good ones
    /// are applied and the skipped tasks are untouched.
    function test_submitVerdicts_skipsBadEntriesAndAppliesTheRest() public {
        (bytes32[] memory ids, address[][] memory cs) = _postMany(5);
        ComputationMarket.VerdictInput[] memory vs = new ComputationMarket.VerdictInput[](8);
        vs[0] = _input(ids[0], cs[0], 2);
        // 1: one signature, below the quorum of two.
        vs[1] = _input(ids[1], cs[1], 1);
        // 2: the second signature is a non-member's.
        vs[2] = _input(ids[2], cs[2], 2);
        address outsider = _outsider(cs[2]);
        vs[2].signatures[1] = _sign(outsider, ids[2], RESULT, CID);
        // 3: a high-s (malleable) signature.
        vs[3] = _input(ids[3], cs[3], 2);
        bytes32 highS;
        (vs[3].signatures[0], highS) = _malleable(cs[3][0], ids[3]);
        // 4: a dissent that agrees with the verdict.
        vs[4] = _input(ids[4], cs[4], 2);
        vs[4].dissents = new Dissent[](1);
        vs[4].dissents[0] = Dissent(RESULT, CID, _sign(cs[4][2], ids[4], RESULT, CID));
        // 5: task 0 again, already settled by entry 0.
        vs[5] = _input(ids[0], cs[0], 2);
        // 6: an unknown task.
        vs[6] = _input(bytes32(uint256(0xdead)), cs[0], 0);
        // 7: a good one after the bad ones.
        vs[7] = _input(ids[1], cs[1], 3);

        bytes[] memory want = new bytes[](8);
        want[1] = abi.encodeWithSelector(ComputationMarket.NoQuorum.selector, 2, 1);
        want[2] = abi.encodeWithSelector(ComputationMarket.NotCommitteeMember.selector, outsider);
        want[3] = abi.encodeWithSelector(ComputationMarket.ECDSAInvalidSignatureS.selector, highS);
        want[4] = abi.encodeWithSelector(ComputationMarket.DissentAgrees.selector, cs[4][2]);
        want[5] = abi.encodeWithSelector(
            ComputationMarket.WrongStatus.selector,
            ids[0],
            ComputationMarket.Status.Posted,
            ComputationMarket.Status.Verdict
        );
        want[6] = abi.encodeWithSelector(
            ComputationMarket.WrongStatus.selector,
            bytes32(uint256(0xdead)),
            ComputationMarket.Status.Posted,
            ComputationMarket.Status.None
        );

        vm.recordLogs();
        assertEq(d.market.submitVerdicts(vs), 2, "entries 0 and 7");
        _expectSkips(vs, want);
        _checkAfterSkips(ids, cs);
    }

    /// The recorded VerdictSkipped logs name, in entry order, each entry with a
    /// non-empty `want` and carry that reason.
    function _expectSkips(ComputationMarket.VerdictInput[] memory vs, bytes[] memory want) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 k;
        for (uint256 i = 0; i < logs.length; i++) {
            if (logs[i].topics[0] != VerdictSkipped.selector) continue;
            while (want[k].length == 0) k++;
            assertEq(logs[i].topics[1], vs[k].taskId);
            assertEq(abi.decode(logs[i].data, (bytes)), want[k]);
            k++;
        }
        for (; k < want.length; k++) {
            assertEq(want[k].length, 0, "every bad entry was reported");
        }
    }

    function _checkAfterSkips(bytes32[] memory ids, address[][] memory cs) internal {
        assertEq(_status(ids[0]), uint8(ComputationMarket.Status.Verdict));
        assertEq(_status(ids[1]), uint8(ComputationMarket.Status.Verdict));
        assertEq(d.market.getTask(ids[1]).majorityMask, 7, "entry 7, not the skipped entry 1");
        for (uint256 i = 2; i < 5; i++) {
            ComputationMarket.Task memory t = d.market.getTask(ids[i]);
            assertEq(uint8(t.status), uint8(ComputationMarket.Status.Posted), "skipped: untouched");
            assertEq(t.majorityMask, 0);
            assertEq(t.resultHash, bytes32(0));
        }
        // A skipped task can still be settled with a good certificate.
        d.market.submitVerdict(ids[2], RESULT, CID, _sigs(cs[2], 2, ids[2], RESULT, CID), _noDissent());
        assertEq(_status(ids[2]), uint8(ComputationMarket.Status.Verdict));
    }

    function test_submitVerdicts_skipsAfterDeadline() public {
        (bytes32[] memory ids, address[][] memory cs) = _postMany(1);
        ComputationMarket.VerdictInput[] memory vs = new ComputationMarket.VerdictInput[](1);
        vs[0] = _input(ids[0], cs[0], 2);
        vm.warp(block.timestamp + 1 hours + 1);
        vm.expectEmit(true, false, false, false, address(d.market));
        emit VerdictSkipped(ids[0], "");
        assertEq(d.market.submitVerdicts(vs), 0);
        assertEq(_status(ids[0]), uint8(ComputationMarket.Status.Posted));
    }

    function test_submitVerdicts_emptyBatchIsANoOp() public {
        assertEq(d.market.submitVerdicts(new ComputationMarket.VerdictInput[](0)), 0);
    }

    function test_RevertWhen_submitVerdicts_tooLarge() public {
        ComputationMarket.VerdictInput[] memory vs = new ComputationMarket.VerdictInput[](65);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.BatchTooLarge.selector, 64, 65));
        d.market.submitVerdicts(vs);
    }

    // --------------------------------------------------------- finalizeMany

    /// finalizeMany pays, slashes and refunds exactly like finalize one by one.
    function test_finalizeMany_settlesLikeFinalize() public {
        (bytes32[] memory ids, address[][] memory cs) = _postMany(4);
        // Tasks 0 and 1 get identical verdicts (2 of 3, member 2 silent);
        // task 2 keeps no verdict and is refunded after its deadline;
        // task 3 is finalized singly for comparison with task 0.
        for (uint256 i = 0; i < 4; i++) {
            if (i == 2) continue;
            d.market.submitVerdict(ids[i], RESULT, CID, _sigs(cs[i], 2, ids[i], RESULT, CID), _noDissent());
        }
        vm.warp(block.timestamp + 1 hours + 1);

        uint256 before = d.token.balanceOf(client);
        uint256 supply = d.token.totalSupply();
        d.market.finalize(ids[3]);
        uint256 singleBurn = supply - d.token.totalSupply();

        bytes32[] memory batch = new bytes32[](3);
        batch[0] = ids[0];
        batch[1] = ids[1];
        batch[2] = ids[2];
        supply = d.token.totalSupply();
        assertEq(d.market.finalizeMany(batch), 3);
        assertEq(supply - d.token.totalSupply(), 2 * singleBurn, "each batched task burns what a single one does");
        assertEq(_status(ids[0]), uint8(ComputationMarket.Status.Finalized));
        assertEq(_status(ids[1]), uint8(ComputationMarket.Status.Finalized));
        assertEq(_status(ids[2]), uint8(ComputationMarket.Status.Refunded));
        assertEq(d.token.balanceOf(client), before + FEE, "task 2 refunded");
        assertEq(d.market.escrowed(), 0);
        assertEq(d.token.balanceOf(address(d.market)), 0);
        for (uint256 i = 0; i < 10; i++) {
            assertEq(d.registry.neuron(ops[i]).activeTasks, 0, "every member released");
        }
    }

    /// A task still in its challenge window, an unknown task and a task
    /// already finalized earlier in the batch are skipped with NotFinalizable.
    function test_finalizeMany_skipsWhatIsNotFinalizable() public {
        (bytes32[] memory ids, address[][] memory cs) = _postMany(2);
        d.market.submitVerdict(ids[0], RESULT, CID, _sigs(cs[0], 2, ids[0], RESULT, CID), _noDissent());
        vm.warp(block.timestamp + 11 minutes);
        d.market.submitVerdict(ids[1], RESULT, CID, _sigs(cs[1], 2, ids[1], RESULT, CID), _noDissent());

        bytes32[] memory batch = new bytes32[](4);
        batch[0] = ids[1]; // window still open
        batch[1] = ids[0];
        batch[2] = bytes32(uint256(7)); // unknown
        batch[3] = ids[0]; // again
        vm.expectEmit(true, false, false, true, address(d.market));
        emit FinalizeSkipped(
            ids[1],
            abi.encodeWithSelector(ComputationMarket.NotFinalizable.selector, ids[1], ComputationMarket.Status.Verdict)
        );
        vm.expectEmit(true, false, false, true, address(d.market));
        emit FinalizeSkipped(
            bytes32(uint256(7)),
            abi.encodeWithSelector(
                ComputationMarket.NotFinalizable.selector, bytes32(uint256(7)), ComputationMarket.Status.None
            )
        );
        vm.expectEmit(true, false, false, true, address(d.market));
        emit FinalizeSkipped(
            ids[0],
            abi.encodeWithSelector(
                ComputationMarket.NotFinalizable.selector, ids[0], ComputationMarket.Status.Finalized
            )
        );
        assertEq(d.market.finalizeMany(batch), 1);
        assertEq(_status(ids[0]), uint8(ComputationMarket.Status.Finalized));
        assertEq(_status(ids[1]), uint8(ComputationMarket.Status.Verdict), "skipped: untouched");

        vm.warp(block.timestamp + 11 minutes);
        bytes32[] memory rest = new bytes32[](1);
        rest[0] = ids[1];
        assertEq(d.market.finalizeMany(rest), 1);
        assertEq(d.market.escrowed(), 0);
    }

    function test_RevertWhen_finalizeMany_tooLarge() public {
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.BatchTooLarge.selector, 64, 65));
        d.market.finalizeMany(new bytes32[](65));
    }

    /// Batching pays off: settling (submit + finalize) 16 tasks in two
    /// batched calls costs less gas per task than 32 single calls.
    function test_batchesCostLessGasPerTask() public {
        uint256 n = 16;
        (bytes32[] memory ids, address[][] memory cs) = _postMany(2 * n);
        uint256 single;
        for (uint256 i = 0; i < n; i++) {
            bytes[] memory sigs = _sigs(cs[i], 2, ids[i], RESULT, CID);
            uint256 g = gasleft();
            d.market.submitVerdict(ids[i], RESULT, CID, sigs, _noDissent());
            single += g - gasleft();
        }
        ComputationMarket.VerdictInput[] memory vs = new ComputationMarket.VerdictInput[](n);
        bytes32[] memory batch = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            vs[i] = _input(ids[n + i], cs[n + i], 2);
            batch[i] = ids[n + i];
        }
        uint256 g0 = gasleft();
        d.market.submitVerdicts(vs);
        uint256 batched = g0 - gasleft();
        vm.warp(block.timestamp + 11 minutes);
        for (uint256 i = 0; i < n; i++) {
            g0 = gasleft();
            d.market.finalize(ids[i]);
            single += g0 - gasleft();
        }
        g0 = gasleft();
        d.market.finalizeMany(batch);
        batched += g0 - gasleft();
        // In-EVM gas excludes the 21,000 base cost per transaction, which is
        // where most of the real saving is; still no worse per task here.
        assertLe(batched, single, "batched execution gas <= single");
    }

    // -------------------------------------------------------------- helpers

    function _outsider(address[] memory c) internal view returns (address) {
        for (uint256 i = 0; i < ops.length; i++) {
            if (ops[i] != c[0] && ops[i] != c[1] && ops[i] != c[2]) return ops[i];
        }
        revert("no outsider");
    }

    function _malleable(address signer, bytes32 id) internal view returns (bytes memory sig, bytes32 highS) {
        bytes32 digest = d.market.attestationDigest(id, RESULT, CID);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keyOf[signer], digest);
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        highS = bytes32(n - uint256(s));
        sig = abi.encodePacked(r, highS, v == 27 ? uint8(28) : uint8(27));
    }
}
