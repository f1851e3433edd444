// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SortitionTree} from "./SortitionTree.sol";

/// Receives every change of a neuron's effective stake (the rewards distributor).
interface IStakeWeightHook {
    /// Sets the reward weight of `operator` to `weight`.
    function updateWeight(address operator, uint256 weight) external;
}

/// Read by the registry to keep the unbonding delay at least the challenge window.
interface IChallengeWindow {
    /// Seconds a settled verdict can be challenged.
    function challengeWindow() external view returns (uint64);
}

/// @title NeuronRegistry
/// @notice Binds an operator address to a libp2p PeerId and capabilities,
/// holds its stake, lock and unbonding, and lets only the market slash.
/// Effective stake = stake * multBps / 10000 while the lock runs, with
/// multBps = 10000 + 20000 * remaining / maxLock fixed when the lock is set
/// and recomputed from the *remaining* lock on every deposit (protocol v1.1:
/// stake added one second before the lock ends gets ~1x); 1x after the lock.
/// Only stake >= minStake is eligible: it earns rewards and sits in the
/// sortition trees (one for "any" and one per capability bit) the committee
/// draw reads. Tree writes happen only in the apply phase of an epoch (the
/// first applyBlocks blocks of every epochBlocks); a change made in the draw
/// phase is queued and applied by anyone with applyQueued in a later apply
/// phase, so nothing done once a draw's randomness is known can move it.
contract NeuronRegistry is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;
    using SortitionTree for SortitionTree.Tree;

    /// Basis-point denominator.
    uint256 public constant BPS = 10_000;
    /// Longest peer id accepted, in bytes (a libp2p PeerId multihash is 38 bytes for ed25519).
    uint256 public constant MAX_PEER_ID_LEN = 64;
    /// Bounds on maxLock the governor cannot break.
    uint64 public constant MIN_MAX_LOCK = 1 days;
    /// Upper bound on maxLock.
    uint64 public constant MAX_MAX_LOCK = 4 * 365 days;
    /// Upper bound on the unbonding delay.
    uint64 public constant MAX_UNBONDING_DELAY = 90 days;
    /// Most capability bits a neuron may declare (a stake change writes 1 + bits trees).
    uint256 public constant MAX_CAP_BITS = 4;
    /// Stake units per tree weight unit (the tree holds 64-bit lanes).
    uint256 public constant WEIGHT_UNIT = 1e12;
    /// Bounds of minStake: below 1 HAL9 the tree unit loses precision and
    /// junk registrations get cheap; above 10M HAL9 nobody could join.
    uint256 public constant MIN_MIN_STAKE = 1 ether;
    /// Upper bound of minStake.
    uint256 public constant MAX_MIN_STAKE = 10_000_000 ether;
    /// Length of the ed25519 signature of the peer binding.
    uint256 public constant PEER_SIG_LEN = 64;
    /// Domain tag of the peer binding message (see docs/protocol-v1.1.md).
    bytes public constant PEER_BINDING_TAG = "hal9-peer-binding/v1";

    /// One registered operator.
    struct Neuron {
        bytes peerId;
        bytes peerSig;
        uint64 capabilities;
        uint64 treeCaps;
        uint16 multBps;
        bool queued;
        uint64 lockEnd;
        uint64 lockDuration;
        uint64 unbondingEnd;
        uint32 activeTasks;
        bool registered;
        uint256 stake;
        uint256 unbonding;
        uint256 locked;
    }

    /// The staking token (HAL9).
    IERC20 public immutable token;
    /// The only address allowed to slash and to mark task assignments.
    address public market;
    /// Gets every effective-stake change (rewards distributor).
    IStakeWeightHook public rewards;
    /// May call `wire` once.
    address private wirer;

    /// Longest lock; a lock of this length gives 3x.
    uint64 public maxLock;
    /// Delay between requestUnbond and withdraw.
    uint64 public unbondingDelay;
    /// Smallest stake that makes a neuron eligible for committees.
    uint256 public minStake;

    /// Sum of all stake and unbonding held by this contract.
    uint256 public totalHeld;
    /// Blocks per tree epoch (fixed at deployment).
    uint64 public immutable epochBlocks;
    /// Blocks at the start of each epoch in which the trees may change.
    uint64 public immutable applyBlocks;

    mapping(address => Neuron) private neurons;
    /// Tree 0 holds every eligible neuron; tree b+1 those with capability bit b.
    mapping(uint256 => SortitionTree.Tree) private trees;

    event Wired(address market, address rewards);
    /// `peerSig` is the ed25519 signature of the peer binding by the libp2p
    /// key of `peerId`; nodes verify it and ignore neurons whose binding fails.
    event Registered(address indexed operator, bytes peerId, uint64 capabilities, bytes peerSig);
    event TreeUpdateQueued(address indexed operator);
    event TreeUpdated(address indexed operator, uint256 weight, uint64 capabilities);
    event CapabilitiesUpdated(address indexed operator, uint64 capabilities);
    event Deregistered(address indexed operator, uint256 unbonding);
    event Staked(address indexed operator, uint256 amount, uint256 stake);
    event Locked(address indexed operator, uint64 duration, uint64 lockEnd);
    event UnbondRequested(address indexed operator, uint256 amount, uint64 unbondingEnd);
    event Withdrawn(address indexed operator, uint256 amount);
    event Slashed(address indexed operator, uint256 bps, uint256 amount, address to);
    event ParamsUpdated(uint64 maxLock, uint64 unbondingDelay, uint256 minStake);

    error AlreadyWired();
    error NotWirer(address caller);
    error NotMarket(address caller);
    error AlreadyRegistered(address operator);
    error NotRegistered(address operator);
    error InvalidPeerId(uint256 maxLen, uint256 foundLen);
    error BadPeerSig(uint256 expectedLen, uint256 foundLen);
    error TooManyCapabilities(uint256 max, uint256 found);
    error NotApplyPhase(uint256 blockNumber);
    error BelowMinStake(uint256 min, uint256 found);
    error StakeLocked(uint256 locked, uint256 remaining);
    error ZeroAmount();
    error LockTooLong(uint64 max, uint64 found);
    error LockShortened(uint64 currentEnd, uint64 newEnd);
    error LockActive(uint64 lockEnd, uint64 now_);
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingUnbonding();
    error StillUnbonding(uint64 unbondingEnd, uint64 now_);
    error BpsTooHigh(uint256 max, uint256 found);
    error ParamOutOfBounds(string name, uint256 min, uint256 max, uint256 found);

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket(msg.sender);
        _;
    }

    /// @param owner_ the governance timelock.
    /// @param epochBlocks_ blocks per tree epoch, 16..7200; applyBlocks_ in 1..epochBlocks_/2.
    constructor(
        IERC20 token_,
        address owner_,
        uint64 maxLock_,
        uint64 unbondingDelay_,
        uint256 minStake_,
        uint64 epochBlocks_,
        uint64 applyBlocks_
    ) Ownable(owner_) {
        token = token_;
        if (epochBlocks_ < 16 || epochBlocks_ > 7200) revert ParamOutOfBounds("epochBlocks", 16, 7200, epochBlocks_);
        if (applyBlocks_ == 0 || applyBlocks_ > epochBlocks_ / 2) {
            revert ParamOutOfBounds("applyBlocks", 1, epochBlocks_ / 2, applyBlocks_);
        }
        _checkMinStake(minStake_);
        epochBlocks = epochBlocks_;
        applyBlocks = applyBlocks_;
        wirer = msg.sender;
        _checkMaxLock(maxLock_);
        if (unbondingDelay_ > MAX_UNBONDING_DELAY) {
            revert ParamOutOfBounds("unbondingDelay", 0, MAX_UNBONDING_DELAY, unbondingDelay_);
        }
        maxLock = maxLock_;
        unbondingDelay = unbondingDelay_;
        minStake = minStake_;
    }

    /// @notice Sets the market and the rewards hook, once, by the deployer.
    function wire(address market_, IStakeWeightHook rewards_) external {
        if (wirer == address(0)) revert AlreadyWired();
        if (msg.sender != wirer) revert NotWirer(msg.sender);
        if (unbondingDelay < IChallengeWindow(market_).challengeWindow()) {
            revert ParamOutOfBounds(
                "unbondingDelay", IChallengeWindow(market_).challengeWindow(), MAX_UNBONDING_DELAY, unbondingDelay
            );
        }
        wirer = address(0);
        market = market_;
        rewards = rewards_;
        emit Wired(market_, address(rewards_));
    }

    // ---------------------------------------------------------------- operators

    /// @notice Registers msg.sender with its libp2p PeerId, capabilities and a
    /// first deposit of at least minStake. `peerSig` is the ed25519 signature
    /// by the PeerId's key over the binding message (peerBindingMessage); the
    /// chain stores and emits it, nodes verify it (ed25519 is not affordable
    /// on chain). The chain does not enforce PeerId uniqueness: a squatter
    /// cannot produce a valid signature, so its binding is ignored by nodes,
    /// and it cannot block the key owner from registering.
    function register(bytes calldata peerId, uint64 capabilities, uint256 amount, bytes calldata peerSig)
        external
        nonReentrant
    {
        Neuron storage n = neurons[msg.sender];
        if (n.registered) revert AlreadyRegistered(msg.sender);
        if (peerId.length == 0 || peerId.length > MAX_PEER_ID_LEN) {
            revert InvalidPeerId(MAX_PEER_ID_LEN, peerId.length);
        }
        if (peerSig.length != PEER_SIG_LEN) revert BadPeerSig(PEER_SIG_LEN, peerSig.length);
        _checkCaps(capabilities);
        if (n.stake + amount < minStake) revert BelowMinStake(minStake, n.stake + amount);
        n.registered = true;
        n.peerId = peerId;
        n.peerSig = peerSig;
        n.capabilities = capabilities;
        if (amount != 0) {
            n.stake += amount;
            totalHeld += amount;
            token.safeTransferFrom(msg.sender, address(this), amount);
            emit Staked(msg.sender, amount, n.stake);
        }
        emit Registered(msg.sender, peerId, capabilities, peerSig);
        _syncWeight(msg.sender);
    }

    /// @notice The bytes the libp2p key of `peerId` signs to bind it to `operator`:
    /// PEER_BINDING_TAG ‖ chainid (32 bytes) ‖ this registry (20) ‖ operator (20) ‖ peerId.
    function peerBindingMessage(address operator, bytes calldata peerId) external view returns (bytes memory) {
        return abi.encodePacked(PEER_BINDING_TAG, block.chainid, address(this), operator, peerId);
    }

    /// @notice Replaces the capability bits of msg.sender's neuron.
    function setCapabilities(uint64 capabilities) external {
        Neuron storage n = _registered(msg.sender);
        _checkCaps(capabilities);
        n.capabilities = capabilities;
        emit CapabilitiesUpdated(msg.sender, capabilities);
        _syncWeight(msg.sender);
    }

    /// @notice Adds `amount` to msg.sender's stake (never overwrites it).
    function stake(uint256 amount) external nonReentrant {
        Neuron storage n = _registered(msg.sender);
        if (amount == 0) revert ZeroAmount();
        n.stake += amount;
        totalHeld += amount;
        // A deposit resets the multiplier to what the remaining lock earns.
        if (block.timestamp < n.lockEnd) n.multBps = _mult(n.lockEnd - uint64(block.timestamp));
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Staked(msg.sender, amount, n.stake);
        _syncWeight(msg.sender);
    }

    /// @notice Locks the stake for `duration` seconds from now; a lock can be
    /// extended, never shortened.
    function lock(uint64 duration) external {
        Neuron storage n = _registered(msg.sender);
        if (duration == 0) revert ZeroAmount();
        if (duration > maxLock) revert LockTooLong(maxLock, duration);
        uint64 end = uint64(block.timestamp) + duration;
        if (end < n.lockEnd) revert LockShortened(n.lockEnd, end);
        n.lockEnd = end;
        n.lockDuration = duration;
        n.multBps = _mult(duration);
        emit Locked(msg.sender, duration, end);
        _syncWeight(msg.sender);
    }

    /// @notice Moves `amount` of an unlocked stake into unbonding; it stays
    /// slashable until withdrawn.
    function requestUnbond(uint256 amount) external {
        Neuron storage n = neurons[msg.sender];
        if (amount == 0) revert ZeroAmount();
        if (block.timestamp < n.lockEnd) revert LockActive(n.lockEnd, uint64(block.timestamp));
        if (amount > n.stake) revert InsufficientStake(n.stake, amount);
        n.stake -= amount;
        n.unbonding += amount;
        n.unbondingEnd = uint64(block.timestamp) + unbondingDelay;
        emit UnbondRequested(msg.sender, amount, n.unbondingEnd);
        _syncWeight(msg.sender);
    }

    /// @notice Pays out `amount` of the unbonded stake once the delay passed;
    /// open tasks block only the part of the holdings they could still slash
    /// (`locked`), not the whole withdrawal.
    function withdraw(uint256 amount) external nonReentrant {
        Neuron storage n = neurons[msg.sender];
        if (amount == 0 || n.unbonding == 0) revert NothingUnbonding();
        if (amount > n.unbonding) revert InsufficientStake(n.unbonding, amount);
        if (block.timestamp < n.unbondingEnd) revert StillUnbonding(n.unbondingEnd, uint64(block.timestamp));
        uint256 remaining = n.stake + n.unbonding - amount;
        if (remaining < n.locked) revert StakeLocked(n.locked, remaining);
        n.unbonding -= amount;
        totalHeld -= amount;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    /// @notice Leaves the committee pool; all stake starts unbonding. Needs an ended lock.
    function deregister() external {
        Neuron storage n = _registered(msg.sender);
        if (block.timestamp < n.lockEnd) revert LockActive(n.lockEnd, uint64(block.timestamp));
        n.registered = false;
        uint256 amount = n.stake;
        if (amount != 0) {
            n.stake = 0;
            n.unbonding += amount;
            n.unbondingEnd = uint64(block.timestamp) + unbondingDelay;
        }
        emit Deregistered(msg.sender, n.unbonding);
        _syncWeight(msg.sender);
    }

    /// @notice Re-reads an operator's effective stake into the rewards hook and
    /// (in the apply phase) the trees; anyone may call it, for example when a
    /// lock ended, so an ended lock stops earning 3x at the first poke.
    function poke(address operator) external {
        _syncWeight(operator);
    }

    /// @notice Applies queued tree updates (changes made in a draw phase). Apply phase only.
    function applyQueued(address[] calldata operators) external {
        if (!inApplyPhase()) revert NotApplyPhase(block.number);
        for (uint256 i = 0; i < operators.length; i++) {
            if (neurons[operators[i]].queued) _applyTree(operators[i]);
        }
    }

    // ------------------------------------------------------------------- market

    /// @notice Takes `bps` of the operator's stake and unbonding (stake first)
    /// and sends it to `to`. Only the market.
    function slash(address operator, uint256 bps, address to)
        external
        onlyMarket
        nonReentrant
        returns (uint256 amount)
    {
        if (bps > BPS) revert BpsTooHigh(BPS, bps);
        Neuron storage n = neurons[operator];
        amount = (n.stake + n.unbonding) * bps / BPS;
        if (amount == 0) return 0;
        uint256 fromStake = amount < n.stake ? amount : n.stake;
        n.stake -= fromStake;
        n.unbonding -= amount - fromStake;
        totalHeld -= amount;
        token.safeTransfer(to, amount);
        emit Slashed(operator, bps, amount, to);
        _syncWeight(operator);
    }

    /// @notice Marks that `operator` sits on an open task that may slash up to
    /// `reserve` (that much of its holdings cannot be withdrawn). Only the market.
    function noteAssigned(address operator, uint256 reserve) external onlyMarket {
        Neuron storage n = neurons[operator];
        n.activeTasks += 1;
        n.locked += reserve;
    }

    /// @notice Marks that a task of `operator` closed, freeing `reserve`. Only the market.
    function noteReleased(address operator, uint256 reserve) external onlyMarket {
        Neuron storage n = neurons[operator];
        n.activeTasks -= 1;
        n.locked = n.locked > reserve ? n.locked - reserve : 0;
    }

    // -------------------------------------------------------------- governance

    /// @notice Sets the staking parameters within fixed bounds. Only the timelock.
    function setParams(uint64 maxLock_, uint64 unbondingDelay_, uint256 minStake_) external onlyOwner {
        _checkMaxLock(maxLock_);
        _checkMinStake(minStake_);
        uint64 window = market == address(0) ? 0 : IChallengeWindow(market).challengeWindow();
        if (unbondingDelay_ < window || unbondingDelay_ > MAX_UNBONDING_DELAY) {
            revert ParamOutOfBounds("unbondingDelay", window, MAX_UNBONDING_DELAY, unbondingDelay_);
        }
        maxLock = maxLock_;
        unbondingDelay = unbondingDelay_;
        minStake = minStake_;
        emit ParamsUpdated(maxLock_, unbondingDelay_, minStake_);
    }

    // -------------------------------------------------------------------- views

    /// @notice Lock multiplier in basis points (10000 = 1x, up to 30000 = 3x),
    /// as fixed at the last lock or deposit; 1x once the lock ended.
    function multiplierBps(address operator) public view returns (uint256) {
        Neuron storage n = neurons[operator];
        if (block.timestamp >= n.lockEnd || n.multBps == 0) return BPS;
        return n.multBps;
    }

    /// @notice stake * multiplierBps / 10000 for a registered neuron with at
    /// least minStake, else 0 (only eligible stake earns and is drawn).
    function effectiveStake(address operator) public view returns (uint256) {
        Neuron storage n = neurons[operator];
        if (!n.registered || n.stake < minStake) return 0;
        return n.stake * multiplierBps(operator) / BPS;
    }

    /// @notice True in the first applyBlocks blocks of an epoch (trees may change).
    function inApplyPhase() public view returns (bool) {
        return block.number % epochBlocks < applyBlocks;
    }

    /// @notice Epoch of block `b`.
    function epochOf(uint256 b) public view returns (uint256) {
        return b / epochBlocks;
    }

    /// @notice First block >= b that lies in a draw phase (trees frozen).
    function targetBlock(uint256 b) public view returns (uint256) {
        uint256 off = b % epochBlocks;
        return off < applyBlocks ? b - off + applyBlocks : b;
    }

    /// @notice The tree a draw for `required` reads: 0 for no bits, else the
    /// bit whose tree has the fewest leaves (ties: the lowest bit).
    function treeFor(uint64 required) public view returns (uint256 id) {
        if (required == 0) return 0;
        uint256 best = type(uint256).max;
        for (uint256 b = 0; b < 64; b++) {
            if (required & (uint64(1) << uint64(b)) == 0) continue;
            uint256 c = trees[b + 1].count;
            if (c < best) {
                best = c;
                id = b + 1;
            }
        }
    }

    /// @notice Leaves and total weight of tree `id`.
    function treeStats(uint256 id) external view returns (uint256 count, uint256 total) {
        return (trees[id].count, trees[id].total());
    }

    /// @notice Tree weight of `operator` in tree `id`.
    function treeWeight(uint256 id, address operator) external view returns (uint256) {
        return trees[id].weightOf(operator);
    }

    /// @notice Draws `r` distinct neurons offering every bit of `required`,
    /// none in `exclude`, from tree treeFor(required), with seed `seed`.
    /// A drawn leaf that lacks a bit or is excluded is set aside and the draw
    /// goes on; at most 4r + exclude.length attempts. Returns an empty array
    /// when that does not yield r members. Same result for every caller.
    function drawMembers(bytes32 seed, uint256 r, uint64 required, address[] calldata exclude)
        external
        view
        returns (address[] memory members)
    {
        SortitionTree.Tree storage t = trees[treeFor(required)];
        uint256 maxAttempts = 4 * r + exclude.length;
        uint256[] memory drawn = new uint256[](maxAttempts);
        uint256[] memory drawnW = new uint256[](maxAttempts);
        members = new address[](r);
        uint256 remaining = t.total();
        uint256 got;
        for (uint256 i = 0; i < maxAttempts && got < r && remaining != 0; i++) {
            uint256 x = uint256(keccak256(abi.encodePacked(seed, i))) % remaining;
            (uint256 leaf, uint256 w) = t.pick(x, drawn, drawnW, i);
            drawn[i] = leaf;
            drawnW[i] = w;
            remaining -= w;
            address op = t.ownerOf[leaf];
            if (neurons[op].treeCaps & required != required || _contains(exclude, op)) continue;
            members[got++] = op;
        }
        if (got < r) members = new address[](0);
    }

    /// @notice The full record of an operator.
    function neuron(address operator) external view returns (Neuron memory) {
        return neurons[operator];
    }

    /// @notice True when `operator` is registered with at least minStake.
    function isStaked(address operator) external view returns (bool) {
        Neuron storage n = neurons[operator];
        return n.registered && n.stake >= minStake && n.stake != 0;
    }

    // ----------------------------------------------------------------- internal

    function _registered(address operator) private view returns (Neuron storage n) {
        n = neurons[operator];
        if (!n.registered) revert NotRegistered(operator);
    }

    function _checkMaxLock(uint64 v) private pure {
        if (v < MIN_MAX_LOCK || v > MAX_MAX_LOCK) revert ParamOutOfBounds("maxLock", MIN_MAX_LOCK, MAX_MAX_LOCK, v);
    }

    function _checkMinStake(uint256 v) private pure {
        if (v < MIN_MIN_STAKE || v > MAX_MIN_STAKE) {
            revert ParamOutOfBounds("minStake", MIN_MIN_STAKE, MAX_MIN_STAKE, v);
        }
    }

    function _checkCaps(uint64 caps) private pure {
        uint256 bits;
        for (uint64 x = caps; x != 0; x &= x - 1) {
            bits++;
        }
        if (bits > MAX_CAP_BITS) revert TooManyCapabilities(MAX_CAP_BITS, bits);
    }

    function _mult(uint64 remaining) private view returns (uint16) {
        uint256 len = remaining < maxLock ? remaining : maxLock;
        return uint16(BPS + 20_000 * len / maxLock);
    }

    function _contains(address[] calldata xs, address a) private pure returns (bool) {
        for (uint256 i = 0; i < xs.length; i++) {
            if (xs[i] == a) return true;
        }
        return false;
    }

    /// Pushes the effective stake to the rewards hook and to the trees (now
    /// in an apply phase, else queued).
    function _syncWeight(address operator) private {
        IStakeWeightHook hook = rewards;
        if (address(hook) != address(0)) hook.updateWeight(operator, effectiveStake(operator));
        if (inApplyPhase()) {
            _applyTree(operator);
        } else if (!neurons[operator].queued) {
            neurons[operator].queued = true;
            emit TreeUpdateQueued(operator);
        }
    }

    /// Writes the operator's current weight and capabilities into the trees.
    function _applyTree(address operator) private {
        Neuron storage n = neurons[operator];
        uint256 w = effectiveStake(operator) / WEIGHT_UNIT;
        if (w > SortitionTree.MAX_LEAF_WEIGHT) w = SortitionTree.MAX_LEAF_WEIGHT;
        uint64 caps = w == 0 ? 0 : n.capabilities;
        uint64 both = n.treeCaps | caps;
        trees[0].set(operator, w);
        for (uint256 b = 0; both >> b != 0; b++) {
            if (both & (uint64(1) << uint64(b)) == 0) continue;
            trees[b + 1].set(operator, caps & (uint64(1) << uint64(b)) != 0 ? w : 0);
        }
        n.treeCaps = caps;
        n.queued = false;
        emit TreeUpdated(operator, w, caps);
    }
}
