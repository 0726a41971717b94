package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/consensys/gnark/backend/witness"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
	"github.com/zkml/zkml/verifier"
)

func init() {
	extraCommands = append(extraCommands, exportVerifierCmd, calldataCmd)
}

// modelID32 is the model ID as the bytes32 the wrapper contract stores.
func modelID32(m *prover.Model) ([32]byte, error) {
	var id [32]byte
	b, err := hex.DecodeString(m.ID)
	if err != nil || len(b) != 32 {
		return id, fmt.Errorf("model ID %q is not 32 hex bytes", m.ID)
	}
	copy(id[:], b)
	return id, nil
}

func loadVK(m *prover.Model, sys circuits.System) (any, error) {
	b, err := m.VerifyingKeyBytes(sys)
	if err != nil {
		return nil, err
	}
	return verifier.VerifyingKey(string(sys), b)
}

func exportVerifierCmd() *cobra.Command {
	var dir, system, out string
	cmd := &cobra.Command{
		Use:   "export-verifier",
		Short: "Write the Solidity verifier (gnark's verifier + the ZKMLVerifier wrapper), its ABI, and what Foundry and Hardhat need to deploy it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, sys, err := openModel(dir, system)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(dir, "contracts-"+string(sys))
			}
			if shard.Sharded(m) {
				return exportSharded(cmd, m, sys, out)
			}
			vk, err := loadVK(m, sys)
			if err != nil {
				return err
			}
			printTrust(cmd.OutOrStdout(), cmd.ErrOrStderr(), m, sys)
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			opts, err := engine.ExportOptions(m)
			if err != nil {
				return err
			}
			sol, abiPath, err := verifier.ExportSolidityFiles(out, vk, opts...)
			if err != nil {
				return err
			}
			id, err := modelID32(m)
			if err != nil {
				return err
			}
			project, err := writeVerifierProject(out, id, string(sys))
			if err != nil {
				return err
			}
			for _, p := range append([]string{sol, abiPath}, project...) {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deploy %s with constructor(bytes32 modelId = 0x%s); %s is a Foundry project, and has a Hardhat Ignition module (see its README.md)\n", verifier.WrapperContract, m.ID, out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory (after setup)")
	cmd.Flags().StringVar(&system, "system", "groth16", "proving system: groth16 or plonk")
	cmd.Flags().StringVarP(&out, "out", "o", "", "output directory (default <dir>/contracts-<system>)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func calldataCmd() *cobra.Command {
	var dir, system, proofPath, publicPath, outPath string
	cmd := &cobra.Command{
		Use:   "calldata",
		Short: "Print the calldata of ZKMLVerifier.verify(proof, publicInputs) for a proof, as hex",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, sys, err := openModel(dir, system)
			if err != nil {
				return err
			}
			var data []byte
			if shard.Sharded(m) {
				data, err = bundleCalldata(m, sys, proofPath)
			} else {
				var proof any
				var pub witnessT
				if proof, pub, err = readProof(m, sys, proofPath, publicPath); err == nil {
					data, err = verifier.Calldata(proof, pub)
				}
			}
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if outPath != "" {
				return os.WriteFile(outPath, []byte("0x"+hex.EncodeToString(data)+"\n"), 0o644)
			}
			_, err = fmt.Fprintf(w, "0x%s\n", hex.EncodeToString(data))
			return err
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory")
	cmd.Flags().StringVar(&system, "system", "groth16", "proving system: groth16 or plonk")
	cmd.Flags().StringVar(&proofPath, "proof", "", "proof file (default: the model directory's last proof; a sharded model's: its last bundle, of ZKMLBundleVerifier.verify(proofs, publicInputs))")
	cmd.Flags().StringVar(&publicPath, "public", "", "public witness file (default: the model directory's)")
	cmd.Flags().StringVarP(&outPath, "out", "o", "", "write the hex calldata to this file")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// readProof decodes a proof and public witness, from files or the model directory.
func readProof(m *prover.Model, sys circuits.System, proofPath, publicPath string) (any, witnessT, error) {
	read := func(path, artifact string) ([]byte, error) {
		if path != "" {
			return os.ReadFile(path)
		}
		return m.ReadArtifact(artifact)
	}
	pb, err := read(proofPath, fmt.Sprintf("proof.%s.bin", sys))
	if err != nil {
		return nil, nil, err
	}
	wb, err := read(publicPath, fmt.Sprintf("public.%s.bin", sys))
	if err != nil {
		return nil, nil, err
	}
	proof, err := verifier.DecodeProof(string(sys), pb)
	if err != nil {
		return nil, nil, err
	}
	pub, err := verifier.DecodePublicWitness(wb)
	if err != nil {
		return nil, nil, err
	}
	return proof, pub, nil
}

// verifyOnEVM runs the exported verifier in an in-process EVM and prints gas used. The
// pinned solc-js comes from solc (--solc), else $ZKML_SOLC, else the user cache
// directory, where it is installed with npm on first use (evm.Ensure).
func verifyOnEVM(cmd *cobra.Command, m *prover.Model, sys circuits.System, proof any, pub witnessT, solc string) error {
	vk, err := loadVK(m, sys)
	if err != nil {
		return err
	}
	c, err := evm.Ensure(cmd.Context(), solc, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	evm.UseCompiler(c)
	id, err := modelID32(m)
	if err != nil {
		return err
	}
	opts, err := engine.ExportOptions(m)
	if err != nil {
		return err
	}
	rep, err := verifier.VerifyOnEVM(cmd.Context(), vk, proof, pub, id, opts...)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "EVM (%s, solc %s): valid=%v, verify gas %d, verifyAndDecode gas %d, deploy gas %d, verifier %d B + wrapper %d B\n",
		rep.Fork, rep.Solc, rep.Valid, rep.VerifyGas, rep.VerifyAndDecodeGas, rep.DeployGas, rep.VerifierSize, rep.WrapperSize)
	if rep.Valid && len(rep.Outputs) > 0 {
		fmt.Fprintf(out, "on-chain decoded outputs (integers at scale 2^-%d): %v\n", m.Config.Scale, rep.Outputs)
	}
	if !rep.Valid {
		return exitError(2)
	}
	return nil
}

type witnessT = witness.Witness
