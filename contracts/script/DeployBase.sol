// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CommonBase} from "forge-std/Base.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {HAL9Token} from "../src/HAL9Token.sol";
import {NeuronRegistry} from "../src/NeuronRegistry.sol";
import {RewardsDistributor} from "../src/RewardsDistributor.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";
import {HAL9Governor} from "../src/HAL9Governor.sol";

/// Deploys and wires the whole hal9 contract set. Used by the deploy script
/// and by the tests, so the tests exercise the deployment that ships.
abstract contract DeployBase is CommonBase {
    struct Config {
        uint256 rewardPool;
        uint256 treasuryBucket;
        address[] genesis;
        uint256[] genesisAmounts;
        uint64 maxLock;
        uint64 unbondingDelay;
        uint256 minStake;
        uint64 treeEpochBlocks;
        uint64 treeApplyBlocks;
        uint64 epochLength;
        uint64 halvingEpochs;
        uint256 timelockDelay;
        uint48 votingDelay;
        uint32 votingPeriod;
        uint256 proposalThreshold;
        ComputationMarket.Params market;
    }

    struct Deployment {
        HAL9Token token;
        NeuronRegistry registry;
        RewardsDistributor rewards;
        ComputationMarket market;
        HAL9Governor governor;
        TimelockController timelock;
    }

    /// Defaults for a devnet; `genesis` receives the genesis bucket in equal parts.
    function defaultConfig(address[] memory genesis) internal pure returns (Config memory c) {
        c.rewardPool = 400_000_000 ether;
        c.treasuryBucket = 300_000_000 ether;
        c.genesis = genesis;
        c.genesisAmounts = new uint256[](genesis.length);
        uint256 genesisTotal = 300_000_000 ether;
        uint256 each = genesis.length == 0 ? 0 : genesisTotal / genesis.length;
        for (uint256 i = 0; i < genesis.length; i++) {
            c.genesisAmounts[i] = each;
        }
        // Whatever does not divide evenly stays with the treasury.
        c.treasuryBucket += genesisTotal - each * genesis.length;
        c.maxLock = 365 days;
        c.unbondingDelay = 1 days;
        c.minStake = 100 ether;
        c.treeEpochBlocks = 64;
        c.treeApplyBlocks = 8;
        c.epochLength = 1 days;
        c.halvingEpochs = 365;
        c.timelockDelay = 2 days;
        c.votingDelay = 1 days;
        c.votingPeriod = 7 days;
        c.proposalThreshold = 100_000 ether;
        c.market = ComputationMarket.Params({
            minReplicas: 3,
            maxReplicas: 15,
            burnBps: 100,
            treasuryBps: 200,
            slashBps: 1_000,
            livenessSlashBps: 50,
            challengerRewardBps: 5_000,
            challengeBondBps: 10_000,
            abandonBps: 500,
            servedBps: 2_000,
            maxLivenessPerDay: 10,
            drawDelay: 4,
            commitPeriod: 2 minutes,
            revealPeriod: 2 minutes,
            challengeWindow: 10 minutes,
            escalationPeriod: 30 minutes,
            maxTaskDuration: 1 days,
            minFee: 1 ether,
            minChallengeBond: 10 ether
        });
    }

    /// Deploys everything from `deployer` (the address whose creations these are).
    function deployAll(Config memory c, address deployer) internal returns (Deployment memory d) {
        address[] memory none = new address[](0);
        address[] memory anyone = new address[](1);
        d.timelock = new TimelockController(c.timelockDelay, none, anyone, deployer);

        // The reward pool is minted straight into the distributor, which is
        // created three deployments later.
        uint256 nonce = vm.getNonce(deployer);
        address predictedRewards = vm.computeCreateAddress(deployer, nonce + 2);
        d.token = new HAL9Token(
            predictedRewards, c.rewardPool, address(d.timelock), c.treasuryBucket, c.genesis, c.genesisAmounts
        );
        d.registry = new NeuronRegistry(
            IERC20(address(d.token)),
            address(d.timelock),
            c.maxLock,
            c.unbondingDelay,
            c.minStake,
            c.treeEpochBlocks,
            c.treeApplyBlocks
        );
        d.rewards =
            new RewardsDistributor(IERC20(address(d.token)), address(d.registry), c.epochLength, c.halvingEpochs);
        require(address(d.rewards) == predictedRewards, "reward pool address prediction failed");
        d.market = new ComputationMarket(
            IERC20(address(d.token)), d.registry, address(d.timelock), address(d.timelock), c.market
        );
        d.governor = new HAL9Governor(d.token, d.timelock, c.votingDelay, c.votingPeriod, c.proposalThreshold);

        d.registry.wire(address(d.market), d.rewards);
        d.timelock.grantRole(d.timelock.PROPOSER_ROLE(), address(d.governor));
        d.timelock.grantRole(d.timelock.CANCELLER_ROLE(), address(d.governor));
        d.timelock.renounceRole(d.timelock.DEFAULT_ADMIN_ROLE(), deployer);
    }
}
