package main

import (
	"fmt"
	"io"
	"math/bits"
	"os"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model/quant"
)

// envJobMemory is the memory budget of a job (a compile, setup or proof): the CLI's
// default for --max-memory, and the service's admission limit (serve.go).
const envJobMemory = "ZKML_MAX_JOB_MEMORY"

// memoryBudget is the --max-memory flag of compile, setup and prove: before building
// a circuit, the model's memory is estimated from its lowered program (the service's
// admission estimate, bench.EstimateProgram) and a model over the budget is refused,
// instead of running until the kernel kills it.
type memoryBudget struct {
	flag string
	cmd  *cobra.Command
}

func (b *memoryBudget) register(cmd *cobra.Command) {
	b.cmd = cmd
	cmd.Flags().StringVar(&b.flag, "max-memory", "", "refuse a model whose estimated peak memory is above this many bytes (KiB, MiB or GiB suffix; 0: no limit) before building its circuit (default $"+envJobMemory+", else this machine's memory)")
}

// limits resolves the budget: the flag, else $ZKML_MAX_JOB_MEMORY, else the machine's
// memory (bench.MachineMemory; unlimited where it cannot be read).
func (b *memoryBudget) limits() (bench.Limits, error) {
	if b.cmd != nil && b.cmd.Flags().Changed("max-memory") {
		n, err := parseBytes(b.flag)
		if err != nil {
			return bench.Limits{}, fmt.Errorf("--max-memory: %w", err)
		}
		return bench.Limits{MaxMemoryBytes: n, MemorySource: "--max-memory"}, nil
	}
	if v := os.Getenv(envJobMemory); v != "" {
		n, err := parseBytes(v)
		if err != nil {
			return bench.Limits{}, fmt.Errorf("%s: %w", envJobMemory, err)
		}
		return bench.Limits{MaxMemoryBytes: n, MemorySource: envJobMemory}, nil
	}
	return bench.Limits{MaxMemoryBytes: bench.MachineMemory(), MemorySource: "this machine's memory; set --max-memory or " + envJobMemory}, nil
}

// check estimates p in each proving system and refuses it, naming the estimate and
// the budget, when one is over the budget (an error wrapping bench.ErrOverBudget).
// With w, it prints each estimate.
func (b *memoryBudget) check(p *quant.Program, syss []circuits.System, w io.Writer) error {
	l, err := b.limits()
	if err != nil {
		return err
	}
	for _, sys := range syss {
		est, err := bench.EstimateProgram(p, sys)
		if err != nil {
			return err
		}
		if w != nil {
			fmt.Fprintf(w, "estimate %s: at most %d constraints, %d wires, domain 2^%d, %d MiB\n",
				sys, est.Constraints, est.Wires, bits.Len64(uint64(est.Domain))-1, est.MemoryBytes>>20)
		}
		if err := l.Check(est); err != nil {
			return fmt.Errorf("model refused before building its circuit: %w", err)
		}
	}
	return nil
}
