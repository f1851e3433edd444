// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {NeuronRegistry, IStakeWeightHook} from "../src/NeuronRegistry.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";
import {TaskSpec, Dissent} from "../src/Hal9Types.sol";
import {DeployBase} from "../script/DeployBase.sol";

/// A token that calls back into a target on every transfer once armed.
contract HookToken is ERC20, ERC20Burnable {
    address public target;
    bytes public data;
    bool public attempted;
    bytes public innerRevert;

    constructor() ERC20("hook", "HOOK") {
        _mint(msg.sender, 1e30);
    }

    function arm(address target_, bytes calldata data_) external {
        target = target_;
        data = data_;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        address t = target;
        if (t != address(0) && from == t) {
            target = address(0);
            attempted = true;
            (bool ok, bytes memory ret) = t.call(data);
            require(!ok, "reentrant call succeeded");
            innerRevert = ret;
        }
    }
}

contract ReentrancyTest is Test, DeployBase {
    HookToken internal tok;
    NeuronRegistry internal reg;
    ComputationMarket internal mkt;
    address internal client = makeAddr("client");
    address[] internal ops;
    uint256[] internal keys;

    function setUp() public {
        tok = new HookToken();
        reg = new NeuronRegistry(IERC20(address(tok)), address(this), 365 days, 1 days, 1);
        ComputationMarket.Params memory p = defaultConfig(new address[](0)).market;
        mkt = new ComputationMarket(IERC20(address(tok)), reg, makeAddr("treasury"), address(this), p);
        reg.wire(address(mkt), IStakeWeightHook(address(0)));
        for (uint256 i = 0; i < 3; i++) {
            (address op, uint256 k) = makeAddrAndKey(string.concat("rop", vm.toString(i)));
            ops.push(op);
            keys.push(k);
            tok.transfer(op, 100 ether);
            vm.startPrank(op);
            reg.register(abi.encodePacked(op), 0);
            tok.approve(address(reg), type(uint256).max);
            reg.stake(100 ether);
            vm.stopPrank();
        }
        tok.transfer(client, 1_000 ether);
        vm.prank(client);
        tok.approve(address(mkt), type(uint256).max);
    }

    function test_attack_reentrantFinalizeIsBlocked() public {
        TaskSpec memory s = TaskSpec(hex"01", bytes32(0), "", 3, 1, 0, client, 0, uint64(block.timestamp + 100));
        vm.prank(client);
        bytes32 id = mkt.postTask(s, 100 ether);
        address[] memory c = mkt.committeeOf(id);
        bytes[] memory sigs = new bytes[](3);
        for (uint256 i = 0; i < 3; i++) {
            uint256 k;
            for (uint256 j = 0; j < 3; j++) {
                if (ops[j] == c[i]) k = keys[j];
            }
            (uint8 v, bytes32 r, bytes32 ss) = vm.sign(k, mkt.attestationDigest(id, bytes32(uint256(7)), hex"01"));
            sigs[i] = abi.encodePacked(r, ss, v);
        }
        mkt.submitVerdict(id, bytes32(uint256(7)), hex"01", sigs, new Dissent[](0));
        vm.warp(block.timestamp + 11 minutes);
        // The first payout out of the market re-enters finalize.
        tok.arm(address(mkt), abi.encodeCall(ComputationMarket.finalize, (id)));
        uint256 before = tok.balanceOf(c[0]);
        mkt.finalize(id);
        assertTrue(tok.attempted());
        assertEq(bytes4(tok.innerRevert()), ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        uint256 each = uint256(97 ether) / 3;
        assertEq(tok.balanceOf(c[0]), before + each, "paid exactly once");
        assertEq(tok.balanceOf(address(mkt)), 0);
    }

    function test_attack_reentrantWithdrawIsBlocked() public {
        vm.startPrank(ops[0]);
        reg.requestUnbond(100 ether);
        vm.warp(block.timestamp + 1 days);
        vm.stopPrank();
        tok.arm(address(reg), abi.encodeCall(NeuronRegistry.withdraw, ()));
        vm.prank(ops[0]);
        reg.withdraw();
        assertEq(bytes4(tok.innerRevert()), ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        assertEq(tok.balanceOf(ops[0]), 100 ether);
        assertEq(tok.balanceOf(address(reg)), 200 ether);
    }
}
