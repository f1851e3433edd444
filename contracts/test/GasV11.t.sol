// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console2} from "forge-std/console2.sol";
import {Hal9Test} from "./Hal9Test.sol";
import {Reveal} from "../src/Hal9Types.sol";
import {ComputationMarket} from "../src/ComputationMarket.sol";

/// Protocol v1.1 gas per settled task at 24, 1,000 and 10,000 registered
/// neurons, r = 3 and r = 7, unbatched and batched (16 tasks per
/// submitVerdicts / finalizeMany / commitMany). A benchmark, not a check:
/// runs only with HAL9_BENCH=1, and needs --isolate so every call is priced
/// as its own transaction (cold storage), e.g.
///   HAL9_BENCH=1 forge test --isolate --match-contract GasV11 -vv
/// Figures are execution gas of each call (without the 21,000 base and calldata).
contract GasV11Test is Hal9Test {
    uint256 internal constant BATCH = 16;

    function test_bench_24() public {
        _bench(24);
    }

    function test_bench_1000() public {
        _bench(1_000);
    }

    function test_bench_10000() public {
        _bench(10_000);
    }

    function _bench(uint256 n) internal {
        if (!vm.envOr("HAL9_BENCH", false)) {
            vm.skip(true);
            return;
        }
        _spawn(n, STAKE);
        _one(n, 3);
        _one(n, 7);
        _batched(n, 3);
        _batched(n, 7);
    }

    function _one(uint256 n, uint16 r) internal {
        _toApplyPhase();
        uint256[5] memory x; // post, draw, verdict, finalize, commits
        uint256 g = gasleft();
        bytes32 id = _postOnly(r, 1_000 + r);
        x[0] = g - gasleft();
        uint256 target = d.market.getTask(id).drawBlock;
        vm.roll(target + 1);
        vm.setBlockhash(target, keccak256(abi.encode(target)));
        g = gasleft();
        d.market.draw(id);
        x[1] = g - gasleft();
        address[] memory c = d.market.committeeOf(id);
        for (uint256 i = 0; i < r; i++) {
            g = gasleft();
            _commit(id, c[i], RESULT);
            x[4] += g - gasleft();
        }
        _afterCommit(id);
        Reveal[] memory rs = _reveals(c, r, id, RESULT);
        g = gasleft();
        d.market.submitVerdict(id, RESULT, CID, rs);
        x[2] = g - gasleft();
        _afterChallenge(id);
        g = gasleft();
        d.market.finalize(id);
        x[3] = g - gasleft();
        _print("unbatched", n, r, x, 1);
    }

    function _batched(uint256 n, uint16 r) internal {
        _toApplyPhase();
        bytes32[] memory ids = new bytes32[](BATCH);
        uint256[5] memory x;
        uint256 g = gasleft();
        for (uint256 k = 0; k < BATCH; k++) {
            ids[k] = _postOnly(r, 5_000 + 100 * r + k);
        }
        x[0] = g - gasleft();
        uint256 target = d.market.getTask(ids[0]).drawBlock;
        vm.roll(target + 1);
        vm.setBlockhash(target, keccak256(abi.encode(target)));
        g = gasleft();
        for (uint256 k = 0; k < BATCH; k++) {
            d.market.draw(ids[k]);
        }
        x[1] = g - gasleft();
        x[4] = _commitAll(ids);
        _afterCommit(ids[BATCH - 1]);
        ComputationMarket.VerdictInput[] memory vs = new ComputationMarket.VerdictInput[](BATCH);
        for (uint256 k = 0; k < BATCH; k++) {
            address[] memory c = d.market.committeeOf(ids[k]);
            vs[k] = ComputationMarket.VerdictInput(ids[k], RESULT, CID, _reveals(c, r, ids[k], RESULT));
        }
        g = gasleft();
        d.market.submitVerdicts(vs);
        x[2] = g - gasleft();
        _afterChallenge(ids[BATCH - 1]);
        g = gasleft();
        d.market.finalizeMany(ids);
        x[3] = g - gasleft();
        _print("batched x16, per task", n, r, x, BATCH);
    }

    function _print(string memory what, uint256 n, uint256 r, uint256[5] memory x, uint256 k) internal pure {
        console2.log("%s N=%s r=%s", what, n, r);
        console2.log("  post %s draw %s", x[0] / k, x[1] / k);
        console2.log("  verdict %s finalize %s", x[2] / k, x[3] / k);
        console2.log("  post+draw+verdict+finalize %s commits %s", (x[0] + x[1] + x[2] + x[3]) / k, x[4] / k);
    }

    /// Each member sends one commitMany for all its tasks of the batch.
    function _commitAll(bytes32[] memory ids) internal returns (uint256 total) {
        address[] memory seen = new address[](ids.length * 15);
        uint256 ns;
        for (uint256 k = 0; k < ids.length; k++) {
            address[] memory c = d.market.committeeOf(ids[k]);
            for (uint256 j = 0; j < c.length; j++) {
                bool dup;
                for (uint256 q = 0; q < ns; q++) {
                    if (seen[q] == c[j]) dup = true;
                }
                if (!dup) seen[ns++] = c[j];
            }
        }
        for (uint256 i = 0; i < ns; i++) {
            total += _commitMine(ids, seen[i]);
        }
    }

    function _commitMine(bytes32[] memory ids, address m) internal returns (uint256) {
        uint256 cnt = 0;
        bytes32[] memory mine = new bytes32[](ids.length);
        bytes32[] memory cs = new bytes32[](ids.length);
        for (uint256 k = 0; k < ids.length; k++) {
            if (_isMember(ids[k], m)) {
                mine[cnt] = ids[k];
                cs[cnt] = d.market.commitmentOf(ids[k], RESULT, keccak256(CID), _salt(m, ids[k]), m);
                cnt++;
            }
        }
        assembly ("memory-safe") {
            mstore(mine, cnt)
            mstore(cs, cnt)
        }
        vm.prank(m);
        uint256 g = gasleft();
        d.market.commitMany(mine, cs);
        return g - gasleft();
    }

    function _isMember(bytes32 id, address m) internal view returns (bool) {
        address[] memory c = d.market.committeeOf(id);
        for (uint256 j = 0; j < c.length; j++) {
            if (c[j] == m) return true;
        }
        return false;
    }
}
