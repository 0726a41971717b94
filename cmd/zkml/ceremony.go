package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/prover"
)

func init() {
	extraCommands = append(extraCommands, ceremonyCmd)
}

func ceremonyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ceremony",
		Short: "Run a Groth16 phase-2 ceremony on a public Powers of Tau file (production keys)",
		Long: `A Groth16 phase-2 ceremony makes keys nobody has to trust: they are sound if one
participant of the public Powers of Tau ceremony and one contributor here was honest.

  zkml ceremony init -d model.zkml --ptau powersOfTau28_hez_final_16.ptau
      (coordinator) checks the ptau, starts phase 2: model.zkml/ceremony.groth16/
  zkml ceremony contribute --in phase2.0000.bin --out alice.bin
      (each contributor, any machine; needs only the current state file) prints the
      hash to publish
  zkml ceremony accept -d model.zkml --file alice.bin --name alice
      (coordinator) verifies the contribution and appends it to the transcript
  zkml ceremony seal -d model.zkml --ptau FILE --beacon HEX
      (coordinator) after the last contribution: verifies everything, applies a
      public beacon chosen afterwards (e.g. a future drand round) and writes the keys
  zkml ceremony verify -d model.zkml --ptau FILE
      (anyone) re-checks the whole transcript and the sealed keys`,
	}
	cmd.AddCommand(ceremonyInitCmd(), ceremonyContributeCmd(), ceremonyAcceptCmd(), ceremonySealCmd(), ceremonyVerifyCmd(), ceremonyStatusCmd())
	return cmd
}

func ceremonyInitCmd() *cobra.Command {
	var dir, ptau, cacheFlag string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Start the model's Groth16 phase 2 from a Powers of Tau file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := prover.Open(dir)
			if err != nil {
				return err
			}
			cache, err := srsCache(cacheFlag)
			if err != nil {
				return err
			}
			errw := cmd.ErrOrStderr()
			if !m.Has("circuit", circuits.Groth16) {
				if _, err := step(errw, "compile groth16", func() (*circuits.Stats, error) { return m.Compile(circuits.Groth16) }); err != nil {
					return err
				}
			}
			c, err := step(errw, "check ptau, init phase 2", func() (*prover.Ceremony, error) { return m.CeremonyInit(ptau, cache) })
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "ceremony for model %s on ptau blake2b %s (power %d, truncated to 2^%d; its contributors: %v)\n",
				m.ID, c.State.Ptau.BLAKE2b, c.State.Ptau.Power, c.State.Ptau.DomainPower, c.State.Ptau.Contributors)
			fmt.Fprintf(out, "initial state %s (sha256 %s)\nsend it to the first contributor: zkml ceremony contribute --in %s --out NEXT.bin\n",
				c.CurrentFile(), c.State.Initial, c.CurrentFile())
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory (from compile)")
	cmd.Flags().StringVar(&ptau, "ptau", "", "Powers of Tau file (snarkjs .ptau, BN254) of power >= the circuit's domain")
	addSRSCacheFlag(cmd, &cacheFlag)
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("ptau")
	return cmd
}

