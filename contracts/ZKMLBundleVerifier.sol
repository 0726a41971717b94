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
/// segment ID), and the chain of boundary commitments: the public input at segment i's
/// boundary-output commitment slot equals the one at segment i+1's boundary-input slot.
/// The slots, the segment verifiers and their order are fixed at deployment from the
/// plan; planId binds the model ID and every segment ID in order.
contract ZKMLBundleVerifier {
    bytes32 public immutable modelId;
    bytes32 public immutable planId;
    address[] internal segmentVerifiers;
    uint256[] internal outSlots; // outSlots[i]: segment i's boundary-output commitment
    uint256[] internal inSlots; // inSlots[i]: segment i+1's boundary-input commitment

    constructor(
        bytes32 modelId_,
        bytes32 planId_,
        address[] memory segments_,
        uint256[] memory outSlots_,
        uint256[] memory inSlots_
    ) {
        require(segments_.length > 0, "no segments");
        require(outSlots_.length + 1 == segments_.length && inSlots_.length == outSlots_.length, "slots");
        modelId = modelId_;
        planId = planId_;
        segmentVerifiers = segments_;
        outSlots = outSlots_;
        inSlots = inSlots_;
    }

    /// @notice The segment verifiers, in order.
    function segments() external view returns (address[] memory) {
        return segmentVerifiers;
    }

    /// @notice True if and only if every proofs[i] is a valid proof of segment i for
    /// publicInputs[i] and the boundary commitments chain. Never reverts on bad input.
    /// The model outputs are the last segment's public outputs (see its verifier's
    /// outputOffset and outputCount).
    function verify(bytes[] calldata proofs, uint256[][] calldata publicInputs) external view returns (bool) {
        uint256 n = segmentVerifiers.length;
        if (proofs.length != n || publicInputs.length != n) {
            return false;
        }
        for (uint256 i = 0; i + 1 < n; i++) {
            uint256 o = outSlots[i];
            uint256 j = inSlots[i];
            if (o >= publicInputs[i].length || j >= publicInputs[i + 1].length) {
                return false;
            }
            if (publicInputs[i][o] != publicInputs[i + 1][j]) {
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
