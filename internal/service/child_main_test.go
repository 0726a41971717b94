package service_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/spf13/pflag"

	"github.com/zkml/zkml/internal/engine"
)

// TestMain lets the test binary act as the engine's child process (`zkml
// internal-job`) when ZKML_SERVICE_CHILD=1, for tests of a real engine with
// ChildCommand (childEngine).
func TestMain(m *testing.M) {
	if os.Getenv("ZKML_SERVICE_CHILD") == "1" {
		var a engine.ChildArgs
		fs := pflag.NewFlagSet("child", pflag.ContinueOnError)
		a.RegisterFlags(fs)
		if err := fs.Parse(os.Args[1:]); err != nil {
			os.Exit(2)
		}
		if err := engine.RunChild(context.Background(), a, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childCommand is a ChildCommand that runs this test binary as the engine's child.
func childCommand(t *testing.T) []string {
	t.Setenv("ZKML_SERVICE_CHILD", "1")
	return []string{os.Args[0]}
}
