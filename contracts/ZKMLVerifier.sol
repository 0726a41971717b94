// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IZKMLVerifier
/// @notice The on-chain interface of a zkml model verifier. One deployment verifies proofs of
/// one model (modelId) made with one proving system (Groth16 or PLONK over BN254).
/// @dev Public inputs are BN254 scalar-field elements, in the order of the circuit's public
/// witness. A signed value v is encoded as v mod r, so negative values lie in ((r-1)/2, r).
interface IZKMLVerifier {
    /// @notice The model this verifier is for (e.g. a hash of the compiled model), fixed at
    /// deployment.
    function modelId() external view returns (bytes32);

    /// @notice The gnark-generated verifier contract this wrapper calls.
    function verifier() external view returns (address);

    /// @notice "groth16" or "plonk".
    function provingSystem() external pure returns (string memory);

    /// @notice The number of public inputs a proof has.
    function numPublicInputs() external pure returns (uint256);

    /// @notice The model's outputs are publicInputs[outputOffset : outputOffset + outputCount].
    function outputOffset() external view returns (uint256);

    /// @notice See outputOffset.
    function outputCount() external view returns (uint256);

    /// @notice The public inputs that identify the model's parameters are
    /// publicInputs[paramsOffset : paramsOffset + paramsCount]: the params commitment when the
    /// parameters are hashed, the parameters themselves when they are public; none (count 0)
    /// when they are fixed into the circuit (the verifying key binds them) or private.
    function paramsOffset() external view returns (uint256);

    /// @notice See paramsOffset.
    function paramsCount() external view returns (uint256);

    /// @notice keccak256 of the model's own values of those public inputs (32-byte big-endian
    /// words, concatenated), fixed at deployment.
    function paramsDigest() external view returns (bytes32);

    /// @notice Whether publicInputs carry this model's parameters (commitment). A valid proof
    /// made with other weights of the same shapes fails this check, and so fails verify.
    function paramsMatch(uint256[] calldata publicInputs) external view returns (bool);

    /// @notice Returns true if and only if proof is a valid proof for publicInputs and
    /// publicInputs carry this model's parameters (paramsMatch).
    /// @dev Never reverts because of the proof or the inputs (wrong length, values >= r, bad
    /// curve points all return false). An invalid proof may consume most of the gas given to
    /// it: the EVM's elliptic-curve precompiles burn all gas they are sent on invalid points.
    function verify(bytes calldata proof, uint256[] calldata publicInputs) external view returns (bool);

    /// @notice verify, then decode the model outputs as signed integers.
    /// @return valid as verify.
    /// @return outputs the decoded outputs when valid, empty otherwise.
    function verifyAndDecode(bytes calldata proof, uint256[] calldata publicInputs)
        external
        view
        returns (bool valid, int256[] memory outputs);

    /// @notice Decodes the outputs of publicInputs as signed integers without verifying.
    /// @dev Reverts if publicInputs has the wrong length or an element is not below r.
    function decodeOutputs(uint256[] calldata publicInputs) external view returns (int256[] memory);

    /// @notice Decodes one field element: v if v <= (r-1)/2, else v - r. Reverts if v >= r.
    function toSigned(uint256 v) external pure returns (int256);
}

/// @title ZKMLVerifierBase
/// @notice The proof-system-independent half of a zkml verifier. zkml's exporter
/// (verifier.ExportSolidity) appends a concrete `ZKMLVerifier` that deploys gnark's generated
/// verifier in its constructor and implements _verifyProof, numPublicInputs and
/// provingSystem.
abstract contract ZKMLVerifierBase is IZKMLVerifier {
    /// BN254 scalar field order r.
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// Largest field element that decodes to a non-negative integer.
    uint256 internal constant MAX_POSITIVE = (R - 1) / 2;

    /// A public input is not a reduced field element.
    error PublicInputNotInField(uint256 index);

    /// The number of public inputs is not numPublicInputs().
    error PublicInputsLength(uint256 got, uint256 want);

    bytes32 public immutable override modelId;
    uint256 public immutable override outputOffset;
    uint256 public immutable override outputCount;
    uint256 public immutable override paramsOffset;
    uint256 public immutable override paramsCount;
    bytes32 public immutable override paramsDigest;

    constructor(
        bytes32 modelId_,
        uint256 outputOffset_,
        uint256 outputCount_,
        uint256 paramsOffset_,
        uint256 paramsCount_,
        bytes32 paramsDigest_
    ) {
        require(outputOffset_ + outputCount_ <= numPublicInputs(), "ZKMLVerifier: outputs out of range");
        require(paramsOffset_ + paramsCount_ <= numPublicInputs(), "ZKMLVerifier: params out of range");
        modelId = modelId_;
        outputOffset = outputOffset_;
        outputCount = outputCount_;
        paramsOffset = paramsOffset_;
        paramsCount = paramsCount_;
        paramsDigest = paramsDigest_;
    }

    /// @inheritdoc IZKMLVerifier
    function numPublicInputs() public pure virtual override returns (uint256);

    /// @inheritdoc IZKMLVerifier
    function verify(bytes calldata proof, uint256[] calldata publicInputs) public view override returns (bool) {
        if (publicInputs.length != numPublicInputs()) {
            return false;
        }
        for (uint256 i = 0; i < publicInputs.length; i++) {
            if (publicInputs[i] >= R) {
                return false;
            }
        }
        if (!paramsMatch(publicInputs)) {
            return false;
        }
        return _verifyProof(proof, publicInputs);
    }

    /// @inheritdoc IZKMLVerifier
    function paramsMatch(uint256[] calldata publicInputs) public view override returns (bool) {
        if (paramsCount == 0) {
            return true;
        }
        if (publicInputs.length < paramsOffset + paramsCount) {
            return false;
        }
        uint256[] memory values = new uint256[](paramsCount);
        for (uint256 i = 0; i < values.length; i++) {
            values[i] = publicInputs[paramsOffset + i];
        }
        return keccak256(abi.encodePacked(values)) == paramsDigest;
    }

    /// @inheritdoc IZKMLVerifier
    function verifyAndDecode(bytes calldata proof, uint256[] calldata publicInputs)
        external
        view
        override
        returns (bool valid, int256[] memory outputs)
    {
        if (!verify(proof, publicInputs)) {
            return (false, new int256[](0));
        }
        return (true, decodeOutputs(publicInputs));
    }

    /// @inheritdoc IZKMLVerifier
    function decodeOutputs(uint256[] calldata publicInputs) public view override returns (int256[] memory outputs) {
        if (publicInputs.length != numPublicInputs()) {
            revert PublicInputsLength(publicInputs.length, numPublicInputs());
        }
        outputs = new int256[](outputCount);
        for (uint256 i = 0; i < outputs.length; i++) {
            uint256 v = publicInputs[outputOffset + i];
            if (v >= R) {
                revert PublicInputNotInField(outputOffset + i);
            }
            outputs[i] = _toSigned(v);
        }
    }

    /// @inheritdoc IZKMLVerifier
    function toSigned(uint256 v) external pure override returns (int256) {
        if (v >= R) {
            revert PublicInputNotInField(0);
        }
        return _toSigned(v);
    }

    function _toSigned(uint256 v) internal pure returns (int256) {
        // Both branches fit in int256: r < 2^254.
        if (v > MAX_POSITIVE) {
            return -int256(R - v);
        }
        return int256(v);
    }

    /// @dev Runs gnark's verifier; must return false instead of reverting on a bad proof.
    /// publicInputs has numPublicInputs() reduced elements.
    function _verifyProof(bytes calldata proof, uint256[] calldata publicInputs) internal view virtual returns (bool);
}
