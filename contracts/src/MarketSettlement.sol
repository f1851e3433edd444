// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {NeuronRegistry} from "./NeuronRegistry.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Dissent} from "./Hal9Types.sol";
import {ComputationMarket} from "./ComputationMarket.sol";

// Basis-point denominator (ComputationMarket.BPS).
uint256 constant BPS = 10_000;

/// Quorum for a committee of r: ceil(2r/3).
function quorumOf(uint256 r) pure returns (uint256) {
    return (2 * r + 2) / 3;
}

/// Number of set bits.
function popcount(uint256 x) pure returns (uint256 c) {
    while (x != 0) {
        x &= x - 1;
        c++;
    }
}

/// The bit of `who` in `members`, or 0 when it is not a member.
function memberBit(address[] storage members, address who) view returns (uint256) {
    uint256 n = members.length;
    for (uint256 i = 0; i < n; i++) {
        if (members[i] == who) return uint256(1) << i;
    }
    return 0;
}

/// Splits a fee: (burned, to treasury incl. dust, per majority member).
function splitFee(uint256 fee, uint256 majority, uint256 burnBps, uint256 treasuryBps)
    pure
    returns (uint256 burned, uint256 toTreasury, uint256 each)
{
    burned = fee * burnBps / BPS;
    toTreasury = fee * treasuryBps / BPS;
    uint256 rest = fee - burned - toTreasury;
    each = majority == 0 ? 0 : rest / majority;
    toTreasury += rest - each * majority;
}

