// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

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
/// Effective stake = stake * multBps / 10000, multBps = 10000 + 20000 * lock / maxLock
/// while the lock runs (1x to 3x), 10000 after it ended.
contract NeuronRegistry is Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

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

    /// One registered operator.
    struct Neuron {
        bytes peerId;
        uint64 capabilities;
        uint64 lockEnd;
        uint64 lockDuration;
        uint64 unbondingEnd;
        uint32 activeTasks;
        bool registered;
        uint256 stake;
        uint256 unbonding;
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

    mapping(address => Neuron) private neurons;
    mapping(bytes32 => address) public peerOwner;
    address[] private active;
    mapping(address => uint256) private activePos; // index + 1

    event Wired(address market, address rewards);
    event Registered(address indexed operator, bytes peerId, uint64 capabilities);
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
    error PeerIdTaken(address owner);
    error ZeroAmount();
    error LockTooLong(uint64 max, uint64 found);
    error LockShortened(uint64 currentEnd, uint64 newEnd);
    error LockActive(uint64 lockEnd, uint64 now_);
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingUnbonding();
    error StillUnbonding(uint64 unbondingEnd, uint64 now_);
    error ActiveTasks(uint32 count);
    error BpsTooHigh(uint256 max, uint256 found);
    error ParamOutOfBounds(string name, uint256 min, uint256 max, uint256 found);

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket(msg.sender);
        _;
    }

    /// @param owner_ the governance timelock.
    constructor(IERC20 token_, address owner_, uint64 maxLock_, uint64 unbondingDelay_, uint256 minStake_)
        Ownable(owner_)
    {
        token = token_;
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

    /// @notice Registers msg.sender as a neuron operator with its libp2p PeerId.
    function register(bytes calldata peerId, uint64 capabilities) external {
        Neuron storage n = neurons[msg.sender];
        if (n.registered) revert AlreadyRegistered(msg.sender);
        if (peerId.length == 0 || peerId.length > MAX_PEER_ID_LEN) {
            revert InvalidPeerId(MAX_PEER_ID_LEN, peerId.length);
        }
        bytes32 key = keccak256(peerId);
        address owner_ = peerOwner[key];
        if (owner_ != address(0)) revert PeerIdTaken(owner_);
        peerOwner[key] = msg.sender;
        n.registered = true;
        n.peerId = peerId;
        n.capabilities = capabilities;
        active.push(msg.sender);
        activePos[msg.sender] = active.length;
        emit Registered(msg.sender, peerId, capabilities);
        // Stake left from an earlier registration counts again.
        _syncWeight(msg.sender);
    }

    /// @notice Replaces the capability bits of msg.sender's neuron.
    function setCapabilities(uint64 capabilities) external {
        Neuron storage n = _registered(msg.sender);
        n.capabilities = capabilities;
        emit CapabilitiesUpdated(msg.sender, capabilities);
    }

    /// @notice Adds `amount` to msg.sender's stake (never overwrites it).
    function stake(uint256 amount) external nonReentrant {
        Neuron storage n = _registered(msg.sender);
        if (amount == 0) revert ZeroAmount();
        n.stake += amount;
        totalHeld += amount;
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

    /// @notice Pays out the unbonded stake once the delay passed and no task
    /// that could still slash it is open.
    function withdraw() external nonReentrant {
        Neuron storage n = neurons[msg.sender];
        uint256 amount = n.unbonding;
        if (amount == 0) revert NothingUnbonding();
        if (block.timestamp < n.unbondingEnd) revert StillUnbonding(n.unbondingEnd, uint64(block.timestamp));
        if (n.activeTasks != 0) revert ActiveTasks(n.activeTasks);
        n.unbonding = 0;
        totalHeld -= amount;
        token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    /// @notice Leaves the committee pool; all stake starts unbonding. Needs an ended lock.
    function deregister() external {
        Neuron storage n = _registered(msg.sender);
        if (block.timestamp < n.lockEnd) revert LockActive(n.lockEnd, uint64(block.timestamp));
        n.registered = false;
        delete peerOwner[keccak256(n.peerId)];
        uint256 pos = activePos[msg.sender];
        address last = active[active.length - 1];
        active[pos - 1] = last;
        activePos[last] = pos;
        active.pop();
        delete activePos[msg.sender];
        uint256 amount = n.stake;
        if (amount != 0) {
            n.stake = 0;
            n.unbonding += amount;
            n.unbondingEnd = uint64(block.timestamp) + unbondingDelay;
        }
        emit Deregistered(msg.sender, n.unbonding);
        _syncWeight(msg.sender);
    }

    /// @notice Re-reads an operator's effective stake into the rewards hook
    /// (anyone may call it, for example when a lock ended).
    function poke(address operator) external {
        _syncWeight(operator);
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

    /// @notice Marks that `operator` sits on an open task (blocks withdraw). Only the market.
    function noteAssigned(address operator) external onlyMarket {
        neurons[operator].activeTasks += 1;
    }

    /// @notice Marks that a task of `operator` closed. Only the market.
    function noteReleased(address operator) external onlyMarket {
        neurons[operator].activeTasks -= 1;
    }

    // -------------------------------------------------------------- governance

    /// @notice Sets the staking parameters within fixed bounds. Only the timelock.
    function setParams(uint64 maxLock_, uint64 unbondingDelay_, uint256 minStake_) external onlyOwner {
        _checkMaxLock(maxLock_);
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

    /// @notice Lock multiplier in basis points (10000 = 1x, 30000 = 3x).
    function multiplierBps(address operator) public view returns (uint256) {
        Neuron storage n = neurons[operator];
        if (block.timestamp >= n.lockEnd) return BPS;
        uint256 lockLen = n.lockDuration < maxLock ? n.lockDuration : maxLock;
        return BPS + 20_000 * lockLen / maxLock;
    }

    /// @notice stake * multiplierBps / 10000 for a registered neuron, else 0.
    function effectiveStake(address operator) public view returns (uint256) {
        Neuron storage n = neurons[operator];
        if (!n.registered) return 0;
        return n.stake * multiplierBps(operator) / BPS;
    }

    /// @notice Registered neurons offering all bits of `required`, with at
    /// least minStake, and their effective stakes, in registry order. This
    /// list and order are the input of the committee draw.
    function candidates(uint64 required) public view returns (address[] memory ops, uint256[] memory weights) {
        uint256 len = active.length;
        ops = new address[](len);
        weights = new uint256[](len);
        uint256 count;
        uint256 min = minStake;
        for (uint256 i = 0; i < len; i++) {
            address op = active[i];
            Neuron storage n = neurons[op];
            if (n.capabilities & required != required || n.stake == 0 || n.stake < min) continue;
            ops[count] = op;
            weights[count] = effectiveStake(op);
            count++;
        }
        assembly ("memory-safe") {
            mstore(ops, count)
            mstore(weights, count)
        }
    }

    /// @notice The full record of an operator.
    function neuron(address operator) external view returns (Neuron memory) {
        return neurons[operator];
    }

    /// @notice True when `operator` is registered and has stake.
    function isStaked(address operator) external view returns (bool) {
        Neuron storage n = neurons[operator];
        return n.registered && n.stake != 0;
    }

    /// @notice Number of registered neurons.
    function activeCount() external view returns (uint256) {
        return active.length;
    }

    /// @notice Registered operator at `index` in registry order.
    function activeAt(uint256 index) external view returns (address) {
        return active[index];
    }

    // ----------------------------------------------------------------- internal

    function _registered(address operator) private view returns (Neuron storage n) {
        n = neurons[operator];
        if (!n.registered) revert NotRegistered(operator);
    }

    function _checkMaxLock(uint64 v) private pure {
        if (v < MIN_MAX_LOCK || v > MAX_MAX_LOCK) revert ParamOutOfBounds("maxLock", MIN_MAX_LOCK, MAX_MAX_LOCK, v);
    }

    function _syncWeight(address operator) private {
        IStakeWeightHook hook = rewards;
        if (address(hook) != address(0)) hook.updateWeight(operator, effectiveStake(operator));
    }
}
