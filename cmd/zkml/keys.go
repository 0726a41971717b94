package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
	"github.com/zkml/zkml/srs"
)

func init() {
	extraCommands = append(extraCommands, keysCmd)
}

// srsCache returns the SRS cache directory: the flag's value, or srs.DefaultCacheDir.
func srsCache(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	return srs.DefaultCacheDir()
}

// addSRSCacheFlag registers --srs-cache on cmd.
func addSRSCacheFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "srs-cache", "", "where checked Powers of Tau imports are cached (default $ZKML_SRS_CACHE or the user cache dir)")
}

// setupPolicyFromEnv reads the service's setup policy: ZKML_PTAU (PLONK keys on that
// public SRS), ZKML_SRS_CACHE and ZKML_REQUIRE_TRUSTED_SETUP (refuse development
// setups, and verifier downloads for development keys).
func setupPolicyFromEnv() (prover.SetupPolicy, error) {
	pol := prover.SetupPolicy{Ptau: os.Getenv("ZKML_PTAU")}
	if v := os.Getenv("ZKML_REQUIRE_TRUSTED_SETUP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return pol, fmt.Errorf("ZKML_REQUIRE_TRUSTED_SETUP: %w", err)
		}
		pol.RequireTrusted = b
	}
	if pol.Ptau != "" {
		if _, err := os.Stat(pol.Ptau); err != nil {
			return pol, fmt.Errorf("ZKML_PTAU: %w", err)
		}
		cache, err := srs.DefaultCacheDir()
		if err != nil {
			return pol, err
		}
		pol.SRSCache = cache
	}
	return pol, nil
}

// printTrust says where sys's keys come from; development keys get a loud warning on
// errw, since whoever ran that setup can forge proofs that every verifier accepts.
func printTrust(out, errw io.Writer, m *prover.Model, sys circuits.System) {
	p := m.Provenance(sys)
	if shard.Sharded(m) {
		if pl, err := shard.Load(m); err == nil {
			p = shard.Dir{M: m, Sys: sys}.Trust(pl)
		}
	}
	fmt.Fprintf(out, "%s keys: %s\n", sys, p.Summary())
	if p.Trust == prover.TrustDevelopment {
		fmt.Fprintf(errw, "WARNING: %s keys of %s are DEVELOPMENT keys: whoever ran their setup can forge proofs "+
			"for any output. Do not deploy them; make production keys with `zkml setup --system plonk --srs FILE.ptau` "+
			"or a Groth16 ceremony (`zkml ceremony init`).\n", sys, m.Dir)
	}
}

// setupUniversal is `zkml setup --srs FILE.ptau`: PLONK keys on the public SRS.
func setupUniversal(cmd *cobra.Command, m *prover.Model, syss []circuits.System, ptau, cacheFlag string) error {
	cache, err := srsCache(cacheFlag)
	if err != nil {
		return err
	}
	for _, sys := range syss {
		if sys != circuits.Plonk {
			return fmt.Errorf("--srs makes PLONK keys; Groth16 needs a per-circuit phase-2 ceremony on the ptau: zkml ceremony init --dir %s --ptau %s", m.Dir, ptau)
		}
		if !m.Has("circuit", sys) {
			if _, err := step(cmd.ErrOrStderr(), "compile "+string(sys), func() (*circuits.Stats, error) { return m.Compile(sys) }); err != nil {
				return err
			}
		}
		if _, err := step(cmd.ErrOrStderr(), "setup "+string(sys)+" (public SRS)", func() (struct{}, error) { return struct{}{}, m.SetupUniversal(ptau, cache) }); err != nil {
			return err
		}
		printTrust(cmd.OutOrStdout(), cmd.ErrOrStderr(), m, sys)
	}
	return nil
}

func keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Show where a model's keys come from, and reproduce them from public inputs",
	}
	cmd.AddCommand(keysShowCmd(), keysReproduceCmd())
	return cmd
}

func keysShowCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the provenance of each system's keys (development, universal-srs or ceremony)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := prover.Open(dir)
			if err != nil {
				return err
			}
			all := map[string]*prover.Provenance{}
			for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
				if m.Has("vk", sys) {
					all[string(sys)] = m.Provenance(sys)
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			if len(all) == 0 {
				return fmt.Errorf("%s has no keys yet (run setup or a ceremony)", dir)
			}
			for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
				if _, ok := all[string(sys)]; ok {
					printTrust(cmd.OutOrStdout(), cmd.ErrOrStderr(), m, sys)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the provenance records as JSON")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func keysReproduceCmd() *cobra.Command {
	var dir, system, ptau, vkPath, cacheFlag string
	cmd := &cobra.Command{
		Use:   "reproduce",
		Short: "Re-derive the verifying key from the model and a public ptau, and compare (exit status 2 if it differs)",
		Long: `reproduce lets an auditor confirm that a published verifier belongs to a published
model, trusting neither the model directory's circuit nor its keys.

PLONK: the circuit is recompiled from the model and settings, its setup rerun on the
Powers of Tau file (PLONK's setup has no randomness), and the verifying key compared
byte for byte with --vk (a published vk.plonk.bin) or the model directory's.

Groth16: the whole ceremony transcript is verified from the circuit and the ptau, and
the sealed keys re-derived with the recorded beacon and compared with the model's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, sys, err := openModel(dir, system)
			if err != nil {
				return err
			}
			cache, err := srsCache(cacheFlag)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if sys == circuits.Groth16 {
				c, err := m.OpenCeremony()
				if err != nil {
					return err
				}
				if _, err := step(cmd.ErrOrStderr(), "verify transcript", func() (struct{}, error) { return struct{}{}, c.Verify(ptau, cache) }); err != nil {
					fmt.Fprintf(out, "NOT REPRODUCED: %v\n", err)
					return exitError(2)
				}
				if c.State.Sealed == nil {
					fmt.Fprintf(out, "transcript valid (%d contributions) but not sealed: no keys to compare yet\n", len(c.State.Contributions))
					return nil
				}
				fmt.Fprintf(out, "reproduced: the groth16 keys of %s are the sealed result of the transcript (%d contributions, beacon %s)\n", dir, len(c.State.Contributions), c.State.Beacon)
				return nil
			}
			got, err := step(cmd.ErrOrStderr(), "recompile and setup", func() (reproduced, error) {
				vk, ok, err := m.ReproducePlonkVK(ptau, cache)
				return reproduced{vk, ok}, err
			})
			if err != nil {
				return err
			}
			var want []byte
			if vkPath != "" {
				want, err = os.ReadFile(vkPath)
			} else {
				want, err = m.VerifyingKeyBytes(sys)
			}
			if err != nil {
				return err
			}
			if !got.circuitOK {
				fmt.Fprintln(out, "note: the model directory's stored circuit differs from the recompiled one (another zkml version?)")
			}
			sum := sha256.Sum256(got.vk)
			if !bytes.Equal(got.vk, want) {
				fmt.Fprintf(out, "NOT REPRODUCED: the verifying key from the model and the ptau (sha256 %x) differs from the one compared\n", sum)
				return exitError(2)
			}
			fmt.Fprintf(out, "reproduced: plonk verifying key sha256 %x from model %s and the ptau\n", sum, m.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory")
	cmd.Flags().StringVar(&system, "system", "plonk", "proving system: plonk or groth16")
	cmd.Flags().StringVar(&ptau, "ptau", "", "the Powers of Tau file the keys were made from")
	cmd.Flags().StringVar(&vkPath, "vk", "", "published verifying key to compare (default: the model directory's)")
	addSRSCacheFlag(cmd, &cacheFlag)
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("ptau")
	return cmd
}

// reproduced carries ReproducePlonkVK's results through step.
type reproduced struct {
	vk        []byte
	circuitOK bool
}
