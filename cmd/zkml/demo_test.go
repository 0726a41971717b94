package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary act as zkml's job child: the service demo runs jobs
// in a child process started from os.Executable().
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "internal-job" || os.Args[1] == "internal-prove") {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestServiceDemo runs the README's main command: the service with the embedded store
// on the bundled example.
func TestServiceDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole service flow; skipped in -short")
	}
	out, err := run(t, "demo", "--example", "../../examples/mnist_cnn", "--dir", t.TempDir())
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"embedded SQLite", "prove groth16    succeeded", "valid=true", "forged output: valid=false", "verifier.sol"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestOfflineDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("proves the bundled CNN; skipped in -short")
	}
	out, err := run(t, "demo", "--offline", "--example", "../../examples/mnist_cnn", "--dir", t.TempDir())
	if err != nil || !strings.Contains(out, "is valid") {
		t.Fatalf("offline demo: %v\n%s", err, out)
	}
}
