// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Script, console2} from "forge-std/Script.sol";
import {DeployBase} from "./DeployBase.sol";

/// Deploys hal9 on a chain (anvil in the devnet) and writes the addresses as JSON.
///
/// Environment:
///   PRIVATE_KEY       deployer key (default: anvil account 0)
///   HAL9_GENESIS      comma-separated genesis addresses (default: anvil accounts 0..9)
///   HAL9_DEPLOY_OUT   output file under ./deployments (default: deployments/<chainid>.json)
///
///   forge script script/Deploy.s.sol --rpc-url http://127.0.0.1:8545 --broadcast
contract Deploy is Script, DeployBase {
    uint256 internal constant ANVIL_KEY0 = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;

    function run() external returns (Deployment memory d) {
        uint256 key = vm.envOr("PRIVATE_KEY", ANVIL_KEY0);
        address deployer = vm.addr(key);
        address[] memory genesis = vm.envOr("HAL9_GENESIS", ",", _anvilAccounts());
        Config memory c = defaultConfig(genesis);

        vm.startBroadcast(key);
        d = deployAll(c, deployer);
        vm.stopBroadcast();

        string memory obj = "hal9";
        vm.serializeUint(obj, "chainId", block.chainid);
        vm.serializeUint(obj, "deployBlock", block.number);
        vm.serializeAddress(obj, "token", address(d.token));
        vm.serializeAddress(obj, "registry", address(d.registry));
        vm.serializeAddress(obj, "rewards", address(d.rewards));
        vm.serializeAddress(obj, "market", address(d.market));
        vm.serializeAddress(obj, "governor", address(d.governor));
        string memory json = vm.serializeAddress(obj, "timelock", address(d.timelock));
        string memory out =
            vm.envOr("HAL9_DEPLOY_OUT", string.concat("deployments/", vm.toString(block.chainid), ".json"));
        vm.writeJson(json, out);
        console2.log("hal9 deployed; addresses written to", out);
    }

    function _anvilAccounts() internal returns (address[] memory a) {
        string memory mnemonic = "test test test test test test test test test test test junk";
        a = new address[](10);
        for (uint32 i = 0; i < 10; i++) {
            a[i] = vm.addr(vm.deriveKey(mnemonic, i));
        }
    }
}
