package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary act as zkml's job child: the service demo runs jobs
// in a child process started from os.Executable(). With ZKML_TEST_CLI set (cliCommand)
// it is the zkml command itself, and prints a running step's progress line every
// ZKML_TEST_PROGRESS (a duration) instead of every 10 s.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "internal-job" || os.Args[1] == "internal-prove") {
		main()
		return
	}
	if os.Getenv("ZKML_TEST_CLI") == "1" {
		if d, err := time.ParseDuration(os.Getenv("ZKML_TEST_PROGRESS")); err == nil {
			progressEvery = d
		}
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
	tmp := demoTempDir(t)
	out, err := run(t, "demo", "--example", "../../examples/mnist_cnn")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	assertEmpty(t, tmp)
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
	tmp := demoTempDir(t)
	out, err := run(t, "demo", "--offline", "--example", "../../examples/mnist_cnn")
	if err != nil || !strings.Contains(out, "is valid") {
		t.Fatalf("offline demo: %v\n%s", err, out)
	}
	assertEmpty(t, tmp)
}

// demoTempDir points the temporary directory at a fresh one, to see what the demo
// leaves there when it picks its own directory.
func demoTempDir(t *testing.T) string {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	return tmp
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("the demo left %s behind", filepath.Join(dir, e.Name()))
	}
}

// TestServeWarnsDevSetup: serve prints the development-setup warning that demo
// prints, since the service makes its keys with that setup.
func TestServeWarnsDevSetup(t *testing.T) {
	t.Setenv("ZKML_DATABASE_URL", "")
	root := newRoot()
	var errw syncBuffer
	root.SetOut(io.Discard)
	root.SetErr(&errw)
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errw.String(), "NOT FOR PRODUCTION") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	// Cancelled while it starts, serve may fail to open its store: only the
	// warning, printed before, matters here.
	if err := <-done; err != nil {
		t.Logf("serve: %v", err)
	}
	if !strings.Contains(errw.String(), "WARNING") || !strings.Contains(errw.String(), "NOT FOR PRODUCTION") {
		t.Errorf("serve prints no development-setup warning: %q", errw.String())
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
