// Command zkml proves neural-network inference with zk-SNARKs: it compiles an ONNX
// model into a gnark circuit, runs the setup, proves inferences and verifies proofs,
// from the command line or as an HTTP service.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/consensys/gnark/logger"
	"github.com/spf13/cobra"
)

func main() {
	err := newRoot().ExecuteContext(handleInterrupts())
	if interrupted() {
		// The command returned (with the cancelled context's error, or none) within
		// the grace after the signal.
		exitInterrupted()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "zkml:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit status (verify: 2 for an invalid proof).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRoot() *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:           "zkml",
		Short:         "Prove neural-network inference with zk-SNARKs (gnark, BN254)",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			setGraceful(cmd)
			if !verbose {
				logger.Disable()
			}
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "show gnark's own logs")
	root.AddCommand(compileCmd(), setupCmd(), proveCmd(), verifyCmd(), demoCmd())
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	return root
}

// extraCommands lets other files (service, on-chain, bench) register subcommands.
var extraCommands []func() *cobra.Command
