// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hal9Test} from "./Hal9Test.sol";
import {HAL9Token} from "../src/HAL9Token.sol";

contract HAL9TokenTest is Hal9Test {
    function test_supplyMintedOnceIntoBuckets() public view {
        assertEq(d.token.totalSupply(), 1_000_000_000 ether);
        assertEq(d.token.balanceOf(address(d.rewards)), 400_000_000 ether);
        assertEq(d.token.balanceOf(address(d.timelock)), 300_000_000 ether);
        assertEq(d.token.balanceOf(whale) + d.token.balanceOf(client), 300_000_000 ether);
        assertEq(d.rewards.pool(), 400_000_000 ether);
    }

    function test_noMintFunction() public {
        (bool ok,) = address(d.token).call(abi.encodeWithSignature("mint(address,uint256)", whale, 1));
        assertFalse(ok);
        assertEq(d.token.totalSupply(), 1_000_000_000 ether);
    }

    function test_RevertWhen_bucketsDoNotAddUp() public {
        address[] memory g = new address[](1);
        g[0] = whale;
        uint256[] memory a = new uint256[](1);
        a[0] = 1;
        vm.expectRevert(
            abi.encodeWithSelector(HAL9Token.InvalidBuckets.selector, 1_000_000_000 ether, 900_000_000 ether + 1)
        );
        new HAL9Token(address(1), 500_000_000 ether, address(2), 400_000_000 ether, g, a);
        uint256[] memory two = new uint256[](2);
        vm.expectRevert(abi.encodeWithSelector(HAL9Token.InvalidBuckets.selector, 1_000_000_000 ether, 0));
        new HAL9Token(address(1), 500_000_000 ether, address(2), 500_000_000 ether, g, two);
        vm.expectRevert(abi.encodeWithSelector(HAL9Token.InvalidBuckets.selector, 1_000_000_000 ether, 0));
        new HAL9Token(address(0), 500_000_000 ether, address(2), 500_000_000 ether, new address[](0), new uint256[](0));
    }

    function testFuzz_burnOnlyLowersSupply(uint256 amount) public {
        uint256 bal = d.token.balanceOf(whale);
        amount = bound(amount, 0, bal);
        vm.prank(whale);
        d.token.burn(amount);
        assertEq(d.token.totalSupply(), 1_000_000_000 ether - amount);
        assertEq(d.token.balanceOf(whale), bal - amount);
    }

    function test_permitSetsAllowance() public {
        (address owner, uint256 pk) = makeAddrAndKey("permit-owner");
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                owner,
                whale,
                5 ether,
                d.token.nonces(owner),
                deadline
            )
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", d.token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        d.token.permit(owner, whale, 5 ether, deadline, v, r, s);
        assertEq(d.token.allowance(owner, whale), 5 ether);
        assertEq(d.token.nonces(owner), 1);
    }

    function test_votesFollowDelegation() public {
        vm.prank(whale);
        d.token.delegate(whale);
        assertEq(d.token.getVotes(whale), d.token.balanceOf(whale));
        vm.warp(block.timestamp + 1);
        vm.prank(whale);
        d.token.transfer(client, 1 ether);
        assertEq(d.token.getVotes(whale), d.token.balanceOf(whale));
        assertEq(d.token.getPastVotes(whale, block.timestamp - 1), d.token.balanceOf(whale) + 1 ether);
    }
}
