package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

// demoExample returns the demo's model name, ONNX bytes and input.json: the files of dir,
// or, when dir is empty, the bundled example examples/mnist_cnn, which onnxgen builds
// in-process byte for byte, so an installed binary needs no checkout.
func demoExample(dir string) (name string, onnx, inputJSON []byte, err error) {
	if dir == "" {
		onnx, inputJSON, err = onnxgen.MNISTCNN.Build("mnist_cnn")
		return "mnist_cnn", onnx, inputJSON, err
	}
	if onnx, err = os.ReadFile(filepath.Join(dir, "network.onnx")); err != nil {
		return "", nil, nil, fmt.Errorf("example: %w", err)
	}
	if inputJSON, err = os.ReadFile(filepath.Join(dir, "input.json")); err != nil {
		return "", nil, nil, fmt.Errorf("example: %w", err)
	}
	return filepath.Base(dir), onnx, inputJSON, nil
}

func demoCmd() *cobra.Command {
	var example, work, system string
	var offline bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the proving service on a bundled example (embedded store): upload, setup, prove, verify",
		Long: `demo starts the proving service in this process on a loopback port, with the
embedded SQLite store in a new data directory, and drives it over HTTP like a dApp:
it creates an API key, uploads the bundled model, runs the setup, requests a proof,
waits for the job, fetches the proof and verifies it (and a forged variant).
With --offline it runs the same pipeline through the library, without the service.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sys, err := circuits.ParseSystem(system)
			if err != nil {
				return err
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if !offline {
				return serviceDemo(cmd.Context(), out, errw, example, string(sys), work)
			}
			name, onnx, inputJSON, err := demoExample(example)
			if err != nil {
				return err
			}
			if work == "" {
				if work, err = os.MkdirTemp("", "zkml-demo-"); err != nil {
					return err
				}
				defer removeDemoDir(errw, work, onInterrupt(func() { os.RemoveAll(work) }))
			}
			fmt.Fprintf(out, "example %s -> %s\n", name, work)
			m, err := step(errw, "quantize", func() (*prover.Model, error) { return prover.Create(work, onnx, configDefault()) })
			if err != nil {
				return err
			}
			st, err := step(errw, "compile "+string(sys), func() (*circuits.Stats, error) { return m.Compile(sys) })
			if err != nil {
				return err
			}
			if err := st.WriteTable(out); err != nil {
				return err
			}
			fmt.Fprintln(errw, "WARNING:", prover.DevSetupWarning)
			if _, err := step(errw, "setup "+string(sys), func() (struct{}, error) { return struct{}{}, m.Setup(sys) }); err != nil {
				return err
			}
			in, err := model.ParseInput(inputJSON, m.Graph)
			if err != nil {
				return fmt.Errorf("example input: %w", err)
			}
			want, err := m.Graph.Eval(in)
			if err != nil {
				return err
			}
			p, err := step(errw, "prove "+string(sys), func() (*prover.Proof, error) { return m.Prove(sys, in) })
			if err != nil {
				return err
			}
			if err := m.SaveProof(p); err != nil {
				return err
			}
			if err := printOutputs(out, m, p, want); err != nil {
				return err
			}
			vk, err := m.VerifyingKeyBytes(sys)
			if err != nil {
				return err
			}
			w, err := verifier.DecodePublicWitness(p.Public)
			if err != nil {
				return err
			}
			proof, err := verifier.DecodeProof(string(sys), p.Proof)
			if err != nil {
				return err
			}
			if err := verifier.VerifyModel(m.Program, string(sys), vk, proof, w); err != nil {
				return err
			}
			fmt.Fprintf(out, "verified: %s proof of model %s is valid\n", sys, m.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&example, "example", "", "directory with network.onnx and input.json (default: the bundled examples/mnist_cnn, built into the binary)")
	cmd.Flags().StringVar(&work, "dir", "", "data (or, with --offline, model) directory to write and keep (default: a temporary directory, removed at the end)")
	cmd.Flags().BoolVar(&offline, "offline", false, "run the pipeline through the library instead of the service")
	cmd.Flags().StringVar(&system, "system", "groth16", "proving system: groth16 or plonk")
	return cmd
}
