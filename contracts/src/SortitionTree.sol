// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title SortitionTree
/// @notice A 4-ary sum tree of fixed depth over up to 65,536 weighted leaves
/// (in the spirit of Kleros' sortition module, written for hal9). Each
/// storage word `groups[n]` packs the sums of the four children 4n+1..4n+4
/// of node n, 64 bits per lane (lane j = bits 64j..64j+63), so one update
/// and one draw touch exactly DEPTH words whatever the number of leaves.
/// Leaf i is node FIRST_LEAF + i. A leaf weighs at most MAX_LEAF_WEIGHT, so
/// no sum can overflow its 64-bit lane (2^48 * 2^16 = 2^64).
///
/// Draw without replacement (the same walk runs in Rust, crate
/// hal9-consensus, against shared vectors): attempt i takes
/// x = uint256(keccak256(abi.encodePacked(seed, uint256(i)))) % remaining,
/// walks from the root taking the first child whose sum (minus the weight of
/// leaves already drawn below it) exceeds x, subtracting the skipped sums.
library SortitionTree {
    /// Levels below the root.
    uint256 internal constant DEPTH = 8;
    /// Most leaves a tree holds (4^DEPTH).
    uint256 internal constant CAPACITY = 65_536;
    /// Node index of leaf 0: (4^DEPTH - 1) / 3.
    uint256 internal constant FIRST_LEAF = 21_845;
    /// Heaviest leaf.
    uint256 internal constant MAX_LEAF_WEIGHT = (1 << 48) - 1;
    uint256 private constant LANE = 0xFFFFFFFFFFFFFFFF;

    /// One tree.
    struct Tree {
        mapping(uint256 => uint256) groups;
        mapping(address => uint256) leafOf; // leaf index + 1
        mapping(uint256 => address) ownerOf;
        uint256[] free;
        uint256 next;
        uint256 count;
    }

    /// The tree is full.
    error TreeFull(uint256 capacity);
    /// A leaf weight above MAX_LEAF_WEIGHT.
    error LeafTooHeavy(uint256 max, uint256 found);

    /// Sum of all leaves.
    function total(Tree storage t) internal view returns (uint256) {
        uint256 v = t.groups[0];
        return (v & LANE) + ((v >> 64) & LANE) + ((v >> 128) & LANE) + (v >> 192);
    }

    /// Weight of `owner`'s leaf (0 when it has none).
    function weightOf(Tree storage t, address owner) internal view returns (uint256) {
        uint256 l = t.leafOf[owner];
        if (l == 0) return 0;
        uint256 node = FIRST_LEAF + l - 1;
        return (t.groups[(node - 1) >> 2] >> (64 * ((node - 1) & 3))) & LANE;
    }

    /// Sets `owner`'s leaf to `weight`; 0 removes the leaf and frees its slot.
    function set(Tree storage t, address owner, uint256 weight) internal {
        if (weight > MAX_LEAF_WEIGHT) revert LeafTooHeavy(MAX_LEAF_WEIGHT, weight);
        uint256 l = t.leafOf[owner];
        if (l == 0) {
            if (weight == 0) return;
            uint256 n = t.free.length;
            if (n != 0) {
                l = t.free[n - 1];
                t.free.pop();
            } else {
                l = t.next;
                if (l == CAPACITY) revert TreeFull(CAPACITY);
                t.next = l + 1;
            }
            t.leafOf[owner] = l + 1;
            t.ownerOf[l] = owner;
            t.count += 1;
        } else {
            l -= 1;
        }
        uint256 node = FIRST_LEAF + l;
        uint256 old = (t.groups[(node - 1) >> 2] >> (64 * ((node - 1) & 3))) & LANE;
        if (old == weight) return;
        bool up = weight > old;
        uint256 delta = up ? weight - old : old - weight;
        while (node != 0) {
            uint256 g = (node - 1) >> 2;
            uint256 shift = 64 * ((node - 1) & 3);
            uint256 word = t.groups[g];
            t.groups[g] = up ? word + (delta << shift) : word - (delta << shift);
            node = g;
        }
        if (weight == 0) {
            delete t.leafOf[owner];
            delete t.ownerOf[l];
            t.free.push(l);
            t.count -= 1;
        }
    }

    /// Walks from the root to the leaf under point `x` (< total minus the
    /// weights of `drawn[0..n)`), skipping those drawn leaves. Returns the
    /// leaf index and its weight.
    function pick(Tree storage t, uint256 x, uint256[] memory drawn, uint256[] memory drawnW, uint256 n)
        internal
        view
        returns (uint256 leaf, uint256 w)
    {
        uint256 node;
        for (uint256 d = 1; d <= DEPTH; d++) {
            uint256 word = t.groups[node];
            uint256 first = ((1 << (2 * d)) - 1) / 3; // first node index at depth d
            uint256 shiftBits = 2 * (DEPTH - d);
            uint256 child = 4 * node + 1;
            for (uint256 lane = 0; lane < 4; lane++) {
                w = (word >> (64 * lane)) & LANE;
                for (uint256 j = 0; j < n; j++) {
                    if (first + (drawn[j] >> shiftBits) == child) w -= drawnW[j];
                }
                if (x < w || lane == 3) break;
                x -= w;
                child++;
            }
            node = child;
        }
        leaf = node - FIRST_LEAF;
    }
}
