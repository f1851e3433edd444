// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {SortitionTree} from "../src/SortitionTree.sol";

/// Exposes the library over one storage tree.
contract TreeHarness {
    using SortitionTree for SortitionTree.Tree;

    SortitionTree.Tree internal t;

    function set(address a, uint256 w) external {
        t.set(a, w);
    }

    function total() external view returns (uint256) {
        return t.total();
    }

    function count() external view returns (uint256) {
        return t.count;
    }

    function weightOf(address a) external view returns (uint256) {
        return t.weightOf(a);
    }

    /// Draws `r` distinct owners with the registry's rule (no rejections).
    function drawN(bytes32 seed, uint256 r) external view returns (address[] memory out) {
        uint256[] memory drawn = new uint256[](r);
        uint256[] memory drawnW = new uint256[](r);
        out = new address[](r);
        uint256 remaining = t.total();
        for (uint256 i = 0; i < r; i++) {
            uint256 x = uint256(keccak256(abi.encodePacked(seed, i))) % remaining;
            (uint256 leaf, uint256 w) = t.pick(x, drawn, drawnW, i);
            drawn[i] = leaf;
            drawnW[i] = w;
            remaining -= w;
            out[i] = t.ownerOf[leaf];
        }
    }
}

contract SortitionTreeTest is Test {
    TreeHarness internal h;

    function setUp() public {
        h = new TreeHarness();
    }

    function _a(uint256 i) internal pure returns (address) {
        return address(uint160(0x1000 + i));
    }

    function test_sumsTrackSetsAndRemovals() public {
        h.set(_a(1), 5);
        h.set(_a(2), 7);
        h.set(_a(3), 11);
        assertEq(h.total(), 23);
        assertEq(h.count(), 3);
        h.set(_a(2), 1);
        assertEq(h.total(), 17);
        h.set(_a(1), 0);
        assertEq(h.total(), 12);
        assertEq(h.count(), 2);
        assertEq(h.weightOf(_a(1)), 0);
        // The freed leaf is reused.
        h.set(_a(4), 100);
        assertEq(h.count(), 3);
        assertEq(h.total(), 112);
    }

    function test_leafTooHeavyReverts() public {
        uint256 max = SortitionTree.MAX_LEAF_WEIGHT;
        vm.expectRevert(abi.encodeWithSelector(SortitionTree.LeafTooHeavy.selector, max, max + 1));
        h.set(_a(1), max + 1);
    }

    /// Fuzz: a draw without replacement returns distinct owners that all have weight.
    function testFuzz_drawDistinct(bytes32 seed, uint8 n, uint8 r) public {
        n = uint8(bound(n, 3, 60));
        r = uint8(bound(r, 1, n));
        for (uint256 i = 0; i < n; i++) {
            h.set(_a(i), 1 + (uint256(keccak256(abi.encode(seed, i))) % 1000));
        }
        address[] memory got = h.drawN(seed, r);
        for (uint256 i = 0; i < r; i++) {
            assertGt(h.weightOf(got[i]), 0);
            for (uint256 j = 0; j < i; j++) {
                assertTrue(got[i] != got[j], "drawn twice");
            }
        }
    }

    /// A leaf with 90% of the weight is drawn first most of the time.
    function test_drawFollowsWeight() public {
        h.set(_a(0), 9_000);
        for (uint256 i = 1; i <= 10; i++) {
            h.set(_a(i), 100);
        }
        uint256 hits;
        for (uint256 s = 0; s < 200; s++) {
            if (h.drawN(bytes32(s), 1)[0] == _a(0)) hits++;
        }
        assertGt(hits, 160);
        assertLt(hits, 200);
    }

    /// Gas of one draw does not grow with the number of leaves: the walk reads
    /// DEPTH words whatever N is; only how many of the 4 lanes per level are
    /// scanned varies (at most 3 more per level, a constant bound).
    function test_costFlatInLeaves() public {
        h.set(_a(0), 10);
        uint256 g0 = gasleft();
        h.drawN(bytes32(uint256(1)), 1);
        uint256 small = g0 - gasleft();
        for (uint256 i = 1; i < 2_000; i++) {
            h.set(_a(i), 10);
        }
        g0 = gasleft();
        h.drawN(bytes32(uint256(1)), 1);
        uint256 large = g0 - gasleft();
        assertApproxEqAbs(small, large, 4_000);
    }

    /// Shared vectors with the Rust implementation (consensus/vectors/tree.json,
    /// written by hal9-consensus): slot weights, seed, r and the drawn slots.
    function test_vectorsMatchRust() public {
        string memory json = vm.readFile("../consensus/vectors/tree.json");
        uint256 cases = vm.parseJsonUint(json, ".count");
        assertGt(cases, 0, "vectors present");
        for (uint256 c = 0; c < cases; c++) {
            string memory k = string.concat(".cases[", vm.toString(c), "]");
            uint256[] memory weights = vm.parseJsonUintArray(json, string.concat(k, ".weights"));
            bytes32 seed = vm.parseJsonBytes32(json, string.concat(k, ".seed"));
            uint256 r = vm.parseJsonUint(json, string.concat(k, ".r"));
            uint256[] memory want = vm.parseJsonUintArray(json, string.concat(k, ".picked"));
            TreeHarness t = new TreeHarness();
            // Slot i holds weights[i]; a 0 is an empty slot (filled, then emptied).
            for (uint256 i = 0; i < weights.length; i++) {
                t.set(_a(i), weights[i] == 0 ? 1 : weights[i]);
            }
            for (uint256 i = 0; i < weights.length; i++) {
                if (weights[i] == 0) t.set(_a(i), 0);
            }
            address[] memory got = t.drawN(seed, r);
            assertEq(got.length, want.length);
            for (uint256 i = 0; i < r; i++) {
                assertEq(got[i], _a(want[i]), string.concat("case ", vm.toString(c)));
            }
        }
    }
}
