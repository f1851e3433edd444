// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title HAL9Token
/// @notice The hal9 token: exactly 1,000,000,000 HAL9 minted once, in the
/// constructor, into fixed buckets. There is no mint function; supply can
/// only fall, by burns. Votes are checkpointed (ERC20Votes), so governance
/// reads balances at a past block and flash-borrowed tokens carry no weight.
contract HAL9Token is ERC20, ERC20Burnable, ERC20Permit, ERC20Votes {
    /// Total supply minted at deployment, in the smallest unit (18 decimals).
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000 ether;

    /// Bucket lists differ in length, a recipient is zero, or amounts do not add up.
    error InvalidBuckets(uint256 expectedTotal, uint256 foundTotal);

    /// One bucket of the genesis distribution.
    event BucketMinted(address indexed recipient, uint256 amount, string label);

    /// @param rewardPool receives `rewardAmount` (the RewardsDistributor).
    /// @param treasury receives `treasuryAmount` (the DAO timelock).
    /// @param genesis genesis allocation recipients.
    /// @param genesisAmounts amounts for `genesis`, same length.
    constructor(
        address rewardPool,
        uint256 rewardAmount,
        address treasury,
        uint256 treasuryAmount,
        address[] memory genesis,
        uint256[] memory genesisAmounts
    ) ERC20("hal9", "HAL9") ERC20Permit("hal9") {
        if (genesis.length != genesisAmounts.length || rewardPool == address(0) || treasury == address(0)) {
            revert InvalidBuckets(TOTAL_SUPPLY, 0);
        }
        uint256 sum = rewardAmount + treasuryAmount;
        for (uint256 i = 0; i < genesisAmounts.length; i++) {
            sum += genesisAmounts[i];
        }
        if (sum != TOTAL_SUPPLY) revert InvalidBuckets(TOTAL_SUPPLY, sum);
        _mint(rewardPool, rewardAmount);
        emit BucketMinted(rewardPool, rewardAmount, "reward-pool");
        _mint(treasury, treasuryAmount);
        emit BucketMinted(treasury, treasuryAmount, "treasury");
        for (uint256 i = 0; i < genesis.length; i++) {
            _mint(genesis[i], genesisAmounts[i]);
            emit BucketMinted(genesis[i], genesisAmounts[i], "genesis");
        }
    }

    /// @notice ERC-6372 clock: timestamps (protocol v1.1), so voting periods
    /// are in seconds whatever the chain's block time.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice ERC-6372 clock mode.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
