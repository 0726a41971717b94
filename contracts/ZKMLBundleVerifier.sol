// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The part of IZKMLVerifier (ZKMLVerifier.sol) a bundle verifier calls.
interface IZKMLSegmentVerifier {
    function modelId() external view returns (bytes32);
    function verify(bytes calldata proof, uint256[] calldata publicInputs) external view returns (bool);
}

/// @title ZKMLBundleVerifier
/// @notice Verifies an inference of a sharded zkml model (prover/shard): one proof per
/// segment, each checked by that segment's deployed ZKMLVerifier (whose modelId is the
/// segment ID), and the boundary commitments of every pair of segments (p, c) of the
/// plan's pair table: the public input at p's output-group slot for c equals the one
/// at c's input-group slot for p.
/// The constructor recomputes the plan ID from the model ID, the segment verifiers'
/// modelIds (in order) and the pair table, exactly as prover/shard's PlanID, and
/// refuses a deployment whose planId it does not reproduce: the segments, their order
/// and the pair table are the plan's.
contract ZKMLBundleVerifier {
    /// @notice Opens the plan ID's hashed bytes (shard.PlanIDTag).
    string public constant PLAN_ID_TAG = "zkml/shard.Plan v2";

    bytes32 public immutable modelId;
    bytes32 public immutable planId;
    address[] internal segmentVerifiers;
    // pairTable[4k .. 4k+3]: pair k's producer, consumer, producer's output-group
    // commitment slot and consumer's input-group commitment slot, pairs in increasing
    // (producer, consumer).
    uint256[] internal pairTable;

    constructor(bytes32 modelId_, bytes32 planId_, address[] memory segments_, uint256[] memory pairs_) {
        uint256 n = segments_.length;
        require(n > 0, "no segments");
        require(pairs_.length % 4 == 0, "pairs");
        for (uint256 k = 0; k < pairs_.length; k += 4) {
            require(pairs_[k] < pairs_[k + 1] && pairs_[k + 1] < n, "pair");
            if (k > 0) {
                require(
                    pairs_[k - 4] < pairs_[k] || (pairs_[k - 4] == pairs_[k] && pairs_[k - 3] < pairs_[k + 1]),
                    "pair order"
                );
            }
        }
        bytes32[] memory ids = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            ids[i] = IZKMLSegmentVerifier(segments_[i]).modelId();
        }
        bytes32 id = sha256(abi.encodePacked(PLAN_ID_TAG, modelId_, n, ids, pairs_.length / 4, pairs_));
        require(id == planId_, "plan ID");
        modelId = modelId_;
        planId = planId_;
        segmentVerifiers = segments_;
        pairTable = pairs_;
    }

    /// @notice The segment verifiers, in order.
    function segments() external view returns (address[] memory) {
        return segmentVerifiers;
    }

    /// @notice The pair table: per pair, producer, consumer, output slot, input slot.
    function pairs() external view returns (uint256[] memory) {
        return pairTable;
    }

    /// @notice True if and only if every proofs[i] is a valid proof of segment i for
    /// publicInputs[i] and every pair's boundary commitments are equal. Never reverts
    /// on bad input. The model outputs are the last segment's public outputs (see its
    /// verifier's outputOffset and outputCount).
    function verify(bytes[] calldata proofs, uint256[][] calldata publicInputs) external view returns (bool) {
        uint256 n = segmentVerifiers.length;
        if (proofs.length != n || publicInputs.length != n) {
            return false;
        }
        uint256 m = pairTable.length;
        for (uint256 k = 0; k < m; k += 4) {
            uint256[] calldata pub = publicInputs[pairTable[k]];
            uint256[] calldata sub = publicInputs[pairTable[k + 1]];
            uint256 o = pairTable[k + 2];
            uint256 j = pairTable[k + 3];
            if (o >= pub.length || j >= sub.length || pub[o] != sub[j]) {
                return false;
            }
        }
        for (uint256 i = 0; i < n; i++) {
            if (!IZKMLSegmentVerifier(segmentVerifiers[i]).verify(proofs[i], publicInputs[i])) {
                return false;
            }
        }
        return true;
    }
}
