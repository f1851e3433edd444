// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {DeployBase} from "../script/DeployBase.sol";
import {TaskSpec, Dissent} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";

/// Drives the deployed system with random but well-formed actions.
contract Handler is Test {
    DeployBase.Deployment internal d;
    address internal whale;
    address internal client;
    address[] public ops;
    mapping(address => uint256) internal keyOf;
    bytes32[] public taskIds;
    uint256 internal nonce;

    uint256 public lastSupply;
    bool public supplyRose;
    bool public payoutAboveEscrow;
    uint256 public finalized;

    constructor(
        DeployBase.Deployment memory d_,
        address whale_,
        address client_,
        address[] memory ops_,
        uint256[] memory keys_
    ) {
        d = d_;
        whale = whale_;
        client = client_;
        for (uint256 i = 0; i < ops_.length; i++) {
            ops.push(ops_[i]);
            keyOf[ops_[i]] = keys_[i];
        }
        lastSupply = d.token.totalSupply();
    }

    modifier track() {
        _;
        uint256 s = d.token.totalSupply();
        if (s > lastSupply) supplyRose = true;
        lastSupply = s;
    }

    function _op(uint256 i) internal view returns (address) {
        return ops[i % ops.length];
    }

    function stake(uint256 i, uint256 amount) external track {
        address op = _op(i);
        amount = bound(amount, 1, d.token.balanceOf(op) == 0 ? 1 : d.token.balanceOf(op));
        vm.prank(op);
        d.registry.stake(amount);
    }

    function lock(uint256 i, uint64 dur) external track {
        vm.prank(_op(i));
        d.registry.lock(uint64(bound(dur, 1, 365 days)));
    }

    function unbond(uint256 i, uint256 amount) external track {
        address op = _op(i);
        uint256 st = d.registry.neuron(op).stake;
        vm.prank(op);
        d.registry.requestUnbond(bound(amount, 1, st == 0 ? 1 : st));
    }

    function withdraw(uint256 i) external track {
        vm.prank(_op(i));
        d.registry.withdraw();
    }

    function deregister(uint256 i) external track {
        vm.prank(_op(i));
        d.registry.deregister();
    }

    function reregister(uint256 i) external track {
        address op = _op(i);
        vm.prank(op);
        d.registry.register(abi.encodePacked(op), 0);
    }

    function join(uint256 t) external track {
        if (taskIds.length == 0) return;
        bytes32 id = taskIds[t % taskIds.length];
        address[] memory c = d.market.committeeOf(id);
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _sign(c[c.length - 1], id, keccak256("res"));
        d.market.joinVerdict(id, hex"01", sigs);
    }

    function claim(uint256 i) external track {
        vm.prank(_op(i));
        d.rewards.claim();
    }

    function burn(uint256 amount) external track {
        vm.prank(whale);
        d.token.burn(bound(amount, 0, 1_000 ether));
    }

    function warp(uint256 secs) external track {
        vm.warp(block.timestamp + bound(secs, 1, 2 days));
        vm.roll(block.number + 1);
    }

    function post(uint16 r, uint256 fee) external track {
        r = uint16(bound(r, 3, 5));
        TaskSpec memory s = TaskSpec(
            hex"0155", keccak256(abi.encode(nonce)), "", r, 1, 0, client, nonce++, uint64(block.timestamp + 1 hours)
        );
        vm.prank(client);
        bytes32 id = d.market.postTask(s, bound(fee, 0.001 ether, 10_000 ether));
        taskIds.push(id);
    }

    function verdict(uint256 t, uint256 signers, bool dissent) external track {
        if (taskIds.length == 0) return;
        bytes32 id = taskIds[t % taskIds.length];
        address[] memory c = d.market.committeeOf(id);
        uint256 q = d.market.quorum(c.length);
        uint256 n = bound(signers, q, c.length);
        bytes32 res = keccak256("res");
        bytes[] memory sigs = new bytes[](n);
        for (uint256 i = 0; i < n; i++) {
            sigs[i] = _sign(c[i], id, res);
        }
        Dissent[] memory ds = new Dissent[](dissent && n < c.length ? 1 : 0);
        if (ds.length == 1) ds[0] = Dissent(keccak256("x"), hex"01", _sign(c[n], id, keccak256("x")));
        d.market.submitVerdict(id, res, hex"01", sigs, ds);
    }

    function challenge(uint256 t, uint256 who) external track {
        if (taskIds.length == 0) return;
        vm.prank(_op(who));
        d.market.challenge(taskIds[t % taskIds.length]);
    }

    function escalate(uint256 t, bool agree) external track {
        if (taskIds.length == 0) return;
        bytes32 id = taskIds[t % taskIds.length];
        address[] memory e = d.market.getTask(id).escalation;
        uint256 q = d.market.quorum(e.length);
        bytes32 res = agree ? keccak256("res") : keccak256("other");
        bytes[] memory sigs = new bytes[](q);
        for (uint256 i = 0; i < q; i++) {
            sigs[i] = _sign(e[i], id, res);
        }
        d.market.submitEscalationVerdict(id, res, hex"01", sigs);
    }

    function finalize(uint256 t) external track {
        if (taskIds.length == 0) return;
        bytes32 id = taskIds[t % taskIds.length];
        ComputationMarket.Task memory task = d.market.getTask(id);
        uint256 before = d.token.balanceOf(address(d.market));
        d.market.finalize(id);
        uint256 out = before - d.token.balanceOf(address(d.market));
        // Slashed stake passes through the market on a won challenge, so
        // compare what left the market's own escrow with what this task held.
        if (out > task.fee + task.bond) payoutAboveEscrow = true;
        finalized++;
    }

    function _sign(address who, bytes32 id, bytes32 res) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(keyOf[who], d.market.attestationDigest(id, res, hex"01"));
        return abi.encodePacked(r, s, v);
    }
}

