// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hal9Test} from "./Hal9Test.sol";
import {TaskSpec, Reveal, Dissent} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";
import {NeuronRegistry} from "../src/NeuronRegistry.sol";

/// A submitter contract that tries to grind task nonces: it posts and looks
/// at the committee in the same transaction, and would keep the task only
/// when the committee suits it. Under v1.1 there is no committee to look at.
contract NonceGrinder {
    ComputationMarket internal m;

    constructor(ComputationMarket m_) {
        m = m_;
    }

    function grind(TaskSpec memory s, uint256 fee, uint256 tries)
        external
        returns (uint256 seen, bytes memory drawErr)
    {
        m.token().approve(address(m), type(uint256).max);
        for (uint256 i = 0; i < tries; i++) {
            s.nonce = i;
            bytes32 id = m.postTask(s, fee);
            seen += m.committeeOf(id).length;
            try m.draw(id) {}
            catch (bytes memory e) {
                drawErr = e;
            }
        }
    }
}

/// Every attack of issue 11, played against the v1.1 logic: each now fails,
/// and each test says why.
contract AttacksTest is Hal9Test {
    function setUp() public override {
        super.setUp();
        _spawn(24, STAKE);
    }

    // ------------------------------------------------------------ 1. grinding

    /// v1.0: seed = keccak(prevrandao, taskId) in postTask, so a contract
    /// simulated the draw for many nonces and posted the one it liked. v1.1:
    /// postTask draws nothing, and draw() needs blockhash of a later block.
    function test_attack_grindNonces_fails() public {
        NonceGrinder g = new NonceGrinder(d.market);
        vm.prank(whale);
        d.token.transfer(address(g), 1_000 ether);
        TaskSpec memory s = _spec(3, 0);
        s.submitter = address(g);
        (uint256 seen, bytes memory err) = g.grind(s, FEE, 5);
        assertEq(seen, 0, "no committee is known at request time");
        uint256 target = d.registry.targetBlock(block.number + cfg.market.drawDelay);
        assertEq(err, abi.encodeWithSelector(ComputationMarket.TooEarly.selector, target + 1, block.number));
    }

    /// The committee depends on the hash of the target block, which did not
    /// exist when the task id was fixed: two possible hashes, two committees.
    function test_committeeDependsOnFutureHash() public {
        bytes32 id = _postOnly(3, 1);
        uint256 target = d.market.getTask(id).drawBlock;
        assertGt(target, block.number);
        vm.roll(target + 1);
        uint256 snap = vm.snapshotState();
        bool differs;
        vm.setBlockhash(target, keccak256("a"));
        d.market.draw(id);
        address[] memory a = d.market.committeeOf(id);
        for (uint256 h = 0; h < 8 && !differs; h++) {
            vm.revertToState(snap);
            vm.setBlockhash(target, keccak256(abi.encode(h)));
            d.market.draw(id);
            address[] memory b = d.market.committeeOf(id);
            for (uint256 i = 0; i < 3; i++) {
                if (a[i] != b[i]) differs = true;
            }
        }
        assertTrue(differs);
    }

    /// Nobody draws within the epoch of the target: draw re-targets instead of
    /// using a hash an attacker has known for long (or one the trees outlived).
    function test_lateDrawRetargets() public {
        bytes32 id = _postOnly(3, 2);
        uint256 target = d.market.getTask(id).drawBlock;
        vm.roll(target + 300);
        assertFalse(d.market.draw(id));
        assertGt(d.market.getTask(id).drawBlock, target + 300);
        assertEq(d.market.committeeOf(id).length, 0);
    }

    // ------------------------------------------------ 2. weights after the hash

    /// v1.0 read the weights live in the drawing transaction. v1.1: once the
    /// randomness exists (draw phase), staking, unbonding and slashing only
    /// queue tree updates; the draw reads the same tree whatever is done.
    function test_attack_moveWeightAfterRandomness_fails() public {
        bytes32 id = _postOnly(3, 3);
        uint256 target = d.market.getTask(id).drawBlock;
        vm.roll(target + 1);
        vm.setBlockhash(target, keccak256("beacon"));
        assertFalse(d.registry.inApplyPhase());

        uint256 snap = vm.snapshotState();
        d.market.draw(id);
        address[] memory honest = d.market.committeeOf(id);
        vm.revertToState(snap);

        // The attacker (op 0) sees the hash and piles up stake, another op
        // leaves, a third gets itself slashed - all before calling draw.
        address attacker = ops[0];
        uint256 before = d.registry.treeWeight(1, attacker);
        vm.prank(whale);
        d.token.transfer(attacker, 100_000 ether);
        vm.prank(attacker);
        d.registry.stake(100_000 ether);
        vm.prank(ops[1]);
        d.registry.deregister();
        assertEq(d.registry.treeWeight(1, attacker), before, "stake is queued, not in the tree");
        assertGt(d.registry.treeWeight(1, ops[1]), 0, "leaving is queued too");
        address[] memory none = new address[](1);
        none[0] = attacker;
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.NotApplyPhase.selector, block.number));
        d.registry.applyQueued(none);

        d.market.draw(id);
        address[] memory after_ = d.market.committeeOf(id);
        for (uint256 i = 0; i < 3; i++) {
            assertEq(after_[i], honest[i], "same committee as without the moves");
        }
    }

    /// Changing weights and drawing in one transaction is impossible: the
    /// draw needs a block after the request.
    function test_attack_sameTxWeights_fails() public {
        bytes32 id = _postOnly(3, 4);
        vm.expectRevert();
        d.market.draw(id);
    }

    // -------------------------------------------------- 3. self-challenge

    /// v1.0: a challenge whose escalation never reached quorum returned the
    /// bond and *confirmed* the verdict, all in one transaction. v1.1: the
    /// escalation is drawn from a later block, and an escalation held below
    /// quorum by a blocking minority refunds the task: the fake verdict is
    /// never paid, and silent escalation members are slashed.
    function test_attack_selfChallengeBlockingMinority_fails() public {
        (bytes32 id, address[] memory c) = _post(3, 5);
        bytes32 fake = keccak256("fake");
        for (uint256 i = 0; i < 3; i++) {
            _commit(id, c[i], fake);
        }
        _afterCommit(id);
        d.market.submitVerdict(id, fake, CID, _reveals(c, 3, id, fake));

        address challenger = _nonMember(c);
        vm.prank(challenger);
        d.market.challenge(id);
        // Same transaction / block: nothing to draw yet, nothing to finalize.
        vm.expectRevert();
        d.market.draw(id);
        assertFalse(_tryFinalize(id));

        address[] memory e = _draw(id);
        assertEq(e.length, 7);
        // Blocking minority: only 4 of 7 (quorum 5) commit and reveal.
        for (uint256 i = 0; i < 4; i++) {
            _commit(id, e[i], RESULT);
        }
        _afterCommit(id);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.NoQuorum.selector, 5, 4));
        d.market.submitEscalationVerdict(id, RESULT, CID, _reveals(e, 4, id, RESULT));

        uint256[3] memory bal;
        for (uint256 i = 0; i < 3; i++) {
            bal[i] = d.token.balanceOf(c[i]);
        }
        uint256 clientBefore = d.token.balanceOf(client);
        uint256 silentStake = _stake(e[6]);
        uint256 withholdStake = _stake(e[0]);
        vm.warp(d.market.getTask(id).escalationEnd + 1);
        d.market.finalize(id);
        for (uint256 i = 0; i < 3; i++) {
            assertEq(d.token.balanceOf(c[i]), bal[i], "fake majority not paid");
        }
        assertEq(d.token.balanceOf(client), clientBefore + FEE, "task refunded, not confirmed");
        assertLt(_stake(e[6]), silentStake, "silent escalation member slashed");
        assertLt(_stake(e[0]), withholdStake, "committed-but-unrevealed escalation member slashed");
    }

    // --------------------------------------------------- 4. copy and join

    /// v1.0: a member copied the result from VerdictSubmitted, signed it and
    /// joined. v1.1: only members with a commitment stored before commitEnd
    /// can be counted; a late commit and a copied reveal both fail.
    function test_attack_copyAndJoin_fails() public {
        (bytes32 id, address[] memory c) = _post(3, 6);
        _commit(id, c[0], RESULT);
        _commit(id, c[1], RESULT);
        _afterCommit(id);
        d.market.submitVerdict(id, RESULT, CID, _reveals(c, 2, id, RESULT));
        address copier = c[2];
        bytes32[] memory ids = new bytes32[](1);
        bytes32[] memory cs = new bytes32[](1);
        ids[0] = id;
        cs[0] = d.market.commitmentOf(id, RESULT, keccak256(CID), _salt(copier, id), copier);
        vm.prank(copier);
        vm.expectRevert();
        d.market.commitMany(ids, cs);
        Reveal[] memory rs = new Reveal[](1);
        rs[0] = _reveal(2, copier, id, RESULT);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.BadReveal.selector, 2));
        d.market.addReveals(id, rs);
        uint256 b = d.token.balanceOf(copier);
        _afterChallenge(id);
        d.market.finalize(id);
        assertEq(d.token.balanceOf(copier), b, "copier earns nothing");
    }

    // ------------------------------------------------ 5. withhold and join

    /// v1.0: a loser withheld its dissent and joined the majority later (10 %
    /// slash became full pay). v1.1: its commitment binds its result; it can
    /// open it only to what it committed, and withholding the opening is
    /// slashed exactly as a losing reveal is.
    function test_attack_withholdAndJoin_fails() public {
        (bytes32 id, address[] memory c) = _post(3, 7);
        _commit(id, c[0], RESULT);
        _commit(id, c[1], RESULT);
        bytes32 wrong = keccak256("wrong");
        _commit(id, c[2], wrong);
        _afterCommit(id);
        d.market.submitVerdict(id, RESULT, CID, _reveals(c, 2, id, RESULT));
        // Tries to open its commitment as the majority result: does not match.
        Reveal[] memory rs = new Reveal[](1);
        rs[0] = _reveal(2, c[2], id, RESULT);
        vm.expectRevert(abi.encodeWithSelector(ComputationMarket.BadReveal.selector, 2));
        d.market.addReveals(id, rs);
        uint256 s = _stake(c[2]);
        uint256 b = d.token.balanceOf(c[2]);
        _afterChallenge(id);
        d.market.finalize(id);
        assertEq(d.token.balanceOf(c[2]), b, "not paid");
        assertEq(_stake(c[2]), s - s * cfg.market.slashBps / 10_000, "withholding slashed at slashBps");
    }

    /// Anyone may bring a member's opening during the challenge window.
    function test_anyoneBringsDissent() public {
        (bytes32 id, address[] memory c) = _post(3, 8);
        bytes32 wrong = keccak256("wrong");
        _commit(id, c[0], RESULT);
        _commit(id, c[1], RESULT);
        _commit(id, c[2], wrong);
        _afterCommit(id);
        d.market.submitVerdict(id, RESULT, CID, _reveals(c, 2, id, RESULT));
        Reveal[] memory rs = new Reveal[](1);
        rs[0] = _reveal(2, c[2], id, wrong);
        vm.prank(makeAddr("stranger"));
        d.market.addReveals(id, rs);
        assertEq(d.market.getTask(id).minorityMask, 4);
    }

    // ----------------------------------------------------- 6. equivocation

    /// Two different signed results for one task by one member: anyone who
    /// shows both slashes it (half to the prover), and it is paid nothing.
    function test_attack_equivocation_slashed() public {
        (bytes32 id, address[] memory c) = _post(3, 9);
        address liar = c[0];
        bytes memory s1 = _signResult(liar, id, RESULT, CID);
        bytes memory s2 = _signResult(liar, id, keccak256("other"), CID);
        address prover = makeAddr("prover");
        uint256 st = _stake(liar);
        vm.prank(prover);
        d.market.proveEquivocation(id, Dissent(RESULT, CID, s1), Dissent(keccak256("other"), CID, s2));
        uint256 slashed = st * cfg.market.slashBps / 10_000;
        assertEq(_stake(liar), st - slashed);
        assertEq(d.token.balanceOf(prover), slashed / 2);
        vm.expectRevert(ComputationMarket.NotEquivocation.selector);
        d.market.proveEquivocation(id, Dissent(RESULT, CID, s1), Dissent(keccak256("other"), CID, s2));
        // It still commits and reveals the majority result: paid nothing.
        uint256 b = d.token.balanceOf(liar);
        _settleHonest(id, c);
        assertEq(d.token.balanceOf(liar), b);
        assertEq(_stake(liar), st - slashed, "not slashed twice");
    }

    // ---------------------------------------------------- 7. liveness drain

    /// v1.0: with minFee 0.001 HAL9, 140 tasks whose input the victim never
    /// received took half its stake. v1.1: no liveness slash unless a quorum
    /// committed; a submitter withholding the input from everyone pays
    /// abandonBps per task; at most maxLivenessPerDay slashes per neuron per
    /// day; minFee is at least 0.1 HAL9 by a fixed bound.
    function test_attack_livenessDrain_fails() public {
        uint256 total0 = _stakeSum();
        uint256 clientBefore = d.token.balanceOf(client);
        for (uint256 n = 0; n < 5; n++) {
            bytes32 id = _postOnly(3, 100 + n);
            _draw(id);
            vm.warp(d.market.getTask(id).deadline + 1);
            d.market.finalize(id);
        }
        assertEq(_stakeSum(), total0, "nobody committed: no evidence of input, no slash");
        assertEq(clientBefore - d.token.balanceOf(client), 5 * FEE * cfg.market.abandonBps / 10_000);

        // Input given to all but one victim: the victim is slashed at most
        // maxLivenessPerDay times a day.
        ComputationMarket.Params memory p = d.market.getParams();
        uint256 hits;
        address victim;
        uint256 day = block.timestamp / 1 days;
        for (uint256 n = 0; n < 40 && hits <= p.maxLivenessPerDay; n++) {
            (bytes32 id, address[] memory c) = _post(3, 200 + n);
            if (victim == address(0)) victim = c[2];
            uint256 vi = 3;
            for (uint256 i = 0; i < 3; i++) {
                if (c[i] == victim) vi = i;
            }
            if (vi == 3) continue;
            for (uint256 i = 0; i < 3; i++) {
                if (i != vi) _commit(id, c[i], RESULT);
            }
            _afterCommit(id);
            Reveal[] memory rs = new Reveal[](2);
            uint256 k;
            for (uint256 i = 0; i < 3; i++) {
                if (i != vi) rs[k++] = _reveal(uint16(i), c[i], id, RESULT);
            }
            d.market.submitVerdict(id, RESULT, CID, rs);
            uint256 before = _stake(victim);
            _afterChallenge(id);
            d.market.finalize(id);
            if (_stake(victim) < before) hits++;
        }
        assertEq(block.timestamp / 1 days, day, "all within one day");
        assertLe(hits, p.maxLivenessPerDay);
        vm.prank(address(d.timelock));
        vm.expectRevert(
            abi.encodeWithSelector(
                ComputationMarket.ParamOutOfBounds.selector, "minFee", 0.1 ether, 10_000 ether, 0.001 ether
            )
        );
        d.market.setParams(_withMinFee(p, 0.001 ether));
    }

    // --------------------------------------------------- 8. junk registrations

    /// v1.0: registration needed no stake and postTask read every neuron.
    /// v1.1: registration needs minStake, and post + draw walk a fixed-depth
    /// tree: the same gas at 24 and at 524 neurons.
    function test_attack_junkRegistrations_fails() public {
        address junk = makeAddr("junk");
        vm.prank(junk);
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.BelowMinStake.selector, cfg.minStake, 0));
        d.registry.register(_peerId(junk), 1, 0, new bytes(64));

        uint256 small = _gasPostDraw(300);
        _spawn(500, cfg.minStake);
        uint256 large = _gasPostDraw(301);
        // What may differ is only how many of the r x DEPTH tree words a walk
        // finds cold (bounded whatever N is; v1.0 went 0.91M -> 6.75M gas from
        // 50 to 550 neurons). docs/BENCHMARKS.md has the --isolate figures.
        assertLe(large, small + 3 * 8 * 2 * 2_100 + 50_000, "post + draw bounded in N");
    }

    // ------------------------------------------------- 9. last-second lock

    /// v1.0: stake deposited one second before the lock ended earned 3x, and
    /// 3x outlived the lock in rewards weight. v1.1: a deposit resets the
    /// multiplier to what the remaining lock earns, and a poke after the
    /// lock ends brings the weight back to 1x.
    function test_attack_lastSecondLock_fails() public {
        address a = ops[0];
        vm.prank(a);
        d.registry.lock(cfg.maxLock);
        assertEq(d.registry.multiplierBps(a), 30_000);
        vm.warp(block.timestamp + cfg.maxLock - 1);
        vm.prank(whale);
        d.token.transfer(a, 50_000 ether);
        vm.prank(a);
        d.registry.stake(50_000 ether);
        assertEq(d.registry.multiplierBps(a), 10_000, "one second left earns 1x");
        vm.warp(block.timestamp + 2);
        d.registry.poke(a);
        assertEq(d.rewards.weightOf(a), _stake(a), "rewards weight 1x after the lock");
    }

    /// Stake below minStake earns no rewards weight and leaves the trees.
    function test_belowMinStakeEarnsNothing() public {
        address a = ops[0];
        vm.prank(a);
        d.registry.requestUnbond(STAKE - cfg.minStake + 1);
        assertEq(d.registry.effectiveStake(a), 0);
        assertEq(d.rewards.weightOf(a), 0);
        assertEq(d.registry.treeWeight(0, a), 0);
    }

    // -------------------------------------------------- 10. PeerId squatting

    /// v1.0: the first address to register a PeerId owned it. v1.1: the chain
    /// keeps no PeerId ownership (it cannot check ed25519 cheaply); it stores
    /// the binding signature, whose message names the operator, and nodes
    /// accept a neuron only with a valid one. A squatter cannot sign for the
    /// victim's key, cannot reuse the victim's signature (other operator in
    /// the message), and cannot block the victim from registering.
    function test_attack_peerIdSquatting_fails() public {
        address victim = makeAddr("victim");
        address squatter = makeAddr("squatter");
        bytes memory pid = _peerId(victim);
        vm.startPrank(whale);
        d.token.transfer(victim, cfg.minStake);
        d.token.transfer(squatter, cfg.minStake);
        vm.stopPrank();
        _toApplyPhase();
        vm.startPrank(squatter);
        d.token.approve(address(d.registry), type(uint256).max);
        d.registry.register(pid, 1, cfg.minStake, new bytes(64));
        vm.stopPrank();
        vm.startPrank(victim);
        d.token.approve(address(d.registry), type(uint256).max);
        d.registry
            .register(
                pid,
                1,
                cfg.minStake,
                hex"11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
            );
        vm.stopPrank();
        assertTrue(
            keccak256(d.registry.peerBindingMessage(victim, pid))
                != keccak256(d.registry.peerBindingMessage(squatter, pid)),
            "the signed binding names the operator"
        );
        assertEq(d.registry.neuron(victim).peerSig.length, 64);
        vm.prank(makeAddr("bad"));
        vm.expectRevert(abi.encodeWithSelector(NeuronRegistry.BadPeerSig.selector, 64, 3));
        d.registry.register(pid, 1, cfg.minStake, hex"010203");
    }

    // ------------------------------------------------------------- helpers

    function _nonMember(address[] memory c) internal view returns (address) {
        for (uint256 i = 0; i < ops.length; i++) {
            bool isMember;
            for (uint256 j = 0; j < c.length; j++) {
                if (c[j] == ops[i]) isMember = true;
            }
            if (!isMember) return ops[i];
        }
        revert("no outsider");
    }

    function _tryFinalize(bytes32 id) internal returns (bool) {
        try d.market.finalize(id) {
            return true;
        } catch {
            return false;
        }
    }

    function _stakeSum() internal view returns (uint256 s) {
        for (uint256 i = 0; i < ops.length; i++) {
            s += _stake(ops[i]);
        }
    }

    function _withMinFee(ComputationMarket.Params memory p, uint256 fee)
        internal
        pure
        returns (ComputationMarket.Params memory)
    {
        p.minFee = fee;
        return p;
    }

    function _gasPostDraw(uint256 nonce) internal returns (uint256 g) {
        _toApplyPhase();
        TaskSpec memory s = _spec(3, nonce);
        vm.prank(client);
        uint256 g0 = gasleft();
        bytes32 id = d.market.postTask(s, FEE);
        g = g0 - gasleft();
        uint256 target = d.market.getTask(id).drawBlock;
        vm.roll(target + 1);
        vm.setBlockhash(target, keccak256("x"));
        g0 = gasleft();
        d.market.draw(id);
        g += g0 - gasleft();
    }
}
