package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/prover"
)

// TestMain lets the test binary act as the engine's child process (ZKML_ENGINE_CHILD=1,
// the flags of ChildArgs after "--"), like `zkml internal-job`.
func TestMain(m *testing.M) {
	switch os.Getenv("ZKML_ENGINE_CHILD") {
	case "1":
		os.Exit(childMain())
	case "orphan-parent":
		os.Exit(orphanParent())
	}
	os.Exit(m.Run())
}

func childMain() int {
	var a ChildArgs
	fs := pflag.NewFlagSet("child", pflag.ContinueOnError)
	a.RegisterFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if f := os.Getenv("ZKML_ENGINE_CHILD_PIDFILE"); f != "" {
		// The orphan test: report who we are, then hang like a long proof.
		os.WriteFile(f, []byte(fmt.Sprintf("%d %s", os.Getpid(), a.TmpDir)), 0o600)
		watchParent(a.TmpDir, os.Stdin)
		select {}
	}
	if err := RunChild(context.Background(), a, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func selfChild(t *testing.T) []string {
	t.Setenv("ZKML_ENGINE_CHILD", "1")
	return []string{os.Args[0]}
}

var tinyInput = []byte(`{"input_data": [[0.5, -1, 2, 0.25]]}`)

// TestChildPipeline compiles, sets up and proves through child processes, and checks
// that a user error in the child keeps its api code.
func TestChildPipeline(t *testing.T) {
	ctx := context.Background()
	e := &Engine{ChildCommand: selfChild(t)}
	dir := t.TempDir()
	info, err := e.Compile(ctx, dir, bench.Elementwise("Relu", 4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Constraints["groth16"] == 0 || info.Constraints["plonk"] == 0 {
		t.Fatalf("model info incomplete: %+v", info)
	}
	// The child made the keys; the parent reads their provenance from the manifest.
	if prov, err := e.Setup(ctx, dir, "groth16"); err != nil {
		t.Fatal(err)
	} else if prov.Trust != api.TrustDevelopment {
		t.Fatalf("child setup reports %+v", prov)
	}
	res, err := e.Prove(ctx, dir, "groth16", tinyInput, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.Verify(ctx, dir, "groth16", res.Proof, res.PublicInputs)
	if err != nil || !v.Valid {
		t.Fatalf("child proof verifies %+v, %v", v, err)
	}
	_, err = e.Compile(ctx, t.TempDir(), []byte("not onnx"), nil)
	if !errors.Is(err, api.ErrInvalidModel) {
		t.Fatalf("bad model through a child: %v, want ErrInvalidModel", err)
	}
}

// TestChildCrashFailsJob: a child that dies (here: a Go fatal error, then SIGKILL)
// fails the call with ErrResourceLimit naming the fatal error; this process lives on.
func TestChildCrashFailsJob(t *testing.T) {
	e := &Engine{ChildCommand: []string{"/bin/sh", "-c", "echo 'fatal error: stack overflow' >&2; kill -9 $$", "sh"}}
	_, err := e.Compile(context.Background(), t.TempDir(), bench.Elementwise("Relu", 4), nil)
	if !errors.Is(err, api.ErrResourceLimit) || !strings.Contains(err.Error(), "fatal error: stack overflow") {
		t.Fatalf("crashing child: %v", err)
	}
	if code := api.EngineErrorCode(err); code != api.CodeResourceLimit {
		t.Fatalf("code %q", code)
	}
}

// TestChildMemoryLimit: a compile needing far more than the child's memory limit dies
// inside the child (out of memory under its address-space limit) and fails the call.
func TestChildMemoryLimit(t *testing.T) {
	e := &Engine{ChildCommand: selfChild(t)}
	start := time.Now()
	// No budget, only the memory limit: the budget would refuse this model (estimated
	// at 4 GiB) before compiling, so this is how an unforeseen blow-up meets the limit.
	_, err := e.runChild(context.Background(), ChildArgs{Op: OpCompile, Dir: t.TempDir(), MemoryLimit: 64 << 20},
		map[string][]byte{"model.onnx": bench.Elementwise("mul_relu", 1<<16)})
	if !errors.Is(err, api.ErrResourceLimit) || !strings.Contains(err.Error(), "memory limit 64 MiB") {
		t.Fatalf("over its memory limit the child gave %v", err)
	}
	t.Logf("child died after %s: %v", time.Since(start), err)
}

// TestAdmitRefusesOverBudget is the regression test of issue 13's crash model: the
// 262144-element Mul -> Relu is refused by the default budgets before any work, with
// an error naming the limit; a small model is admitted.
func TestAdmitRefusesOverBudget(t *testing.T) {
	e := &Engine{Limits: bench.Limits{MaxConstraints: 1 << 23, MaxMemoryBytes: 16 << 30}}
	crash := bench.Elementwise("mul_relu", 262144)
	start := time.Now()
	err := e.Admit(context.Background(), crash, nil)
	if !errors.Is(err, api.ErrOverBudget) || !strings.Contains(err.Error(), "ZKML_MAX_") {
		t.Fatalf("crash model (%d bytes) admitted: %v", len(crash), err)
	}
	t.Logf("%d-byte model refused in %s: %v", len(crash), time.Since(start), err)
	if err := e.Admit(context.Background(), bench.Elementwise("Relu", 64), nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.Compile(context.Background(), t.TempDir(), crash, nil)
	if !errors.Is(err, api.ErrOverBudget) {
		t.Fatalf("compile of the crash model: %v", err)
	}
	small := &Engine{Limits: bench.Limits{MaxMemoryBytes: 300 << 20}}
	if err := small.Admit(context.Background(), bench.Elementwise("Relu", 1<<14), nil); !errors.Is(err, api.ErrOverBudget) ||
		!strings.Contains(err.Error(), "ZKML_MAX_JOB_MEMORY") {
		t.Fatalf("memory budget: %v", err)
	}
}

// TestAdmitInChild: with a child command the estimate runs in a child, under the
// memory limit. The crash model is refused by its estimate; a model so large that
// lowering it exceeds the limit is refused too, and this process never lowers it.
func TestAdmitInChild(t *testing.T) {
	e := &Engine{ChildCommand: selfChild(t), Limits: bench.Limits{MaxConstraints: 1 << 23, MaxMemoryBytes: 16 << 30}}
	if err := e.Admit(context.Background(), bench.Elementwise("mul_relu", 262144), nil); !errors.Is(err, api.ErrOverBudget) {
		t.Fatalf("crash model admitted: %v", err)
	}
	if err := e.Admit(context.Background(), bench.Elementwise("Relu", 64), nil); err != nil {
		t.Fatal(err)
	}
	tight := &Engine{ChildCommand: e.ChildCommand, Limits: bench.Limits{MaxMemoryBytes: 64 << 20}}
	err := tight.Admit(context.Background(), bench.Elementwise("mul_relu", 1<<24), nil)
	if !errors.Is(err, api.ErrOverBudget) || !strings.Contains(err.Error(), "lowering the model") {
		t.Fatalf("model too large to lower: %v", err)
	}
	// The compile child checks the constraint budget itself.
	small := &Engine{ChildCommand: e.ChildCommand, Limits: bench.Limits{MaxConstraints: 100}}
	if _, err := small.Compile(context.Background(), t.TempDir(), bench.Elementwise("Relu", 64), nil); !errors.Is(err, api.ErrOverBudget) ||
		!strings.Contains(err.Error(), "ZKML_MAX_CONSTRAINTS") {
		t.Fatalf("compile over the constraint budget in a child: %v", err)
	}
}

// orphanParent is a worker stand-in: it starts a child that hangs, then waits to be
// killed.
func orphanParent() int {
	e := &Engine{ChildCommand: []string{os.Args[0]}}
	os.Setenv("ZKML_ENGINE_CHILD", "1")
	_, err := e.runChild(context.Background(), ChildArgs{Op: OpProve, Dir: os.TempDir()}, map[string][]byte{"input.json": tinyInput})
	fmt.Fprintln(os.Stderr, "child returned:", err)
	return 1
}

// TestOrphanedChildExits kills -9 a process whose child is mid-job and checks that
// the child exits soon after and its temporary directory is gone.
func TestOrphanedChildExits(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "child.pid")
	parent := exec.Command(os.Args[0])
	parent.Env = append(os.Environ(), "ZKML_ENGINE_CHILD=orphan-parent", "ZKML_ENGINE_CHILD_PIDFILE="+pidfile)
	parent.Stderr = os.Stderr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	pid, tmp := waitChild(t, pidfile, func() { parent.Process.Kill() })
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("child's temp dir: %v", err)
	}
	parent.Process.Signal(syscall.SIGKILL)
	parent.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; {
		gone := syscall.Kill(pid, 0) != nil
		if _, err := os.Stat(tmp); gone && errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("orphaned child %d still alive (%v) or %s left behind", pid, !gone, tmp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCancelKillsChild: ending the context of a running child job (a cancel request
// or a timeout) kills the child at once and removes its temporary directory.
func TestCancelKillsChild(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "child.pid")
	t.Setenv("ZKML_ENGINE_CHILD_PIDFILE", pidfile)
	e := &Engine{ChildCommand: selfChild(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.runChild(ctx, ChildArgs{Op: OpProve, Dir: t.TempDir()}, map[string][]byte{"input.json": tinyInput})
		done <- err
	}()
	pid, tmp := waitChild(t, pidfile, cancel)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled child job: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the child job")
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("child %d still alive after cancel", pid)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp dir %s after cancel: %v", tmp, err)
	}
}

// waitChild waits for a hanging child (ZKML_ENGINE_CHILD_PIDFILE) to report its pid
// and temporary directory; on timeout it calls abort and fails.
func waitChild(t *testing.T, pidfile string, abort func()) (pid int, tmp string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(pidfile); err == nil && len(b) > 0 {
			if _, err := fmt.Sscanf(string(b), "%d %s", &pid, &tmp); err == nil {
				return pid, tmp
			}
		}
		if time.Now().After(deadline) {
			abort()
			t.Fatal("child did not start")
		}
	}
}

// TestChildSetupPolicy: a setup run in a child process obeys the engine's SetupPolicy
// (the child used to build a policy-less engine, so ZKML_REQUIRE_TRUSTED_SETUP and
// ZKML_PTAU were ignored by the service's setup jobs).
func TestChildSetupPolicy(t *testing.T) {
	ctx := context.Background()
	e := &Engine{ChildCommand: selfChild(t), SetupPolicy: prover.SetupPolicy{RequireTrusted: true}}
	dir := t.TempDir()
	if _, err := e.Compile(ctx, dir, bench.Elementwise("Relu", 4), nil); err != nil {
		t.Fatal(err)
	}
	_, err := e.Setup(ctx, dir, "groth16")
	if err == nil || !strings.Contains(err.Error(), "trusted setups are required") {
		t.Fatalf("development setup in a child under RequireTrusted: %v", err)
	}
}
