// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {TaskSpec, Dissent} from "./Hal9Types.sol";
import {CommitteeSampler} from "./CommitteeSampler.sol";
import {NeuronRegistry} from "./NeuronRegistry.sol";

/// @title ComputationMarket
/// @notice Escrows task fees, draws committees, checks EIP-712 attested
/// verdicts, runs the challenge window and escalation, and settles:
/// burnBps of the fee burned, treasuryBps (plus rounding dust) to the
/// treasury, the rest split equally among the majority; the minority is
/// slashed slashBps, silent members livenessSlashBps.
contract ComputationMarket is EIP712, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// EIP-712 type of what a committee member signs.
    bytes32 public constant ATTESTATION_TYPEHASH =
        keccak256("Attestation(bytes32 taskId,bytes32 resultHash,bytes outputCid)");
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
    /// Cap on slashBps.
    uint16 public constant MAX_SLASH_BPS = 5_000;
    /// Cap on livenessSlashBps.
    uint16 public constant MAX_LIVENESS_SLASH_BPS = 500;
    /// Cap on challengeBondBps.
    uint16 public constant MAX_CHALLENGE_BOND_BPS = 10_000;
    /// Bounds of the challenge window.
    uint64 public constant MIN_CHALLENGE_WINDOW = 1 minutes;
    /// Upper bound of the challenge window.
    uint64 public constant MAX_CHALLENGE_WINDOW = 30 days;
    /// Bounds of the escalation period.
    uint64 public constant MAX_ESCALATION_PERIOD = 30 days;
    /// Bound of maxTaskDuration.
    uint64 public constant MAX_TASK_DURATION_CAP = 30 days;
    /// Longest CID accepted (binary form), in bytes.
    uint256 public constant MAX_CID_LEN = 128;
    /// Most entries one submitVerdicts or finalizeMany call takes (keeps a
    /// batch well inside a block and bounds the loop).
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
        uint64 challengeWindow;
        uint64 escalationPeriod;
        uint64 maxTaskDuration;
        uint256 minFee;
        uint256 minChallengeBond;
    }

    /// Where a task stands.
    enum Status {
        None,
        Posted,
        Verdict,
        Challenged,
        Finalized,
        Refunded
    }

    /// One task. Masks are bitsets over committee (or escalation) indices.
    struct Task {
        address submitter;
        Status status;
        uint16 replicas;
        uint64 capabilities;
        uint64 deadline;
        uint64 challengeEnd;
        uint64 escalationEnd;
        uint256 fee;
        bytes32 resultHash;
        bytes32 outputCidHash;
        uint256 majorityMask;
        uint256 minorityMask;
        address challenger;
        uint256 bond;
        bytes32 escalationResult;
        uint256 escalationMask;
        address[] committee;
        address[] escalation;
    }

    /// One verdict of a submitVerdicts batch: the arguments of submitVerdict.
    struct VerdictInput {
        bytes32 taskId;
        bytes32 resultHash;
        bytes outputCid;
        bytes[] signatures;
        Dissent[] dissents;
    }

    /// The fee and stake token; must be burnable.
    IERC20 public immutable token;
    /// Neuron registry (committee candidates, slashing).
    NeuronRegistry public immutable registry;
    /// Receives the treasury share, dust and slashed stake (the timelock).
    address public immutable treasury;

    /// Current parameters (read them with getParams).
    Params internal params;
    /// Fees and bonds held for open tasks.
    uint256 public escrowed;

    mapping(bytes32 => Task) private tasks;

    event TaskPosted(
        bytes32 indexed taskId, address indexed submitter, uint256 fee, address[] committee, TaskSpec spec
    );
    event VerdictSubmitted(
        bytes32 indexed taskId, bytes32 resultHash, bytes outputCid, uint256 majorityMask, uint256 minorityMask
    );
    event VerdictJoined(bytes32 indexed taskId, uint256 addedMask);
    event Challenged(bytes32 indexed taskId, address indexed challenger, uint256 bond, address[] escalation);
    event EscalationVerdict(bytes32 indexed taskId, bytes32 resultHash, bytes outputCid, uint256 mask, bool upheld);
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
    /// A submitVerdicts entry was not applied; `reason` is the ABI-encoded
    /// custom error submitVerdict would have reverted with.
    event VerdictSkipped(bytes32 indexed taskId, bytes reason);
    /// A finalizeMany entry was not finalizable; `reason` is the ABI-encoded
    /// custom error finalize would have reverted with.
    event FinalizeSkipped(bytes32 indexed taskId, bytes reason);

    error WrongSubmitter(address expected, address found);
    error ReplicasOutOfRange(uint16 min, uint16 max, uint16 found);
    error BadDeadline(uint64 min, uint64 max, uint64 found);
    error FeeTooLow(uint256 min, uint256 found);
    error BadCid(uint256 maxLen, uint256 foundLen);
    error TaskExists(bytes32 taskId);
    error WrongStatus(bytes32 taskId, Status expected, Status found);
    error DeadlinePassed(uint64 deadline, uint64 now_);
    error WindowClosed(uint64 end, uint64 now_);
    error NotCommitteeMember(address signer);
    error DuplicateSigner(address signer);
    error NoQuorum(uint256 needed, uint256 found);
    error DissentAgrees(address signer);
    error NotStaked(address caller);
    error NotFinalizable(bytes32 taskId, Status status);
    error ParamOutOfBounds(string name, uint256 min, uint256 max, uint256 found);
    error BatchTooLarge(uint256 max, uint256 found);
    // OpenZeppelin ECDSA's errors (same selectors), declared here so the ABI
    // keeps them now that signatures are recovered with tryRecover.
    error ECDSAInvalidSignature();
    error ECDSAInvalidSignatureLength(uint256 length);
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
        _setParams(p, false);
    }

    // ------------------------------------------------------------------- views

    /// @notice Task id of a spec: keccak256(abi.encode(spec)).
    function taskId(TaskSpec calldata spec) public pure returns (bytes32) {
        return keccak256(abi.encode(spec));
    }

    /// @notice Quorum for a committee of r: ceil(2r/3).
    function quorum(uint256 r) public pure returns (uint256) {
        return (2 * r + 2) / 3;
    }

    /// @notice The EIP-712 digest a member signs for (taskId, resultHash, outputCid).
    function attestationDigest(bytes32 id, bytes32 resultHash, bytes calldata outputCid) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ATTESTATION_TYPEHASH, id, resultHash, keccak256(outputCid))));
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

    /// @notice The committee drawn for a task.
    function committeeOf(bytes32 id) external view returns (address[] memory) {
        return tasks[id].committee;
    }

    /// @notice Status of a task.
    function statusOf(bytes32 id) external view returns (Status) {
        return tasks[id].status;
    }

    /// @notice Splits a fee: (burned, to treasury incl. dust, per majority member).
    function feeSplit(uint256 fee, uint256 majority)
        public
        view
        returns (uint256 burned, uint256 toTreasury, uint256 each)
    {
        burned = fee * params.burnBps / BPS;
        toTreasury = fee * params.treasuryBps / BPS;
        uint256 rest = fee - burned - toTreasury;
        each = majority == 0 ? 0 : rest / majority;
        toTreasury += rest - each * majority;
    }

    // ------------------------------------------------------------------ client

    /// @notice Escrows `fee`, draws a committee of spec.replicas neurons and emits it.
    function postTask(TaskSpec calldata spec, uint256 fee) external nonReentrant returns (bytes32 id) {
        Params memory p = params;
        if (spec.submitter != msg.sender) revert WrongSubmitter(msg.sender, spec.submitter);
        if (spec.replicas < p.minReplicas || spec.replicas > p.maxReplicas) {
            revert ReplicasOutOfRange(p.minReplicas, p.maxReplicas, spec.replicas);
        }
        uint64 maxDeadline = uint64(block.timestamp) + p.maxTaskDuration;
        if (spec.deadline <= block.timestamp || spec.deadline > maxDeadline) {
            revert BadDeadline(uint64(block.timestamp) + 1, maxDeadline, spec.deadline);
        }
        if (fee < p.minFee) revert FeeTooLow(p.minFee, fee);
        _checkCid(spec.programCid, false);
        _checkCid(spec.inputCid, true);
        id = keccak256(abi.encode(spec));
        Task storage t = tasks[id];
        if (t.status != Status.None) revert TaskExists(id);

        t.submitter = msg.sender;
        t.status = Status.Posted;
        t.replicas = spec.replicas;
        t.capabilities = spec.capabilities;
        t.deadline = spec.deadline;
        t.fee = fee;
        escrowed += fee;
        bytes32 seed = keccak256(abi.encodePacked(block.prevrandao, id));
        t.committee = _drawCommittee(seed, spec.capabilities, spec.replicas, new address[](0), address(0));

        token.safeTransferFrom(msg.sender, address(this), fee);
        emit TaskPosted(id, msg.sender, fee, t.committee, spec);
    }

    // --------------------------------------------------------------- committee

    /// @notice Records the verdict proven by q EIP-712 attestations of committee
    /// members over (taskId, resultHash, outputCid); optional dissents (signed
    /// attestations of another result) mark members as minority.
    function submitVerdict(
        bytes32 id,
        bytes32 resultHash,
        bytes calldata outputCid,
        bytes[] calldata signatures,
        Dissent[] calldata dissents
    ) external nonReentrant {
        bytes memory err = _submitVerdict(id, resultHash, outputCid, signatures, dissents);
        if (err.length != 0) _revertWith(err);
    }

    /// @notice Records several verdicts in one transaction, each with exactly
    /// the checks of submitVerdict. An entry that fails a check is skipped
    /// (state untouched) and reported by VerdictSkipped with the error
    /// submitVerdict would have reverted with; the others are applied.
    /// @return settled how many entries were applied.
    function submitVerdicts(VerdictInput[] calldata verdicts) external nonReentrant returns (uint256 settled) {
        uint256 n = verdicts.length;
        if (n > MAX_BATCH) revert BatchTooLarge(MAX_BATCH, n);
        for (uint256 i = 0; i < n; i++) {
            VerdictInput calldata v = verdicts[i];
            bytes memory err = _submitVerdict(v.taskId, v.resultHash, v.outputCid, v.signatures, v.dissents);
            if (err.length == 0) {
                settled++;
            } else {
                emit VerdictSkipped(v.taskId, err);
            }
        }
    }

    /// @notice Adds late agreeing attestations of committee members to a
    /// verdict during its challenge window, so a relayer that submitted only
    /// a quorum cannot leave other agreeing members unpaid (and liveness-slashed).
    function joinVerdict(bytes32 id, bytes calldata outputCid, bytes[] calldata signatures) external nonReentrant {
        Task storage t = tasks[id];
        if (t.status != Status.Verdict) revert WrongStatus(id, Status.Verdict, t.status);
        if (block.timestamp > t.challengeEnd) revert WindowClosed(t.challengeEnd, uint64(block.timestamp));
        if (keccak256(outputCid) != t.outputCidHash) revert BadCid(MAX_CID_LEN, outputCid.length);
        uint256 before = t.majorityMask;
        (uint256 mask, bytes memory err) = _collect(id, t.resultHash, outputCid, signatures, t.committee, before);
        if (err.length != 0) _revertWith(err);
        if (mask & t.minorityMask != 0) revert DuplicateSigner(address(0));
        t.majorityMask = mask;
        emit VerdictJoined(id, mask & ~before);
    }

    // --------------------------------------------------------------- challenge

    /// @notice Disputes a verdict during its challenge window, posting a bond;
    /// draws an escalation committee of 2r+1 fresh neurons.
    function challenge(bytes32 id) external nonReentrant {
        Task storage t = tasks[id];
        if (t.status != Status.Verdict) revert WrongStatus(id, Status.Verdict, t.status);
        if (block.timestamp > t.challengeEnd) revert WindowClosed(t.challengeEnd, uint64(block.timestamp));
        if (!registry.isStaked(msg.sender)) revert NotStaked(msg.sender);
        Params memory p = params;
        uint256 bond = t.fee * p.challengeBondBps / BPS;
        if (bond < p.minChallengeBond) bond = p.minChallengeBond;

        t.status = Status.Challenged;
        t.challenger = msg.sender;
        t.bond = bond;
        t.escalationEnd = uint64(block.timestamp) + p.escalationPeriod;
        escrowed += bond;
        bytes32 seed = keccak256(abi.encodePacked(block.prevrandao, id, uint256(1)));
        t.escalation = _drawCommittee(seed, t.capabilities, 2 * uint256(t.replicas) + 1, t.committee, msg.sender);

        token.safeTransferFrom(msg.sender, address(this), bond);
        emit Challenged(id, msg.sender, bond, t.escalation);
    }

    /// @notice Records the escalation committee's verdict (quorum of 2r+1).
    function submitEscalationVerdict(
        bytes32 id,
        bytes32 resultHash,
        bytes calldata outputCid,
        bytes[] calldata signatures
    ) external nonReentrant {
        Task storage t = tasks[id];
        if (t.status != Status.Challenged) revert WrongStatus(id, Status.Challenged, t.status);
        if (t.escalationMask != 0) revert WrongStatus(id, Status.Challenged, Status.Challenged);
        if (block.timestamp > t.escalationEnd) revert WindowClosed(t.escalationEnd, uint64(block.timestamp));
        _checkCid(outputCid, false);
        (uint256 mask, bytes memory err) = _collect(id, resultHash, outputCid, signatures, t.escalation, 0);
        if (err.length != 0) _revertWith(err);
        uint256 need = quorum(t.escalation.length);
        if (_popcount(mask) < need) revert NoQuorum(need, _popcount(mask));
        t.escalationResult = resultHash;
        t.escalationMask = mask;
        bool upheld = resultHash == t.resultHash;
        if (!upheld) t.outputCidHash = keccak256(outputCid);
        emit EscalationVerdict(id, resultHash, outputCid, mask, upheld);
    }

    // ---------------------------------------------------------------- finalize

    /// @notice Settles a task: pays the verdict after its challenge window,
    /// resolves a challenge, or refunds a task without quorum by its deadline.
    function finalize(bytes32 id) external nonReentrant {
        if (!_finalize(id)) revert NotFinalizable(id, tasks[id].status);
    }

    /// @notice Finalizes several tasks in one transaction, each as finalize
    /// does. A task that is not finalizable yet (or any more) is skipped and
    /// reported by FinalizeSkipped with the NotFinalizable error finalize
    /// would have reverted with; the others are settled.
    /// @return finalized how many tasks were settled.
    function finalizeMany(bytes32[] calldata ids) external nonReentrant returns (uint256 finalized) {
        uint256 n = ids.length;
        if (n > MAX_BATCH) revert BatchTooLarge(MAX_BATCH, n);
        for (uint256 i = 0; i < n; i++) {
            bytes32 id = ids[i];
            if (_finalize(id)) {
                finalized++;
            } else {
                emit FinalizeSkipped(id, abi.encodeWithSelector(NotFinalizable.selector, id, tasks[id].status));
            }
        }
    }

    // -------------------------------------------------------------- governance

    /// @notice Replaces all parameters; reverts when one breaks its fixed bound. Only the timelock.
    function setParams(Params calldata p) external onlyOwner {
        _setParams(p, true);
    }

    // ---------------------------------------------------------------- internal

    /// Checks and records one verdict. Returns the ABI-encoded custom error
    /// of the first failed check (state untouched), or empty bytes once the
    /// verdict is recorded. Every check runs before the first write.
    function _submitVerdict(
        bytes32 id,
        bytes32 resultHash,
        bytes calldata outputCid,
        bytes[] calldata signatures,
        Dissent[] calldata dissents
    ) private returns (bytes memory err) {
        Task storage t = tasks[id];
        if (t.status != Status.Posted) {
            return abi.encodeWithSelector(WrongStatus.selector, id, Status.Posted, t.status);
        }
        if (block.timestamp > t.deadline) {
            return abi.encodeWithSelector(DeadlinePassed.selector, t.deadline, uint64(block.timestamp));
        }
        err = _cidError(outputCid, false);
        if (err.length != 0) return err;
        uint256 mask;
        (mask, err) = _collect(id, resultHash, outputCid, signatures, t.committee, 0);
        if (err.length != 0) return err;
        uint256 need = quorum(t.committee.length);
        uint256 found = _popcount(mask);
        if (found < need) return abi.encodeWithSelector(NoQuorum.selector, need, found);

        uint256 minority;
        (minority, err) = _collectDissents(id, resultHash, dissents, t.committee, mask);
        if (err.length != 0) return err;

        t.status = Status.Verdict;
        t.resultHash = resultHash;
        t.outputCidHash = keccak256(outputCid);
        t.majorityMask = mask;
        t.minorityMask = minority;
        t.challengeEnd = uint64(block.timestamp) + params.challengeWindow;
        emit VerdictSubmitted(id, resultHash, outputCid, mask, minority);
    }

    /// Finalizes one task if it is finalizable now; returns whether it was.
    function _finalize(bytes32 id) private returns (bool) {
        Task storage t = tasks[id];
        Status s = t.status;
        if (s == Status.Posted && block.timestamp > t.deadline) {
            t.status = Status.Refunded;
            escrowed -= t.fee;
            _release(t.committee);
            token.safeTransfer(t.submitter, t.fee);
            emit Refunded(id, t.submitter, t.fee);
            return true;
        }
        if (s == Status.Verdict && block.timestamp > t.challengeEnd) {
            t.status = Status.Finalized;
            escrowed -= t.fee;
            _settle(id, t, t.committee, t.majorityMask, t.minorityMask, true);
            _release(t.committee);
            return true;
        }
        if (s == Status.Challenged && (t.escalationMask != 0 || block.timestamp > t.escalationEnd)) {
            t.status = Status.Finalized;
            escrowed -= t.fee + t.bond;
            _resolveChallenge(id, t);
            _release(t.committee);
            _release(t.escalation);
            return true;
        }
        return false;
    }

    /// Reverts with already ABI-encoded error data.
    function _revertWith(bytes memory err) private pure {
        assembly ("memory-safe") {
            revert(add(err, 0x20), mload(err))
        }
    }

    /// Recovers the signer of `digest`; on a malformed signature returns the
    /// error ECDSA.recover would have reverted with.
    function _recover(bytes32 digest, bytes calldata signature)
        private
        pure
        returns (address signer, bytes memory err)
    {
        (address a, ECDSA.RecoverError e, bytes32 arg) = ECDSA.tryRecoverCalldata(digest, signature);
        if (e == ECDSA.RecoverError.NoError) return (a, err);
        if (e == ECDSA.RecoverError.InvalidSignatureLength) {
            return (address(0), abi.encodeWithSelector(ECDSAInvalidSignatureLength.selector, uint256(arg)));
        }
        if (e == ECDSA.RecoverError.InvalidSignatureS) {
            return (address(0), abi.encodeWithSelector(ECDSAInvalidSignatureS.selector, arg));
        }
        return (address(0), abi.encodeWithSelector(ECDSAInvalidSignature.selector));
    }

    function _resolveChallenge(bytes32 id, Task storage t) private {
        address challenger = t.challenger;
        uint256 bond = t.bond;
        if (t.escalationMask == 0) {
            // Escalation never reached quorum: the verdict stands, the bond goes back.
            _settle(id, t, t.committee, t.majorityMask, t.minorityMask, true);
            token.safeTransfer(challenger, bond);
            emit ChallengeSettled(id, challenger, false, bond);
        } else if (t.escalationResult == t.resultHash) {
            // The challenger was wrong: its bond pays the escalation majority
            // for the re-execution (rounding dust to the treasury).
            _settle(id, t, t.committee, t.majorityMask, t.minorityMask, true);
            _payBond(t.escalation, t.escalationMask, bond);
            emit ChallengeSettled(id, challenger, false, 0);
        } else {
            // The challenger was right: the original majority is slashed, the
            // challenger gets the bond back plus challengerRewardBps of it, and
            // the escalation majority is paid the fee.
            uint256 slashed = _slashMask(t.committee, t.majorityMask, params.slashBps);
            uint256 reward = slashed * params.challengerRewardBps / BPS;
            t.resultHash = t.escalationResult;
            _settle(id, t, t.escalation, t.escalationMask, 0, false);
            if (slashed > reward) token.safeTransfer(treasury, slashed - reward);
            token.safeTransfer(challenger, bond + reward);
            emit ChallengeSettled(id, challenger, true, bond + reward);
        }
    }

    /// Splits a forfeited bond equally over `members` in `mask`; dust to the treasury.
    function _payBond(address[] storage members, uint256 mask, uint256 bond) private {
        uint256 each = bond / _popcount(mask);
        uint256 n = members.length;
        uint256 paid;
        for (uint256 i = 0; i < n; i++) {
            if (mask & (uint256(1) << i) != 0 && each != 0) {
                token.safeTransfer(members[i], each);
                paid += each;
            }
        }
        if (bond > paid) token.safeTransfer(treasury, bond - paid);
    }

    /// Pays the fee to `members` in `mask` and slashes the rest.
    function _settle(
        bytes32 id,
        Task storage t,
        address[] storage members,
        uint256 mask,
        uint256 minority,
        bool liveness
    ) private {
        (uint256 burned, uint256 toTreasury, uint256 each) = feeSplit(t.fee, _popcount(mask));
        if (burned != 0) ERC20Burnable(address(token)).burn(burned);
        if (toTreasury != 0) token.safeTransfer(treasury, toTreasury);
        uint256 slashed;
        uint256 n = members.length;
        Params memory p = params;
        for (uint256 i = 0; i < n; i++) {
            uint256 bit = uint256(1) << i;
            if (mask & bit != 0) {
                if (each != 0) token.safeTransfer(members[i], each);
            } else if (minority & bit != 0) {
                slashed += registry.slash(members[i], p.slashBps, treasury);
            } else if (liveness && p.livenessSlashBps != 0) {
                slashed += registry.slash(members[i], p.livenessSlashBps, treasury);
            }
        }
        emit Finalized(id, t.resultHash, burned, toTreasury, each, slashed);
    }

    /// Slashes every member in `mask` by `bps` into this contract; returns the total.
    function _slashMask(address[] storage members, uint256 mask, uint256 bps) private returns (uint256 total) {
        uint256 n = members.length;
        for (uint256 i = 0; i < n; i++) {
            if (mask & (uint256(1) << i) != 0) total += registry.slash(members[i], bps, address(this));
        }
    }

    function _release(address[] storage members) private {
        uint256 n = members.length;
        for (uint256 i = 0; i < n; i++) {
            registry.noteReleased(members[i]);
        }
    }

    /// Draws `r` members among the candidates with `caps`, skipping `exclude` and `also`.
    function _drawCommittee(bytes32 seed, uint64 caps, uint256 r, address[] memory exclude, address also)
        private
        returns (address[] memory committee)
    {
        (address[] memory ops, uint256[] memory weights) = registry.candidates(caps);
        if (exclude.length != 0 || also != address(0)) {
            for (uint256 i = 0; i < ops.length; i++) {
                if (ops[i] == also) {
                    weights[i] = 0;
                    continue;
                }
                for (uint256 j = 0; j < exclude.length; j++) {
                    if (ops[i] == exclude[j]) {
                        weights[i] = 0;
                        break;
                    }
                }
            }
        }
        uint256[] memory picked = CommitteeSampler.draw(seed, weights, r);
        committee = new address[](r);
        for (uint256 i = 0; i < r; i++) {
            committee[i] = ops[picked[i]];
            registry.noteAssigned(committee[i]);
        }
    }

    /// Recovers each signature over the attestation and returns the bitset of
    /// signing members, or the error of a malformed signature, a non-member
    /// or a repeated signer.
    function _collect(
        bytes32 id,
        bytes32 resultHash,
        bytes calldata outputCid,
        bytes[] calldata signatures,
        address[] storage members,
        uint256 mask
    ) private view returns (uint256, bytes memory err) {
        bytes32 digest = attestationDigest(id, resultHash, outputCid);
        for (uint256 i = 0; i < signatures.length; i++) {
            address signer;
            (signer, err) = _recover(digest, signatures[i]);
            if (err.length != 0) return (0, err);
            uint256 bit = _memberBit(members, signer);
            if (bit == 0) return (0, abi.encodeWithSelector(NotCommitteeMember.selector, signer));
            if (mask & bit != 0) return (0, abi.encodeWithSelector(DuplicateSigner.selector, signer));
            mask |= bit;
        }
        return (mask, err);
    }

    /// Recovers each dissent (a member's attestation of another result) and
    /// returns the bitset of dissenting members, or the error of a bad CID, a
    /// malformed signature, an agreeing "dissent", a non-member or a member
    /// already counted in `majority` or in an earlier dissent.
    function _collectDissents(
        bytes32 id,
        bytes32 resultHash,
        Dissent[] calldata dissents,
        address[] storage members,
        uint256 majority
    ) private view returns (uint256 minority, bytes memory err) {
        for (uint256 i = 0; i < dissents.length; i++) {
            Dissent calldata d = dissents[i];
            err = _cidError(d.outputCid, false);
            if (err.length != 0) return (0, err);
            address signer;
            (signer, err) = _recover(attestationDigest(id, d.resultHash, d.outputCid), d.signature);
            if (err.length != 0) return (0, err);
            if (d.resultHash == resultHash) return (0, abi.encodeWithSelector(DissentAgrees.selector, signer));
            uint256 bit = _memberBit(members, signer);
            if (bit == 0) return (0, abi.encodeWithSelector(NotCommitteeMember.selector, signer));
            if ((majority | minority) & bit != 0) return (0, abi.encodeWithSelector(DuplicateSigner.selector, signer));
            minority |= bit;
        }
    }

    /// The bit of `signer` in `members`, or 0 when it is not a member.
    function _memberBit(address[] storage members, address signer) private view returns (uint256) {
        uint256 n = members.length;
        for (uint256 i = 0; i < n; i++) {
            if (members[i] == signer) return uint256(1) << i;
        }
        return 0;
    }

    function _popcount(uint256 x) private pure returns (uint256 c) {
        while (x != 0) {
            x &= x - 1;
            c++;
        }
    }

    function _checkCid(bytes calldata cid, bool mayBeEmpty) private pure {
        bytes memory err = _cidError(cid, mayBeEmpty);
        if (err.length != 0) _revertWith(err);
    }

    /// BadCid when `cid` is empty (unless allowed) or longer than MAX_CID_LEN, else empty bytes.
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
        _bound("slashBps", p.slashBps, 0, MAX_SLASH_BPS);
        _bound("livenessSlashBps", p.livenessSlashBps, 0, MAX_LIVENESS_SLASH_BPS);
        _bound("challengerRewardBps", p.challengerRewardBps, 0, BPS);
        _bound("challengeBondBps", p.challengeBondBps, 0, MAX_CHALLENGE_BOND_BPS);
        uint256 maxWindow = checkRegistry ? registry.unbondingDelay() : MAX_CHALLENGE_WINDOW;
        if (maxWindow > MAX_CHALLENGE_WINDOW) maxWindow = MAX_CHALLENGE_WINDOW;
        _bound("challengeWindow", p.challengeWindow, MIN_CHALLENGE_WINDOW, maxWindow);
        _bound("escalationPeriod", p.escalationPeriod, MIN_CHALLENGE_WINDOW, MAX_ESCALATION_PERIOD);
        _bound("maxTaskDuration", p.maxTaskDuration, 1 minutes, MAX_TASK_DURATION_CAP);
        params = p;
        emit ParamsUpdated(p);
    }

    function _bound(string memory name, uint256 v, uint256 min, uint256 max) private pure {
        if (v < min || v > max) revert ParamOutOfBounds(name, min, max, v);
    }
}
