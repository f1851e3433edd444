// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {DeployBase} from "../script/DeployBase.sol";
import {TaskSpec, Dissent} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";

/// Shared fixture: the real deployment plus funded, registered, staked neurons.
abstract contract Hal9Test is Test, DeployBase {
    Deployment internal d;
    Config internal cfg;
    address internal whale = makeAddr("whale");
    address internal client = makeAddr("client");
    address[] internal ops;
    mapping(address => uint256) internal keyOf;

    uint256 internal constant STAKE = 1_000 ether;

    function setUp() public virtual {
        address[] memory genesis = new address[](1);
        genesis[0] = whale;
        cfg = defaultConfig(genesis);
        d = deployAll(cfg, address(this));
        vm.prank(whale);
        d.token.transfer(client, 1_000_000 ether);
        vm.prank(client);
        d.token.approve(address(d.market), type(uint256).max);
    }

    /// Creates `n` more operators, each registered and staked with `amount`.
    function _spawn(uint256 n, uint256 amount) internal {
        uint256 start = ops.length;
        for (uint256 i = start; i < start + n; i++) {
            (address op, uint256 pk) = makeAddrAndKey(string.concat("op", vm.toString(i)));
            ops.push(op);
            keyOf[op] = pk;
            vm.prank(whale);
            d.token.transfer(op, amount + 1_000 ether);
            vm.startPrank(op);
            d.registry.register(abi.encodePacked(bytes2(0x0024), keccak256(abi.encode(op))), 1);
            d.token.approve(address(d.registry), type(uint256).max);
            d.token.approve(address(d.market), type(uint256).max);
            if (amount != 0) d.registry.stake(amount);
            vm.stopPrank();
        }
    }

    function _spec(uint16 r, uint256 nonce) internal view returns (TaskSpec memory s) {
        s = TaskSpec({
            programCid: hex"01551220aabbccdd",
            inputHash: keccak256("input"),
            inputCid: "",
            replicas: r,
            fuelLimit: 1_000_000,
            capabilities: 1,
            submitter: client,
            nonce: nonce,
            deadline: uint64(block.timestamp + 1 hours)
        });
    }

    function _post(uint16 r, uint256 nonce, uint256 fee) internal returns (bytes32 id, address[] memory committee) {
        TaskSpec memory s = _spec(r, nonce);
        vm.prank(client);
        id = d.market.postTask(s, fee);
        committee = d.market.committeeOf(id);
    }

    function _sign(address signer, bytes32 id, bytes32 result, bytes memory cid) internal view returns (bytes memory) {
        bytes32 digest = d.market.attestationDigest(id, result, cid);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keyOf[signer], digest);
        return abi.encodePacked(r, s, v);
    }

    /// Signatures of the first `count` members of `members`.
    function _sigs(address[] memory members, uint256 count, bytes32 id, bytes32 result, bytes memory cid)
        internal
        view
        returns (bytes[] memory sigs)
    {
        sigs = new bytes[](count);
        for (uint256 i = 0; i < count; i++) {
            sigs[i] = _sign(members[i], id, result, cid);
        }
    }

    function _noDissent() internal pure returns (Dissent[] memory) {
        return new Dissent[](0);
    }

    function _stake(address op) internal view returns (uint256) {
        return d.registry.neuron(op).stake;
    }
}
