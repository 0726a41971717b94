package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

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
			onnx, err := os.ReadFile(filepath.Join(example, "network.onnx"))
			if err != nil {
				return fmt.Errorf("example: %w", err)
			}
			if work == "" {
				if work, err = os.MkdirTemp("", "zkml-demo-"); err != nil {
					return err
				}
				defer removeDemoDir(errw, work)
			}
			fmt.Fprintf(out, "example %s -> %s\n", example, work)
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
			in, err := readInputs(filepath.Join(example, "input.json"), m.Graph)
			if err != nil {
				return err
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
			if err := verifier.Verify(string(sys), vk, p.Proof, w); err != nil {
				return err
			}
			fmt.Fprintf(out, "verified: %s proof of model %s is valid\n", sys, m.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&example, "example", "examples/mnist_cnn", "directory with network.onnx and input.json")
	cmd.Flags().StringVar(&work, "dir", "", "data (or, with --offline, model) directory to write and keep (default: a temporary directory, removed at the end)")
	cmd.Flags().BoolVar(&offline, "offline", false, "run the pipeline through the library instead of the service")
	cmd.Flags().StringVar(&system, "system", "groth16", "proving system: groth16 or plonk")
	return cmd
}