contract InvariantsTest is Test, DeployBase {
    Deployment internal d;
    Handler internal h;
    address[] internal ops;

    function setUp() public {
        address whale = makeAddr("whale");
        address client = makeAddr("client");
        address[] memory genesis = new address[](1);
        genesis[0] = whale;
        d = deployAll(defaultConfig(genesis), address(this));
        uint256[] memory keys = new uint256[](12);
        for (uint256 i = 0; i < 12; i++) {
            (address op, uint256 k) = makeAddrAndKey(string.concat("iop", vm.toString(i)));
            ops.push(op);
            keys[i] = k;
            vm.prank(whale);
            d.token.transfer(op, 10_000 ether);
            vm.startPrank(op);
            d.registry.register(abi.encodePacked(op), 0);
            d.token.approve(address(d.registry), type(uint256).max);
            d.token.approve(address(d.market), type(uint256).max);
            d.registry.stake(1_000 ether);
            vm.stopPrank();
        }
        vm.prank(whale);
        d.token.transfer(client, 10_000_000 ether);
        vm.prank(client);
        d.token.approve(address(d.market), type(uint256).max);
        h = new Handler(d, whale, client, ops, keys);
        targetContract(address(h));
    }

    function invariant_supplyOnlyFallsByBurns() public view {
        assertFalse(h.supplyRose(), "supply rose");
        assertLe(d.token.totalSupply(), 1_000_000_000 ether);
    }

    function invariant_registryHoldsSumOfStakes() public view {
        uint256 sum;
        for (uint256 i = 0; i < ops.length; i++) {
            sum += d.registry.neuron(ops[i]).stake + d.registry.neuron(ops[i]).unbonding;
        }
        assertEq(d.registry.totalHeld(), sum);
        assertEq(d.token.balanceOf(address(d.registry)), sum);
    }

    function invariant_payoutsNeverExceedEscrow() public view {
        assertFalse(h.payoutAboveEscrow(), "a task paid out more than it escrowed");
        assertEq(d.token.balanceOf(address(d.market)), d.market.escrowed(), "escrow fully backed");
    }

    function invariant_rewardsNeverExceedPool() public view {
        assertLe(d.rewards.allocated(), d.rewards.pool());
        assertLe(d.rewards.claimed(), d.rewards.allocated());
        assertEq(d.token.balanceOf(address(d.rewards)), d.rewards.pool() - d.rewards.claimed());
    }
}
