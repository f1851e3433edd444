// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IStakeWeightHook} from "./NeuronRegistry.sol";

/// @title RewardsDistributor
/// @notice Pays the emission schedule out of the reward pool (its own token
/// balance at deployment) in proportion to effective stake. Epoch e emits
/// R0 >> (e / H) (zero from the 64th halving on), with R0 = pool / (2H),
/// so the schedule can never ask for more than the pool; each completed
/// epoch's emission is split over the weights current when it is accrued.
contract RewardsDistributor is IStakeWeightHook, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// Fixed-point scale of the reward-per-weight accumulator.
    uint256 public constant ACC_SCALE = 1e27;

    /// The reward token (HAL9).
    IERC20 public immutable token;
    /// The registry, the only source of weights.
    address public immutable registry;
    /// Start of epoch 0 (unix seconds).
    uint64 public immutable startTime;
    /// Length of an epoch in seconds.
    uint64 public immutable epochLength;
    /// H: epochs between halvings.
    uint64 public immutable halvingEpochs;
    /// R0: emission of each epoch before the first halving.
    uint256 public immutable initialEpochReward;
    /// Reward pool at deployment.
    uint256 public immutable pool;

    /// Emission credited to weights so far (never above `pool`).
    uint256 public allocated;
    /// Paid out by claims so far.
    uint256 public claimed;
    /// Epochs accrued so far.
    uint256 public lastEpoch;
    /// Sum of all weights.
    uint256 public totalWeight;
    /// Reward per unit of weight, scaled by ACC_SCALE.
    uint256 public accPerWeight;

    struct Account {
        uint256 weight;
        uint256 debt;
        uint256 owed;
    }

    mapping(address => Account) private accounts;

    event Accrued(uint256 fromEpoch, uint256 toEpoch, uint256 emission, uint256 totalWeight);
    event WeightUpdated(address indexed operator, uint256 weight);
    event Claimed(address indexed operator, uint256 amount);

    error NotRegistry(address caller);
    error NothingToClaim(address operator);
    error InvalidSchedule(uint256 pool, uint64 epochLength, uint64 halvingEpochs);

    /// @dev The token must already hold the reward pool in this address.
    constructor(IERC20 token_, address registry_, uint64 epochLength_, uint64 halvingEpochs_) {
        uint256 pool_ = token_.balanceOf(address(this));
        if (pool_ == 0 || epochLength_ == 0 || halvingEpochs_ == 0) {
            revert InvalidSchedule(pool_, epochLength_, halvingEpochs_);
        }
        token = token_;
        registry = registry_;
        startTime = uint64(block.timestamp);
        epochLength = epochLength_;
        halvingEpochs = halvingEpochs_;
        pool = pool_;
        initialEpochReward = pool_ / (2 * uint256(halvingEpochs_));
    }

    /// @notice Emission of epoch `epoch`: R0 >> (epoch / H), 0 after 64 halvings.
    function epochReward(uint256 epoch) public view returns (uint256) {
        uint256 k = epoch / halvingEpochs;
        if (k >= 64) return 0;
        return initialEpochReward >> k;
    }

    /// @notice Total emission of epochs [0, n).
    function cumulativeEmission(uint256 n) public view returns (uint256 sum) {
        uint256 h = halvingEpochs;
        uint256 full = n / h;
        uint256 r0 = initialEpochReward;
        uint256 limit = full < 64 ? full : 64;
        for (uint256 k = 0; k < limit; k++) {
            sum += (r0 >> k) * h;
        }
        if (full < 64) sum += (r0 >> full) * (n % h);
    }

    /// @notice Number of completed epochs.
    function currentEpoch() public view returns (uint256) {
        return (block.timestamp - startTime) / epochLength;
    }

    /// @notice Credits the emission of completed epochs to the current weights.
    function accrue() public {
        uint256 e = currentEpoch();
        uint256 from = lastEpoch;
        if (e <= from) return;
        lastEpoch = e;
        uint256 w = totalWeight;
        if (w == 0) {
            // Nobody to pay: this emission stays in the pool unallocated.
            emit Accrued(from, e, 0, 0);
            return;
        }
        uint256 emission = cumulativeEmission(e) - cumulativeEmission(from);
        uint256 left = pool - allocated;
        if (emission > left) emission = left;
        accPerWeight += Math.mulDiv(emission, ACC_SCALE, w);
        allocated += emission;
        emit Accrued(from, e, emission, w);
    }

    /// @inheritdoc IStakeWeightHook
    function updateWeight(address operator, uint256 weight) external {
        if (msg.sender != registry) revert NotRegistry(msg.sender);
        accrue();
        Account storage a = accounts[operator];
        _settle(a);
        totalWeight = totalWeight - a.weight + weight;
        a.weight = weight;
        emit WeightUpdated(operator, weight);
    }

    /// @notice Pays msg.sender everything it has earned so far.
    function claim() external nonReentrant returns (uint256 amount) {
        accrue();
        Account storage a = accounts[msg.sender];
        _settle(a);
        amount = a.owed;
        if (amount == 0) revert NothingToClaim(msg.sender);
        a.owed = 0;
        claimed += amount;
        token.safeTransfer(msg.sender, amount);
        emit Claimed(msg.sender, amount);
    }

    /// @notice What `operator` could claim now.
    function pending(address operator) external view returns (uint256) {
        Account storage a = accounts[operator];
        uint256 acc = accPerWeight;
        uint256 e = currentEpoch();
        uint256 w = totalWeight;
        if (e > lastEpoch && w != 0) {
            uint256 emission = cumulativeEmission(e) - cumulativeEmission(lastEpoch);
            uint256 left = pool - allocated;
            if (emission > left) emission = left;
            acc += Math.mulDiv(emission, ACC_SCALE, w);
        }
        return a.owed + Math.mulDiv(a.weight, acc - a.debt, ACC_SCALE);
    }

    /// @notice Reward weight recorded for `operator`.
    function weightOf(address operator) external view returns (uint256) {
        return accounts[operator].weight;
    }

    function _settle(Account storage a) private {
        uint256 acc = accPerWeight;
        if (a.weight != 0) a.owed += Math.mulDiv(a.weight, acc - a.debt, ACC_SCALE);
        a.debt = acc;
    }
}
