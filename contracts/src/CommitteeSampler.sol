// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title CommitteeSampler
/// @notice Stake-weighted sampling without replacement, in integers only.
/// The same algorithm runs in Rust (crate hal9-consensus) and both sides are
/// checked against shared vectors (consensus/vectors/committee.json):
/// for i in 0..r: W = sum of the remaining weights,
/// x = uint256(keccak256(abi.encodePacked(seed, uint256(i)))) % W; walk the
/// remaining candidates in order, accumulating weight, and take the first
/// whose cumulative sum is > x; remove it (the rest keep their order).
library CommitteeSampler {
    /// Fewer candidates with non-zero weight than members to draw.
    error NotEnoughCandidates(uint256 needed, uint256 available);

    /// @notice Draws `r` distinct indices into `weights`, in draw order.
    function draw(bytes32 seed, uint256[] memory weights, uint256 r) internal pure returns (uint256[] memory picked) {
        uint256 n = weights.length;
        uint256[] memory rem = new uint256[](n);
        uint256 total;
        uint256 nonZero;
        for (uint256 j = 0; j < n; j++) {
            rem[j] = j;
            total += weights[j];
            if (weights[j] != 0) nonZero++;
        }
        if (nonZero < r) revert NotEnoughCandidates(r, nonZero);

        picked = new uint256[](r);
        uint256 len = n;
        for (uint256 i = 0; i < r; i++) {
            uint256 x = uint256(keccak256(abi.encodePacked(seed, i))) % total;
            uint256 acc;
            uint256 pos;
            for (pos = 0; pos < len; pos++) {
                acc += weights[rem[pos]];
                if (acc > x) break;
            }
            // pos < len always holds: x < total == sum of remaining weights.
            uint256 chosen = rem[pos];
            picked[i] = chosen;
            total -= weights[chosen];
            for (uint256 k = pos; k + 1 < len; k++) {
                rem[k] = rem[k + 1];
            }
            len--;
        }
    }
}