func ceremonyContributeCmd() *cobra.Command {
	var in, out, dir, name string
	cmd := &cobra.Command{
		Use:   "contribute",
		Short: "Add your secret randomness to a phase-2 state (--in/--out; or -d to contribute to a local ceremony)",
		Long: `contribute reads the current phase-2 state, mixes in fresh randomness from the operating
system with a proof of knowledge, and writes the next state. The randomness is never
written anywhere. Publish the printed hash (e.g. in the ceremony's public log): anyone
can later check that the transcript contains your contribution.

With --in and --out it needs nothing else (no model, no ptau): run it on your own
machine and send the output back. With -d and --name it contributes to the ceremony in
a local model directory and appends the result to its transcript at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if dir != "" {
				if in != "" || out != "" {
					return fmt.Errorf("give either --dir (local ceremony) or --in and --out, not both")
				}
				_, c, err := openCeremony(dir)
				if err != nil {
					return err
				}
				tmp, err := os.CreateTemp("", "zkml-contribution-*.bin")
				if err != nil {
					return err
				}
				tmp.Close()
				defer os.Remove(tmp.Name())
				defer onInterrupt(func() { os.Remove(tmp.Name()) })()
				if _, err := step(cmd.ErrOrStderr(), "contribute", func() (string, error) { return prover.ContributeFile(c.CurrentFile(), tmp.Name()) }); err != nil {
					return err
				}
				b, err := os.ReadFile(tmp.Name())
				if err != nil {
					return err
				}
				rec, err := c.Accept(b, name)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "contribution %d by %q accepted\nhash (publish this): %s\n", len(c.State.Contributions), rec.Name, rec.Hash)
				return nil
			}
			if in == "" || out == "" {
				return fmt.Errorf("--in and --out are required (or --dir for a local ceremony)")
			}
			hash, err := step(cmd.ErrOrStderr(), "contribute", func() (string, error) { return prover.ContributeFile(in, out) })
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "wrote %s\nhash (publish this): %s\nsend %s to the coordinator\n", out, hash, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "current phase-2 state (from the coordinator)")
	cmd.Flags().StringVar(&out, "out", "", "where to write the next state")
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory with a ceremony (contribute locally instead of --in/--out)")
	cmd.Flags().StringVar(&name, "name", "anonymous", "contributor name for the transcript (with --dir)")
	return cmd
}

func ceremonyAcceptCmd() *cobra.Command {
	var dir, file, name string
	cmd := &cobra.Command{
		Use:   "accept",
		Short: "Verify a contribution against the current state and append it to the transcript",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, c, err := openCeremony(dir)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			rec, err := step(cmd.ErrOrStderr(), "verify contribution", func() (prover.ContributionRecord, error) { return c.Accept(b, name) })
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "contribution %d by %q accepted, hash %s\nnext state: %s\n", len(c.State.Contributions), rec.Name, rec.Hash, c.CurrentFile())
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory with a ceremony")
	cmd.Flags().StringVar(&file, "file", "", "the contributor's output state")
	cmd.Flags().StringVar(&name, "name", "", "contributor name for the public transcript")
	for _, f := range []string{"dir", "file", "name"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func ceremonySealCmd() *cobra.Command {
	var dir, ptau, beacon, cacheFlag string
	cmd := &cobra.Command{
		Use:   "seal",
		Short: "Verify the transcript, apply a public random beacon and write the Groth16 keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, c, err := openCeremony(dir)
			if err != nil {
				return err
			}
			cache, err := srsCache(cacheFlag)
			if err != nil {
				return err
			}
			if _, err := step(cmd.ErrOrStderr(), "verify and seal", func() (struct{}, error) { return struct{}{}, c.Seal(ptau, cache, beacon) }); err != nil {
				return err
			}
			printTrust(cmd.OutOrStdout(), cmd.ErrOrStderr(), m, circuits.Groth16)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory with a ceremony")
	cmd.Flags().StringVar(&ptau, "ptau", "", "the Powers of Tau file the ceremony began with")
	cmd.Flags().StringVar(&beacon, "beacon", "", "public random beacon, hex, announced before and drawn after the last contribution (e.g. a drand round's randomness)")
	addSRSCacheFlag(cmd, &cacheFlag)
	for _, f := range []string{"dir", "ptau", "beacon"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func ceremonyVerifyCmd() *cobra.Command {
	var dir, ptau, cacheFlag string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Re-check the whole transcript from the circuit and the ptau (and the sealed keys); exit status 2 if invalid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, c, err := openCeremony(dir)
			if err != nil {
				return err
			}
			cache, err := srsCache(cacheFlag)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if _, err := step(cmd.ErrOrStderr(), "verify transcript", func() (struct{}, error) { return struct{}{}, c.Verify(ptau, cache) }); err != nil {
				fmt.Fprintf(out, "INVALID: %v\n", err)
				return exitError(2)
			}
			printTranscript(cmd, c)
			if c.State.Sealed != nil {
				fmt.Fprintln(out, "valid transcript; the model's Groth16 keys are its sealed result")
			} else {
				fmt.Fprintln(out, "valid transcript (not sealed yet)")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory with a ceremony")
	cmd.Flags().StringVar(&ptau, "ptau", "", "the Powers of Tau file the ceremony began with")
	addSRSCacheFlag(cmd, &cacheFlag)
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("ptau")
	return cmd
}

func ceremonyStatusCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the public transcript (contributors, hashes, times) and the current state file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, c, err := openCeremony(dir)
			if err != nil {
				return err
			}
			printTranscript(cmd, c)
			if c.State.Sealed == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "current state (for the next contributor): %s\n", c.CurrentFile())
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory with a ceremony")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// openCeremony opens a model directory and its ceremony.
func openCeremony(dir string) (*prover.Model, *prover.Ceremony, error) {
	m, err := prover.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	c, err := m.OpenCeremony()
	return m, c, err
}

func printTranscript(cmd *cobra.Command, c *prover.Ceremony) {
	out := cmd.OutOrStdout()
	s := c.State
	fmt.Fprintf(out, "model %s, circuit sha256 %s\nptau blake2b %s (power %d, used 2^%d)\n0 initial  %s\n", s.ModelID, s.Circuit, s.Ptau.BLAKE2b, s.Ptau.Power, s.Ptau.DomainPower, s.Initial)
	for i, r := range s.Contributions {
		fmt.Fprintf(out, "%d %-8s %s  %s\n", i+1, r.Name, r.Hash, r.Time.Format("2006-01-02T15:04:05Z"))
	}
	if s.Sealed != nil {
		fmt.Fprintf(out, "sealed %s with beacon %s\n", s.Sealed.Format("2006-01-02T15:04:05Z"), s.Beacon)
	}
}
