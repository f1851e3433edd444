// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {TaskSpec, Reveal, Dissent} from "./Hal9Types.sol";
import {NeuronRegistry} from "./NeuronRegistry.sol";
import {MarketSettlement, quorumOf, popcount, splitFee, memberBit} from "./MarketSettlement.sol";

/// @title ComputationMarket (protocol v1.1)
/// @notice Escrows task fees and runs the v1.1 task flow (docs/protocol-v1.1.md):
/// postTask records the request at block N; a permissionless draw uses
/// blockhash of a draw-phase block >= N + drawDelay (randomness that did not
/// exist at the request) over the registry's sortition trees, which cannot
/// change in a draw phase; members commit keccak(taskId, result, cidHash,
/// salt, member) on chain before commitEnd; the verdict opens a quorum of
/// commitments; a challenge draws a fresh escalation committee the same way;
/// an escalation without quorum refunds the task instead of confirming it.
/// Rates are fixed per task at postTask.
contract ComputationMarket is EIP712, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// EIP-712 type of a result a member signs when it shares it off chain;
    /// two such signatures over different results prove equivocation.
    bytes32 public constant RESULT_TYPEHASH = keccak256("Result(bytes32 taskId,bytes32 resultHash,bytes outputCid)");
    /// Basis-point denominator.
    uint256 public constant BPS = 10_000;
    /// Replication can never be configured below this.
    uint16 public constant MIN_REPLICAS_FLOOR = 3;
    /// Replication cap (the escalation committee 2r+1 must fit a 256-bit mask and a block).
    uint16 public constant MAX_REPLICAS_CAP = 31;
    /// Caps on the rates the governor may set.
    uint16 public constant MAX_BURN_BPS = 1_000;
    /// Cap on treasuryBps.
    uint16 public constant MAX_TREASURY_BPS = 1_000;
    /// Bounds of slashBps: a lie must cost something, and never everything.
    uint16 public constant MIN_SLASH_BPS = 100;
    /// Cap on slashBps.
    uint16 public constant MAX_SLASH_BPS = 5_000;
    /// Cap on livenessSlashBps.
    uint16 public constant MAX_LIVENESS_SLASH_BPS = 500;
    /// Cap on challengerRewardBps (the rest of a slash goes to the treasury,
    /// so a self-challenge never recovers the whole slash of its own members).
    uint16 public constant MAX_CHALLENGER_REWARD_BPS = 5_000;
    /// Bounds of challengeBondBps.
    uint16 public constant MIN_CHALLENGE_BOND_BPS = 1_000;
    /// Cap on challengeBondBps.
    uint16 public constant MAX_CHALLENGE_BOND_BPS = 10_000;
    /// Cap on abandonBps and servedBps.
    uint16 public constant MAX_KEEP_BPS = 5_000;
    /// Bounds of drawDelay (blocks between request and randomness).
    uint16 public constant MIN_DRAW_DELAY = 2;
    /// Upper bound of drawDelay.
    uint16 public constant MAX_DRAW_DELAY = 64;
    /// Bounds of the commit and reveal periods.
    uint64 public constant MIN_PHASE = 30 seconds;
    /// Upper bound of the commit and reveal periods.
    uint64 public constant MAX_PHASE = 1 days;
    /// Bounds of the challenge window.
    uint64 public constant MIN_CHALLENGE_WINDOW = 10 minutes;
    /// Upper bound of the challenge window.
    uint64 public constant MAX_CHALLENGE_WINDOW = 30 days;
    /// Bounds of the escalation period.
    uint64 public constant MIN_ESCALATION_PERIOD = 10 minutes;
    /// Upper bound of the escalation period.
    uint64 public constant MAX_ESCALATION_PERIOD = 30 days;
    /// Bound of maxTaskDuration.
    uint64 public constant MAX_TASK_DURATION_CAP = 30 days;
    /// Bounds of minFee: a liveness slash must never exceed what tasks cost to post.
    uint256 public constant MIN_MIN_FEE = 0.1 ether;
    /// Upper bound of minFee.
    uint256 public constant MAX_MIN_FEE = 10_000 ether;
    /// Bounds of minChallengeBond.
    uint256 public constant MIN_MIN_BOND = 1 ether;
    /// Upper bound of minChallengeBond.
    uint256 public constant MAX_MIN_BOND = 100_000 ether;
    /// Bounds of maxLivenessPerDay.
    uint16 public constant MAX_LIVENESS_PER_DAY_CAP = 100;
    /// Longest CID accepted (binary form), in bytes.
    uint256 public constant MAX_CID_LEN = 128;
    /// Most entries one batch call takes.
    uint256 public constant MAX_BATCH = 64;

    /// Protocol parameters, owned by the timelock.
    struct Params {
        uint16 minReplicas;
        uint16 maxReplicas;
        uint16 burnBps;
        uint16 treasuryBps;
        uint16 slashBps;
        uint16 livenessSlashBps;
        uint16 challengerRewardBps;
        uint16 challengeBondBps;
        uint16 abandonBps;
        uint16 servedBps;
        uint16 maxLivenessPerDay;
        uint16 drawDelay;
        uint64 commitPeriod;
        uint64 revealPeriod;
        uint64 challengeWindow;
        uint64 escalationPeriod;
        uint64 maxTaskDuration;
        uint256 minFee;
        uint256 minChallengeBond;
    }

    /// Where a task stands.
    enum Status {
        None,
        Requested,
        Drawn,
        Verdict,
        Challenged,
        Escalating,
        Finalized,
        Refunded
    }

    /// Rates fixed at postTask.
    struct Rates {
        uint16 burnBps;
        uint16 treasuryBps;
        uint16 slashBps;
        uint16 livenessSlashBps;
        uint16 challengerRewardBps;
        uint16 abandonBps;
        uint16 servedBps;
        uint16 drawDelay;
        uint64 commitPeriod;
        uint64 revealPeriod;
    }

    /// One task. Masks are bitsets over committee (or escalation) indices.
    struct Task {
        address submitter;
        Status status;
        uint16 replicas;
        uint64 capabilities;
        uint64 deadline;
        uint64 drawBlock;
        uint64 commitEnd;
        uint64 revealEnd;
        uint64 challengeEnd;
        uint64 escalationEnd;
        Rates rates;
        uint256 fee;
        uint256 reserve;
        bytes32 resultHash;
        bytes32 outputCidHash;
        uint256 committedMask;
        uint256 majorityMask;
        uint256 minorityMask;
        uint256 equivocatedMask;
        address challenger;
        uint256 bond;
        bytes32 escalationResult;
        uint256 escCommittedMask;
        uint256 escalationMask;
        uint256 escMinorityMask;
        uint256 escEquivocatedMask;
        address[] committee;
        address[] escalation;
    }

    /// One verdict of a submitVerdicts batch: the arguments of submitVerdict.
    struct VerdictInput {
        bytes32 taskId;
        bytes32 resultHash;
        bytes outputCid;
        Reveal[] reveals;
    }

    /// The fee and stake token; must be burnable.
    IERC20 public immutable token;
    /// Neuron registry (sortition trees, slashing).
    NeuronRegistry public immutable registry;
    /// Receives the treasury share, dust and slashed stake (the timelock).
    address public immutable treasury;
    /// Runs the finalize path by DELEGATECALL (created by the constructor;
    /// a separate contract so that the market fits EIP-170).
    MarketSettlement private immutable settlement;

    /// Current parameters (read them with getParams).
    Params internal params;
    /// Fees and bonds held for open tasks.
    uint256 public escrowed;

    mapping(bytes32 => Task) private tasks;
    mapping(bytes32 => mapping(address => bytes32)) private commits;
    /// Liveness slashes per neuron per day: day << 16 | count.
    mapping(address => uint256) private livenessCount;

    event TaskPosted(bytes32 indexed taskId, address indexed submitter, uint256 fee, uint64 drawBlock, TaskSpec spec);
    event DrawRetargeted(bytes32 indexed taskId, uint64 drawBlock);
    event CommitteeDrawn(bytes32 indexed taskId, address[] committee, uint64 commitEnd, uint64 revealEnd);
    event Committed(bytes32 indexed taskId, address indexed member);
    event VerdictSubmitted(
        bytes32 indexed taskId, bytes32 resultHash, bytes outputCid, uint256 majorityMask, uint256 minorityMask
    );
    event RevealsAdded(bytes32 indexed taskId, uint256 majorityMask, uint256 minorityMask);
    event Challenged(bytes32 indexed taskId, address indexed challenger, uint256 bond, uint64 drawBlock);
    event EscalationDrawn(bytes32 indexed taskId, address[] escalation, uint64 commitEnd, uint64 revealEnd);
    event EscalationVerdict(bytes32 indexed taskId, bytes32 resultHash, bytes outputCid, uint256 mask, bool upheld);
    event Equivocation(bytes32 indexed taskId, address indexed member, address indexed prover, uint256 slashed);
    event Finalized(
        bytes32 indexed taskId,
        bytes32 resultHash,
        uint256 burned,
        uint256 toTreasury,
        uint256 perMember,
        uint256 slashed
    );
    event ChallengeSettled(bytes32 indexed taskId, address indexed challenger, bool challengerWon, uint256 payout);
    event Refunded(bytes32 indexed taskId, address indexed submitter, uint256 fee);
    event ParamsUpdated(Params params);
    event VerdictSkipped(bytes32 indexed taskId, bytes reason);
    event FinalizeSkipped(bytes32 indexed taskId, bytes reason);

    error WrongSubmitter(address expected, address found);
    error ReplicasOutOfRange(uint16 min, uint16 max, uint16 found);
    error BadDeadline(uint64 min, uint64 max, uint64 found);
    error FeeTooLow(uint256 min, uint256 found);
    error BadCid(uint256 maxLen, uint256 foundLen);
    error TaskExists(bytes32 taskId);
    error WrongStatus(bytes32 taskId, Status expected, Status found);
    error WindowClosed(uint64 end, uint64 now_);
    error TooEarly(uint256 notBefore, uint256 now_);
    error NotCommitteeMember(address signer);
    error DuplicateMember(uint256 index);
    error BadReveal(uint256 index);
    error NoQuorum(uint256 needed, uint256 found);
    error NotStaked(address caller);
    error NotFinalizable(bytes32 taskId, Status status);
    error ParamOutOfBounds(string name, uint256 min, uint256 max, uint256 found);
    error BatchTooLarge(uint256 max, uint256 found);
    error LengthMismatch(uint256 a, uint256 b);
    error NotEquivocation();
    error Infeasible(uint256 needed, uint256 available);
    error TooManyCapabilities(uint256 max, uint256 found);
    /// ECDSA's errors: proveEquivocation (run in MarketSettlement) reverts
    /// with them on a malformed signature.
    error ECDSAInvalidSignature();
    /// See ECDSAInvalidSignature.
    error ECDSAInvalidSignatureLength(uint256 length);
    /// See ECDSAInvalidSignature.
    error ECDSAInvalidSignatureS(bytes32 s);

    /// @param owner_ the governance timelock.
    /// @param treasury_ receives the treasury share (the timelock).
    constructor(IERC20 token_, NeuronRegistry registry_, address treasury_, address owner_, Params memory p)
        EIP712("hal9", "1")
        Ownable(owner_)
    {
        token = token_;
        registry = registry_;
        treasury = treasury_;
        uint256 paramsSlot;
        uint256 escrowedSlot;
        uint256 tasksSlot;
        uint256 livenessSlot;
        assembly ("memory-safe") {
            paramsSlot := params.slot
            escrowedSlot := escrowed.slot
            tasksSlot := tasks.slot
            livenessSlot := livenessCount.slot
        }
        settlement =
            new MarketSettlement(token_, registry_, treasury_, paramsSlot, escrowedSlot, tasksSlot, livenessSlot);
        _setParams(p, false);
    }

    // ------------------------------------------------------------------- views

    /// @notice Task id of a spec: keccak256(abi.encode(spec)).
    function taskId(TaskSpec calldata spec) public pure returns (bytes32) {
        return keccak256(abi.encode(spec));
    }

    /// @notice Quorum for a committee of r: ceil(2r/3).
    function quorum(uint256 r) public pure returns (uint256) {
        return quorumOf(r);
    }

    /// @notice The commitment a member stores with commitMany.
    function commitmentOf(bytes32 id, bytes32 resultHash, bytes32 outputCidHash, bytes32 salt, address member)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(id, resultHash, outputCidHash, salt, member));
    }

    /// @notice The commitment stored for `member` on task `id` (0 if none).
    function committed(bytes32 id, address member) external view returns (bytes32) {
        return commits[id][member];
    }

    /// @notice The EIP-712 digest a member signs when sharing a result off chain.
    function resultDigest(bytes32 id, bytes32 resultHash, bytes calldata outputCid) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(RESULT_TYPEHASH, id, resultHash, keccak256(outputCid))));
    }

    /// @notice The EIP-712 domain separator (name "hal9", version "1", chain id, this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Seconds a settled verdict can be challenged.
    function challengeWindow() external view returns (uint64) {
        return params.challengeWindow;
    }

    /// @notice The current parameters as one struct.
    function getParams() external view returns (Params memory) {
        return params;
    }

    /// @notice The whole task record.
    function getTask(bytes32 id) external view returns (Task memory) {
        return tasks[id];
    }

    /// @notice The committee drawn for a task (empty before the draw).
    function committeeOf(bytes32 id) external view returns (address[] memory) {
        return tasks[id].committee;
    }

    /// @notice The escalation committee of a task (empty before its draw).
    function escalationOf(bytes32 id) external view returns (address[] memory) {
        return tasks[id].escalation;
    }

    /// @notice Status of a task.
    function statusOf(bytes32 id) external view returns (Status) {
        return tasks[id].status;
    }

    /// @notice Splits a fee with the current rates: (burned, to treasury incl. dust, per majority member).
    function feeSplit(uint256 fee, uint256 majority)
        public
        view
        returns (uint256 burned, uint256 toTreasury, uint256 each)
    {
        return splitFee(fee, majority, params.burnBps, params.treasuryBps);
    }

    // ------------------------------------------------------------------ client

    /// @notice Escrows `fee` and records the request; the committee is drawn
    /// later by draw(id) from randomness of a block after this one.
    function postTask(TaskSpec calldata spec, uint256 fee) external nonReentrant returns (bytes32 id) {
        Params memory p = params;
        if (spec.submitter != msg.sender) revert WrongSubmitter(msg.sender, spec.submitter);
        if (spec.replicas < p.minReplicas || spec.replicas > p.maxReplicas) {
            revert ReplicasOutOfRange(p.minReplicas, p.maxReplicas, spec.replicas);
        }
        // P8: the deadline leaves room for the draw, a full commit and reveal.
        uint64 minDeadline = uint64(block.timestamp) + 2 * (p.commitPeriod + p.revealPeriod);
        uint64 maxDeadline = uint64(block.timestamp) + p.maxTaskDuration;
        if (spec.deadline < minDeadline || spec.deadline > maxDeadline) {
            revert BadDeadline(minDeadline, maxDeadline, spec.deadline);
        }
        if (fee < p.minFee) revert FeeTooLow(p.minFee, fee);
        _checkSpec(spec);
        id = keccak256(abi.encode(spec));
        Task storage t = tasks[id];
        if (t.status != Status.None) revert TaskExists(id);

        t.submitter = msg.sender;
        t.status = Status.Requested;
        t.replicas = spec.replicas;
        t.capabilities = spec.capabilities;
        t.deadline = spec.deadline;
        t.fee = fee;
        t.rates = Rates({
            burnBps: p.burnBps,
            treasuryBps: p.treasuryBps,
            slashBps: p.slashBps,
            livenessSlashBps: p.livenessSlashBps,
            challengerRewardBps: p.challengerRewardBps,
            abandonBps: p.abandonBps,
            servedBps: p.servedBps,
            drawDelay: p.drawDelay,
            commitPeriod: p.commitPeriod,
            revealPeriod: p.revealPeriod
        });
        t.reserve = registry.minStake() * p.slashBps / BPS;
        t.drawBlock = uint64(registry.targetBlock(block.number + p.drawDelay));
        escrowed += fee;
        token.safeTransferFrom(msg.sender, address(this), fee);
        emit TaskPosted(id, msg.sender, fee, t.drawBlock, spec);
    }

    /// @notice Draws the committee (status Requested) or the escalation
    /// committee (status Challenged) from blockhash(drawBlock). Anyone may
    /// call it after drawBlock; the result is the same for every caller. When
    /// the hash is gone (256 blocks) or the epoch of drawBlock ended (the trees
    /// may have changed since), the draw is re-targeted to a later block
    /// instead. Returns whether members were drawn.
    function draw(bytes32 id) external nonReentrant returns (bool) {
        Task storage t = tasks[id];
        Status s = t.status;
        if (s != Status.Requested && s != Status.Challenged) revert WrongStatus(id, Status.Requested, s);
        uint256 target = t.drawBlock;
        if (block.number <= target) revert TooEarly(target + 1, block.number);
        bytes32 bh = blockhash(target);
        if (bh == bytes32(0) || registry.epochOf(block.number) != registry.epochOf(target)) {
            t.drawBlock = uint64(registry.targetBlock(block.number + t.rates.drawDelay));
            emit DrawRetargeted(id, t.drawBlock);
            return false;
        }
        uint64 commitEnd = uint64(block.timestamp) + t.rates.commitPeriod;
        uint64 revealEnd = commitEnd + t.rates.revealPeriod;
        if (s == Status.Requested) {
            address[] memory c =
                registry.drawMembers(keccak256(abi.encodePacked(bh, id)), t.replicas, t.capabilities, new address[](0));
            if (c.length == 0 || revealEnd > t.deadline) return false; // finalize refunds after the deadline
            t.committee = c;
            t.status = Status.Drawn;
            t.commitEnd = commitEnd;
            t.revealEnd = revealEnd;
            _assign(c, t.reserve);
            emit CommitteeDrawn(id, c, commitEnd, revealEnd);
        } else {
            address[] memory ex = new address[](t.committee.length + 1);
            for (uint256 i = 0; i < t.committee.length; i++) {
                ex[i] = t.committee[i];
            }
            ex[t.committee.length] = t.challenger;
            address[] memory e = registry.drawMembers(
                keccak256(abi.encodePacked(bh, id, uint256(1))), 2 * uint256(t.replicas) + 1, t.capabilities, ex
            );
            if (e.length == 0 || revealEnd > t.escalationEnd) return false; // no quorum: refund at escalationEnd
            t.escalation = e;
            t.status = Status.Escalating;
            t.commitEnd = commitEnd;
            t.revealEnd = revealEnd;
            _assign(e, t.reserve);
            emit EscalationDrawn(id, e, commitEnd, revealEnd);
        }
        return true;
    }

    // --------------------------------------------------------------- committee

    /// @notice Stores msg.sender's commitments for several tasks (committee or
    /// escalation) before their commit phase closes; one per task and member.
    function commitMany(bytes32[] calldata ids, bytes32[] calldata commitments) external {
        uint256 n = ids.length;
        if (n != commitments.length) revert LengthMismatch(n, commitments.length);
        if (n > MAX_BATCH) revert BatchTooLarge(MAX_BATCH, n);
        for (uint256 i = 0; i < n; i++) {
            bytes32 id = ids[i];
            Task storage t = tasks[id];
            bool esc = t.status == Status.Escalating;
            if (!esc && t.status != Status.Drawn) revert WrongStatus(id, Status.Drawn, t.status);
            if (block.timestamp > t.commitEnd) revert WindowClosed(t.commitEnd, uint64(block.timestamp));
            uint256 bit = memberBit(esc ? t.escalation : t.committee, msg.sender);
            if (bit == 0) revert NotCommitteeMember(msg.sender);
            if (commits[id][msg.sender] != bytes32(0) || commitments[i] == bytes32(0)) revert DuplicateMember(bit);
            commits[id][msg.sender] = commitments[i];
            if (esc) t.escCommittedMask |= bit;
            else t.committedMask |= bit;
            emit Committed(id, msg.sender);
        }
    }

    /// @notice Records the verdict: after the commit phase and before revealEnd,
    /// reveals opening a quorum of stored commitments to (resultHash, outputCid);
    /// reveals of other results mark their members as minority.
    function submitVerdict(bytes32 id, bytes32 resultHash, bytes calldata outputCid, Reveal[] calldata reveals)
        external
        nonReentrant
    {
        bytes memory err = _submitVerdict(id, resultHash, outputCid, reveals);
        if (err.length != 0) _revertWith(err);
    }

    /// @notice Records several verdicts, each with the checks of submitVerdict;
    /// a failing entry is skipped and reported by VerdictSkipped.
    function submitVerdicts(VerdictInput[] calldata verdicts) external nonReentrant returns (uint256 settled) {
        uint256 n = verdicts.length;
        if (n > MAX_BATCH) revert BatchTooLarge(MAX_BATCH, n);
        for (uint256 i = 0; i < n; i++) {
            VerdictInput calldata v = verdicts[i];
            bytes memory err = _submitVerdict(v.taskId, v.resultHash, v.outputCid, v.reveals);
            if (err.length == 0) settled++;
            else emit VerdictSkipped(v.taskId, err);
        }
    }

    /// @notice Anyone adds reveals of committee members during the challenge
    /// window: an opening of the verdict joins the majority, any other opening
    /// joins the minority. Only stored (timely) commitments can be opened.
    function addReveals(bytes32 id, Reveal[] calldata reveals) external nonReentrant {
        Task storage t = tasks[id];
        if (t.status != Status.Verdict) revert WrongStatus(id, Status.Verdict, t.status);
        if (block.timestamp > t.challengeEnd) revert WindowClosed(t.challengeEnd, uint64(block.timestamp));
        (uint256 maj, uint256 min, bytes memory err) =
            _open(id, t.committee, t.resultHash, t.outputCidHash, reveals, t.majorityMask | t.minorityMask);
        if (err.length != 0) _revertWith(err);
        t.majorityMask |= maj & ~t.equivocatedMask;
        t.minorityMask |= min & ~t.equivocatedMask;
        emit RevealsAdded(id, t.majorityMask, t.minorityMask);
    }

    /// @notice Anyone who shows two EIP-712 Result signatures by one member of
    /// task `id` over different results slashes it slashBps (half to the
    /// prover); the member is paid nothing for the task. Until finalize.
    /// Each Dissent is one signed Result (resultHash, outputCid, signature).
    function proveEquivocation(bytes32 id, Dissent calldata x, Dissent calldata y) external nonReentrant {
        (id, x, y); // forwarded as msg.data
        _delegate();
    }

    // --------------------------------------------------------------- challenge

    /// @notice Disputes a verdict during its challenge window, posting a bond;
    /// the escalation committee (2r+1 fresh neurons) is drawn later by draw(id).
    function challenge(bytes32 id) external nonReentrant {
        id; // forwarded as msg.data
        _delegate();
    }

    /// @notice Records the escalation verdict: reveals opening a quorum of the
    /// escalation committee's commitments, after its commit phase.
    function submitEscalationVerdict(
        bytes32 id,
        bytes32 resultHash,
        bytes calldata outputCid,
        Reveal[] calldata reveals
    ) external nonReentrant {
        Task storage t = tasks[id];
        if (t.status != Status.Escalating) revert WrongStatus(id, Status.Escalating, t.status);
        if (t.escalationMask != 0) revert WrongStatus(id, Status.Escalating, Status.Escalating);
        if (block.timestamp <= t.commitEnd) revert TooEarly(t.commitEnd + 1, block.timestamp);
        if (block.timestamp > t.revealEnd) revert WindowClosed(t.revealEnd, uint64(block.timestamp));
        _checkCid(outputCid, false);
        (uint256 maj, uint256 min, bytes memory err) =
            _open(id, t.escalation, resultHash, keccak256(outputCid), reveals, 0);
        if (err.length != 0) _revertWith(err);
        maj &= ~t.escEquivocatedMask;
        uint256 need = quorum(t.escalation.length);
        if (popcount(maj) < need) revert NoQuorum(need, popcount(maj));
        t.escalationResult = resultHash;
        t.escalationMask = maj;
        t.escMinorityMask = min & ~t.escEquivocatedMask;
        bool upheld = resultHash == t.resultHash;
        if (!upheld) t.outputCidHash = keccak256(outputCid);
        emit EscalationVerdict(id, resultHash, outputCid, maj, upheld);
    }

    // ---------------------------------------------------------------- finalize

    /// @notice Settles a task: pays the verdict after its challenge window,
    /// resolves a challenge, or refunds a task without verdict by its deadline.
    function finalize(bytes32 id) external nonReentrant {
        if (!_finalize(id)) revert NotFinalizable(id, tasks[id].status);
    }

    /// @notice Finalizes several tasks; one not finalizable is skipped and reported.
    function finalizeMany(bytes32[] calldata ids) external nonReentrant returns (uint256 finalized) {
        uint256 n = ids.length;
        if (n > MAX_BATCH) revert BatchTooLarge(MAX_BATCH, n);
        for (uint256 i = 0; i < n; i++) {
            bytes32 id = ids[i];
            if (_finalize(id)) finalized++;
            else emit FinalizeSkipped(id, abi.encodeWithSelector(NotFinalizable.selector, id, tasks[id].status));
        }
    }

    // -------------------------------------------------------------- governance

    /// @notice Replaces all parameters; reverts when one breaks its fixed bound.
    /// Tasks already posted keep the rates fixed at their postTask.
    function setParams(Params calldata p) external onlyOwner {
        _setParams(p, true);
    }

    // ---------------------------------------------------------------- internal

    /// Capability count, CIDs and escalation feasibility of a spec.
    function _checkSpec(TaskSpec calldata spec) private view {
        uint256 bits;
        for (uint64 x = spec.capabilities; x != 0; x &= x - 1) {
            bits++;
        }
        uint256 maxBits = registry.MAX_CAP_BITS();
        if (bits > maxBits) revert TooManyCapabilities(maxBits, bits);
        _checkCid(spec.programCid, false);
        _checkCid(spec.inputCid, true);
        // Escalation feasibility: committee r + escalation 2r+1 + a challenger.
        (uint256 count,) = registry.treeStats(registry.treeFor(spec.capabilities));
        uint256 need = 3 * uint256(spec.replicas) + 2;
        if (count < need) revert Infeasible(need, count);
    }

    function _submitVerdict(bytes32 id, bytes32 resultHash, bytes calldata outputCid, Reveal[] calldata reveals)
        private
        returns (bytes memory err)
    {
        Task storage t = tasks[id];
        if (t.status != Status.Drawn) {
            return abi.encodeWithSelector(WrongStatus.selector, id, Status.Drawn, t.status);
        }
        if (block.timestamp <= t.commitEnd) {
            return abi.encodeWithSelector(TooEarly.selector, uint256(t.commitEnd) + 1, block.timestamp);
        }
        if (block.timestamp > t.revealEnd) {
            return abi.encodeWithSelector(WindowClosed.selector, t.revealEnd, uint64(block.timestamp));
        }
        err = _cidError(outputCid, false);
        if (err.length != 0) return err;
        bytes32 cidHash = keccak256(outputCid);
        uint256 maj;
        uint256 min;
        (maj, min, err) = _open(id, t.committee, resultHash, cidHash, reveals, 0);
        if (err.length != 0) return err;
        maj &= ~t.equivocatedMask;
        min &= ~t.equivocatedMask;
        uint256 need = quorum(t.committee.length);
        uint256 found = popcount(maj);
        if (found < need) return abi.encodeWithSelector(NoQuorum.selector, need, found);
        t.status = Status.Verdict;
        t.resultHash = resultHash;
        t.outputCidHash = cidHash;
        t.majorityMask = maj;
        t.minorityMask = min;
        t.challengeEnd = uint64(block.timestamp) + params.challengeWindow;
        emit VerdictSubmitted(id, resultHash, outputCid, maj, min);
    }

    /// Opens reveals against stored commitments: members whose opening is
    /// (resultHash, cidHash) go to `maj`, others to `min`. A wrong opening,
    /// an index out of range or a member already in `seen` is an error.
    function _open(
        bytes32 id,
        address[] storage members,
        bytes32 resultHash,
        bytes32 cidHash,
        Reveal[] calldata reveals,
        uint256 seen
    ) private view returns (uint256 maj, uint256 min, bytes memory err) {
        for (uint256 i = 0; i < reveals.length; i++) {
            Reveal calldata r = reveals[i];
            uint256 bit = uint256(1) << r.index;
            if (r.index < members.length && (seen | maj | min) & bit != 0) {
                return (0, 0, abi.encodeWithSelector(DuplicateMember.selector, r.index));
            }
            if (!_opens(id, members, r)) return (0, 0, abi.encodeWithSelector(BadReveal.selector, r.index));
            if (r.resultHash == resultHash && r.outputCidHash == cidHash) maj |= bit;
            else min |= bit;
        }
    }

    /// Whether `r` opens the stored commitment of member r.index.
    function _opens(bytes32 id, address[] storage members, Reveal calldata r) private view returns (bool) {
        if (r.index >= members.length) return false;
        address m = members[r.index];
        bytes32 c = commits[id][m];
        return c != bytes32(0) && c == commitmentOf(id, r.resultHash, r.outputCidHash, r.salt, m);
    }

    function _assign(address[] memory members, uint256 reserve) private {
        for (uint256 i = 0; i < members.length; i++) {
            registry.noteAssigned(members[i], reserve);
        }
    }

    /// Finalizes one task if it is finalizable now (MarketSettlement, run on
    /// this contract's storage); returns whether it was. Reverts bubble up.
    function _finalize(bytes32 id) private returns (bool) {
        return abi.decode(_delegateCall(abi.encodeCall(MarketSettlement.finalize, (id))), (bool));
    }

    /// Runs this call (same selector and arguments) in MarketSettlement.
    function _delegate() private {
        _delegateCall(msg.data);
    }

    /// DELEGATECALLs MarketSettlement with `data`; bubbles its revert.
    function _delegateCall(bytes memory data) private returns (bytes memory ret) {
        bool ok;
        (ok, ret) = address(settlement).delegatecall(data);
        if (!ok) _revertWith(ret);
    }

    /// Reverts with already ABI-encoded error data.
    function _revertWith(bytes memory err) private pure {
        assembly ("memory-safe") {
            revert(add(err, 0x20), mload(err))
        }
    }

    function _checkCid(bytes calldata cid, bool mayBeEmpty) private pure {
        bytes memory err = _cidError(cid, mayBeEmpty);
        if (err.length != 0) _revertWith(err);
    }

    function _cidError(bytes calldata cid, bool mayBeEmpty) private pure returns (bytes memory err) {
        if ((cid.length == 0 && !mayBeEmpty) || cid.length > MAX_CID_LEN) {
            err = abi.encodeWithSelector(BadCid.selector, MAX_CID_LEN, cid.length);
        }
    }

    function _setParams(Params memory p, bool checkRegistry) private {
        _bound("minReplicas", p.minReplicas, MIN_REPLICAS_FLOOR, MAX_REPLICAS_CAP);
        _bound("maxReplicas", p.maxReplicas, p.minReplicas, MAX_REPLICAS_CAP);
        _bound("burnBps", p.burnBps, 0, MAX_BURN_BPS);
        _bound("treasuryBps", p.treasuryBps, 0, MAX_TREASURY_BPS);
        _bound("slashBps", p.slashBps, MIN_SLASH_BPS, MAX_SLASH_BPS);
        _bound("livenessSlashBps", p.livenessSlashBps, 0, MAX_LIVENESS_SLASH_BPS);
        _bound("challengerRewardBps", p.challengerRewardBps, 0, MAX_CHALLENGER_REWARD_BPS);
        _bound("challengeBondBps", p.challengeBondBps, MIN_CHALLENGE_BOND_BPS, MAX_CHALLENGE_BOND_BPS);
        _bound("abandonBps", p.abandonBps, 1, MAX_KEEP_BPS);
        _bound("servedBps", p.servedBps, 1, MAX_KEEP_BPS);
        _bound("maxLivenessPerDay", p.maxLivenessPerDay, 1, MAX_LIVENESS_PER_DAY_CAP);
        _bound("drawDelay", p.drawDelay, MIN_DRAW_DELAY, MAX_DRAW_DELAY);
        _bound("commitPeriod", p.commitPeriod, MIN_PHASE, MAX_PHASE);
        _bound("revealPeriod", p.revealPeriod, MIN_PHASE, MAX_PHASE);
        uint256 maxWindow = checkRegistry ? registry.unbondingDelay() : MAX_CHALLENGE_WINDOW;
        if (maxWindow > MAX_CHALLENGE_WINDOW) maxWindow = MAX_CHALLENGE_WINDOW;
        _bound("challengeWindow", p.challengeWindow, MIN_CHALLENGE_WINDOW, maxWindow);
        _bound("escalationPeriod", p.escalationPeriod, MIN_ESCALATION_PERIOD, MAX_ESCALATION_PERIOD);
        _bound(
            "maxTaskDuration", p.maxTaskDuration, 4 * (uint256(p.commitPeriod) + p.revealPeriod), MAX_TASK_DURATION_CAP
        );
        _bound("minFee", p.minFee, MIN_MIN_FEE, MAX_MIN_FEE);
        _bound("minChallengeBond", p.minChallengeBond, MIN_MIN_BOND, MAX_MIN_BOND);
        params = p;
        emit ParamsUpdated(p);
    }

    function _bound(string memory name, uint256 v, uint256 min, uint256 max) private pure {
        if (v < min || v > max) revert ParamOutOfBounds(name, min, max, v);
    }
}
