// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// In this repository the import is the interface file; in a project that uses an exported
// verifier (`zkml export-verifier`), ../ZKMLVerifier.sol is that verifier, which holds the
// same interface.
import {IZKMLVerifier} from "../ZKMLVerifier.sol";

/// @title VerifiedClassifier
/// @notice An example consumer of a zkml verifier: anyone may submit a proof that the
/// model classified an input, and the contract records the proven class (the argmax of the
/// model's outputs) under the input's commitment. It never sees the input itself.
/// @dev The model must be compiled with `--input-visibility hashed` (the input is secret and
/// a public Poseidon2 commitment binds it) and public outputs, e.g.
///   zkml compile model.onnx -d m.zkml --input-visibility hashed
/// inputCommitmentIndex is the commitment's place among the public inputs: zkml lays them
/// out as inputs, outputs, params, then the commitments of hashed groups (inputs first), so
/// with fixed params it is the last one (numPublicInputs() - 1).
/// Outputs are fixed-point integers (value * 2^scale); the argmax does not depend on the
/// scale. Ties go to the lowest index.
contract VerifiedClassifier {
    /// The model's verifier; it pins the model (its verifying key and, when the weights are
    /// witnesses, their commitment).
    IZKMLVerifier public immutable verifier;

    /// Where the input commitment is among a proof's public inputs.
    uint256 public immutable inputCommitmentIndex;

    struct Classification {
        bool known;
        uint64 class;
        int256 score; // the winning output, fixed point
    }

    mapping(bytes32 => Classification) private classifications;

    /// A proof was accepted: the model maps the input committed to by inputCommitment to
    /// class, with the given output score (fixed point).
    event Classified(bytes32 indexed inputCommitment, uint256 indexed class, int256 score, address submitter);

    /// The proof does not verify for these public inputs (or is of another model).
    error InvalidProof();

    /// The input was classified before; a valid proof for the same input cannot change the
    /// class (the model is deterministic), so a second one is refused rather than stored.
    error AlreadyClassified(bytes32 inputCommitment, uint256 class);

    /// The model has no outputs among the public inputs (they are private or hashed).
    error NoPublicOutputs();

    constructor(IZKMLVerifier verifier_, uint256 inputCommitmentIndex_) {
        uint256 n = verifier_.numPublicInputs();
        require(inputCommitmentIndex_ < n, "VerifiedClassifier: commitment index out of range");
        uint256 off = verifier_.outputOffset();
        uint256 cnt = verifier_.outputCount();
        if (cnt == 0) revert NoPublicOutputs();
        require(
            inputCommitmentIndex_ < off || inputCommitmentIndex_ >= off + cnt,
            "VerifiedClassifier: commitment index is an output"
        );
        verifier = verifier_;
        inputCommitmentIndex = inputCommitmentIndex_;
    }

    /// @notice Verifies a proof and records the proven class of its input.
    /// @param proof the proof bytes, publicInputs its public inputs: the arguments of the
    /// verifier's verify, as in the calldata the zkml service returns with every proof.
    /// @return class the argmax of the proven outputs.
    function submit(bytes calldata proof, uint256[] calldata publicInputs) external returns (uint256 class) {
        (bool valid, int256[] memory outputs) = verifier.verifyAndDecode(proof, publicInputs);
        if (!valid) revert InvalidProof();
        // verifyAndDecode checked the number of public inputs, so the index is in range.
        bytes32 commitment = bytes32(publicInputs[inputCommitmentIndex]);
        Classification storage c = classifications[commitment];
        if (c.known) revert AlreadyClassified(commitment, c.class);
        class = argmax(outputs);
        c.known = true;
        c.class = uint64(class);
        c.score = outputs[class];
        emit Classified(commitment, class, outputs[class], msg.sender);
    }

    /// @notice The proven class of the input committed to by inputCommitment.
    /// @return known whether a proof was accepted for it; class and score as recorded.
    function classOf(bytes32 inputCommitment) external view returns (bool known, uint256 class, int256 score) {
        Classification storage c = classifications[inputCommitment];
        return (c.known, c.class, c.score);
    }

    /// The index of the largest value (the lowest such index on ties); values is not empty.
    function argmax(int256[] memory values) internal pure returns (uint256 best) {
        for (uint256 i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
    }
}