/// @title MarketSettlement (protocol v1.1)
/// @notice The finalize path of ComputationMarket (refunds, payouts, slashes,
/// challenge resolution), kept out of the market so that the market's code
/// fits EIP-170 (24,576 bytes). Each market creates its own in its
/// constructor and runs `finalize` by DELEGATECALL: the code works on the
/// market's storage (at the slots the market gave it), tokens and address,
/// and its events are the market's. Called any other way it reverts.
contract MarketSettlement {
    using SafeERC20 for IERC20;

    /// One storage word (the market's `escrowed`).
    struct Word {
        uint256 amount;
    }

    /// The market that created this module, the only context it runs in.
    address private immutable MARKET;
    IERC20 private immutable token;
    NeuronRegistry private immutable registry;
    address private immutable treasury;
    /// Storage slots of the market's `params`, `escrowed`, `tasks` and `livenessCount`.
    uint256 private immutable PARAMS_SLOT;
    uint256 private immutable ESCROWED_SLOT;
    uint256 private immutable TASKS_SLOT;
    uint256 private immutable LIVENESS_SLOT;

    /// `finalize` was called directly instead of by the market's DELEGATECALL.
    error NotDelegated();

    /// Created by the market, which passes its storage slots.
    constructor(
        IERC20 token_,
        NeuronRegistry registry_,
        address treasury_,
        uint256 paramsSlot,
        uint256 escrowedSlot,
        uint256 tasksSlot,
        uint256 livenessSlot
    ) {
        MARKET = msg.sender;
        token = token_;
        registry = registry_;
        treasury = treasury_;
        PARAMS_SLOT = paramsSlot;
        ESCROWED_SLOT = escrowedSlot;
        TASKS_SLOT = tasksSlot;
        LIVENESS_SLOT = livenessSlot;
    }

    /// @notice ComputationMarket.proveEquivocation, run in the market.
    function proveEquivocation(bytes32 id, Dissent calldata x, Dissent calldata y) external {
        _onlyDelegated();
        ComputationMarket.Task storage t = _tasks()[id];
        ComputationMarket.Status s = t.status;
        if (
            s == ComputationMarket.Status.None || s == ComputationMarket.Status.Requested
                || s == ComputationMarket.Status.Finalized || s == ComputationMarket.Status.Refunded
        ) {
            revert ComputationMarket.WrongStatus(id, ComputationMarket.Status.Drawn, s);
        }
        if (x.resultHash == y.resultHash && keccak256(x.outputCid) == keccak256(y.outputCid)) {
            revert ComputationMarket.NotEquivocation();
        }
        address a =
            ECDSA.recover(ComputationMarket(address(this)).resultDigest(id, x.resultHash, x.outputCid), x.signature);
        if (
            a
                != ECDSA.recover(
                    ComputationMarket(address(this)).resultDigest(id, y.resultHash, y.outputCid), y.signature
                )
        ) revert ComputationMarket.NotEquivocation();
        uint256 bit = memberBit(t.committee, a);
        bool esc;
        if (bit == 0) {
            bit = memberBit(t.escalation, a);
            esc = true;
        }
        if (bit == 0) revert ComputationMarket.NotCommitteeMember(a);
        if ((esc ? t.escEquivocatedMask : t.equivocatedMask) & bit != 0) revert ComputationMarket.NotEquivocation();
        if (esc) {
            t.escEquivocatedMask |= bit;
            t.escalationMask &= ~bit;
            t.escMinorityMask &= ~bit;
        } else {
            t.equivocatedMask |= bit;
            t.majorityMask &= ~bit;
            t.minorityMask &= ~bit;
        }
        uint256 slashed = registry.slash(a, t.rates.slashBps, address(this));
        uint256 reward = slashed / 2;
        if (reward != 0) token.safeTransfer(msg.sender, reward);
        if (slashed > reward) token.safeTransfer(treasury, slashed - reward);
        emit ComputationMarket.Equivocation(id, a, msg.sender, slashed);
    }

    /// @notice ComputationMarket.challenge, run in the market.
    function challenge(bytes32 id) external {
        _onlyDelegated();
        ComputationMarket.Task storage t = _tasks()[id];
        if (t.status != ComputationMarket.Status.Verdict) {
            revert ComputationMarket.WrongStatus(id, ComputationMarket.Status.Verdict, t.status);
        }
        if (block.timestamp > t.challengeEnd) {
            revert ComputationMarket.WindowClosed(t.challengeEnd, uint64(block.timestamp));
        }
        if (!registry.isStaked(msg.sender)) revert ComputationMarket.NotStaked(msg.sender);
        ComputationMarket.Params memory p = _params();
        uint256 bond = t.fee * p.challengeBondBps / BPS;
        if (bond < p.minChallengeBond) bond = p.minChallengeBond;
        t.status = ComputationMarket.Status.Challenged;
        t.challenger = msg.sender;
        t.bond = bond;
        t.escalationEnd =
            uint64(block.timestamp) + p.escalationPeriod + 2 * (t.rates.commitPeriod + t.rates.revealPeriod);
        t.drawBlock = uint64(registry.targetBlock(block.number + t.rates.drawDelay));
        _escrow().amount += bond;
        token.safeTransferFrom(msg.sender, address(this), bond);
        emit ComputationMarket.Challenged(id, msg.sender, bond, t.drawBlock);
    }

    /// @notice Finalizes task `id` of the calling market if it is finalizable
    /// now; returns whether it was. Only runs in the market (DELEGATECALL).
    function finalize(bytes32 id) external returns (bool) {
        _onlyDelegated();
        ComputationMarket.Task storage t = _tasks()[id];
        ComputationMarket.Status s = t.status;
        if (
            (s == ComputationMarket.Status.Requested || s == ComputationMarket.Status.Drawn)
                && block.timestamp > t.deadline
        ) {
            t.status = ComputationMarket.Status.Refunded;
            _escrow().amount -= t.fee;
            _refund(id, t);
            _release(t.committee, t.reserve);
            return true;
        }
        if (s == ComputationMarket.Status.Verdict && block.timestamp > t.challengeEnd) {
            t.status = ComputationMarket.Status.Finalized;
            _escrow().amount -= t.fee;
            _settle(id, t);
            _release(t.committee, t.reserve);
            return true;
        }
        if (
            (s == ComputationMarket.Status.Challenged && block.timestamp > t.escalationEnd)
                || (s == ComputationMarket.Status.Escalating
                    && (t.escalationMask != 0 || block.timestamp > t.escalationEnd))
        ) {
            if (s == ComputationMarket.Status.Escalating && t.escalationMask != 0 && block.timestamp <= t.revealEnd) {
                return false;
            }
            t.status = ComputationMarket.Status.Finalized;
            _escrow().amount -= t.fee + t.bond;
            _resolveChallenge(id, t);
            _release(t.committee, t.reserve);
            _release(t.escalation, t.reserve);
            return true;
        }
        return false;
    }

    /// Refund of a task without verdict. When a quorum committed (the
    /// committee worked), servedBps of the fee goes to the committers (P8);
    /// otherwise abandonBps goes to the treasury (abandoning costs).
    function _refund(bytes32 id, ComputationMarket.Task storage t) private {
        uint256 fee = t.fee;
        uint256 c = popcount(t.committedMask & ~t.equivocatedMask);
        uint256 kept;
        if (t.committee.length != 0 && c >= quorumOf(t.committee.length)) {
            kept = fee * t.rates.servedBps / BPS;
            uint256 each = kept / c;
            uint256 paid;
            for (uint256 i = 0; i < t.committee.length && each != 0; i++) {
                if ((t.committedMask & ~t.equivocatedMask) & (uint256(1) << i) != 0) {
                    token.safeTransfer(t.committee[i], each);
                    paid += each;
                }
            }
            if (kept > paid) token.safeTransfer(treasury, kept - paid);
        } else {
            kept = fee * t.rates.abandonBps / BPS;
            if (kept != 0) token.safeTransfer(treasury, kept);
        }
        token.safeTransfer(t.submitter, fee - kept);
        emit ComputationMarket.Refunded(id, t.submitter, fee - kept);
    }

    function _resolveChallenge(bytes32 id, ComputationMarket.Task storage t) private {
        address challenger = t.challenger;
        uint256 bond = t.bond;
        if (t.escalationMask == 0) {
            // P6: no escalation quorum never confirms the verdict. The task
            // fails: full refund to the submitter, bond back to the challenger;
            // the original committee is neither paid nor slashed; silent and
            // withholding escalation members pay (the verdict proves the input
            // was available).
            if (t.escalation.length != 0) _punishEscalation(t);
            token.safeTransfer(t.submitter, t.fee);
            token.safeTransfer(challenger, bond);
            emit ComputationMarket.Refunded(id, t.submitter, t.fee);
            emit ComputationMarket.ChallengeSettled(id, challenger, false, bond);
            return;
        }
        _punishEscalation(t);
        if (t.escalationResult == t.resultHash) {
            // The challenger was wrong: its bond pays the escalation majority.
            _settle(id, t);
            _payMask(t.escalation, t.escalationMask, bond);
            emit ComputationMarket.ChallengeSettled(id, challenger, false, 0);
        } else {
            _challengerWins(id, t);
        }
    }

    /// The challenger was right: the original majority is slashed, the
    /// challenger gets its bond plus challengerRewardBps of the slash, the
    /// escalation majority is paid the fee.
    function _challengerWins(bytes32 id, ComputationMarket.Task storage t) private {
        uint256 slashed;
        for (uint256 i = 0; i < t.committee.length; i++) {
            if (t.majorityMask & (uint256(1) << i) != 0) {
                slashed += registry.slash(t.committee[i], t.rates.slashBps, address(this));
            }
        }
        uint256 reward = slashed * t.rates.challengerRewardBps / BPS;
        if (slashed > reward) token.safeTransfer(treasury, slashed - reward);
        token.safeTransfer(t.challenger, t.bond + reward);
        t.resultHash = t.escalationResult;
        (uint256 burned, uint256 toTreasury, uint256 each) =
            splitFee(t.fee, popcount(t.escalationMask), t.rates.burnBps, t.rates.treasuryBps);
        if (burned != 0) ERC20Burnable(address(token)).burn(burned);
        if (toTreasury != 0) token.safeTransfer(treasury, toTreasury);
        for (uint256 i = 0; i < t.escalation.length && each != 0; i++) {
            if (t.escalationMask & (uint256(1) << i) != 0) token.safeTransfer(t.escalation[i], each);
        }
        emit ComputationMarket.Finalized(id, t.resultHash, burned, toTreasury, each, slashed);
        emit ComputationMarket.ChallengeSettled(id, t.challenger, true, t.bond + reward);
    }

    /// Slashes escalation members that committed and did not open to the
    /// escalation verdict (slashBps) and those that never committed (liveness).
    function _punishEscalation(ComputationMarket.Task storage t) private {
        uint256 n = t.escalation.length;
        for (uint256 i = 0; i < n; i++) {
            uint256 bit = uint256(1) << i;
            if ((t.escalationMask | t.escEquivocatedMask) & bit != 0) continue;
            address m = t.escalation[i];
            if (t.escCommittedMask & bit != 0) registry.slash(m, t.rates.slashBps, treasury);
            else _livenessSlash(m, t.rates.livenessSlashBps);
        }
    }

    /// Splits `amount` equally over `members` in `mask`; dust to the treasury.
    function _payMask(address[] storage members, uint256 mask, uint256 amount) private {
        uint256 c = popcount(mask);
        uint256 each = c == 0 ? 0 : amount / c;
        uint256 paid;
        for (uint256 i = 0; i < members.length && each != 0; i++) {
            if (mask & (uint256(1) << i) != 0) {
                token.safeTransfer(members[i], each);
                paid += each;
            }
        }
        if (amount > paid) token.safeTransfer(treasury, amount - paid);
    }

    /// Pays the fee to `mask` and slashes the rest of the committee: openers
    /// of another result and committers that never opened slashBps (P5: a
    /// loser cannot escape by withholding); members that never committed
    /// livenessSlashBps, only when a quorum committed (P7) and within the
    /// per-day cap; equivocators were slashed already and get nothing.
    function _settle(bytes32 id, ComputationMarket.Task storage t) private {
        address[] storage members = t.committee;
        uint256 mask = t.majorityMask;
        (uint256 burned, uint256 toTreasury, uint256 each) =
            splitFee(t.fee, popcount(mask), t.rates.burnBps, t.rates.treasuryBps);
        if (burned != 0) ERC20Burnable(address(token)).burn(burned);
        if (toTreasury != 0) token.safeTransfer(treasury, toTreasury);
        uint256 slashed = _punishCommittee(t, members, mask, each);
        emit ComputationMarket.Finalized(id, t.resultHash, burned, toTreasury, each, slashed);
    }

    function _punishCommittee(ComputationMarket.Task storage t, address[] storage members, uint256 mask, uint256 each)
        private
        returns (uint256 slashed)
    {
        uint256 comm = t.committedMask;
        bool available = popcount(comm) >= quorumOf(members.length);
        for (uint256 i = 0; i < members.length; i++) {
            uint256 bit = uint256(1) << i;
            if (t.equivocatedMask & bit != 0) continue;
            if (mask & bit != 0) {
                if (each != 0) token.safeTransfer(members[i], each);
            } else if (comm & bit != 0) {
                slashed += registry.slash(members[i], t.rates.slashBps, treasury);
            } else if (available) {
                slashed += _livenessSlash(members[i], t.rates.livenessSlashBps);
            }
        }
    }

    /// Liveness slash within maxLivenessPerDay per neuron.
    function _livenessSlash(address m, uint256 bps) private returns (uint256) {
        if (bps == 0) return 0;
        uint256 day = block.timestamp / 1 days;
        uint256 v = _liveness()[m];
        uint256 count = v >> 128 == day ? uint128(v) : 0;
        if (count >= _params().maxLivenessPerDay) return 0;
        _liveness()[m] = (day << 128) | (count + 1);
        return registry.slash(m, bps, treasury);
    }

    function _release(address[] storage members, uint256 reserve) private {
        uint256 n = members.length;
        for (uint256 i = 0; i < n; i++) {
            registry.noteReleased(members[i], reserve);
        }
    }

    function _onlyDelegated() private view {
        if (address(this) != MARKET) revert NotDelegated();
    }

    function _params() private view returns (ComputationMarket.Params storage p) {
        uint256 s = PARAMS_SLOT;
        assembly ("memory-safe") {
            p.slot := s
        }
    }

    function _escrow() private view returns (Word storage w) {
        uint256 s = ESCROWED_SLOT;
        assembly ("memory-safe") {
            w.slot := s
        }
    }

    function _tasks() private view returns (mapping(bytes32 => ComputationMarket.Task) storage m) {
        uint256 s = TASKS_SLOT;
        assembly ("memory-safe") {
            m.slot := s
        }
    }

    function _liveness() private view returns (mapping(address => uint256) storage m) {
        uint256 s = LIVENESS_SLOT;
        assembly ("memory-safe") {
            m.slot := s
        }
    }
}
