package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
)

// shardedChildModel compiles and sets up (Groth16) the ReLU model cut in two through
// child processes of e, and returns its directory and an input.
func shardedChildModel(t *testing.T, e *Engine) (string, []byte) {
	t.Helper()
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	input, err := os.ReadFile("../../model/testdata/relu/input.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := e.Compile(ctx, dir, onnx, []byte(`{"shard":{"cuts":[1]}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Setup(ctx, dir, "groth16"); err != nil {
		t.Fatal(err)
	}
	return dir, input
}

// TestShardStepsInChild runs a sharded proof's steps (evaluate, each segment, assemble)
// in child processes: the bundle verifies, and a user error in a child keeps its api
// code (a bad input, a segment out of range, a tampered segment proof).
func TestShardStepsInChild(t *testing.T) {
	ctx := context.Background()
	e := &Engine{ChildCommand: selfChild(t)}
	dir, input := shardedChildModel(t, e)
	acts, n, err := e.PrepareSegments(ctx, dir, "groth16", input)
	if err != nil || n != 2 {
		t.Fatalf("prepare in a child: %d segments, %v", n, err)
	}
	var segs [][]byte
	for i := range n {
		sp, err := e.ProveSegment(ctx, dir, "groth16", acts, i)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, sp)
	}
	res, err := e.AssembleBundle(ctx, dir, "groth16", acts, segs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) == 0 || len(res.Calldata) == 0 {
		t.Fatalf("assembled in a child: %+v", res)
	}
	v, err := e.VerifyBundle(ctx, dir, "groth16", res.Proof)
	if err != nil || !v.Valid {
		t.Fatalf("bundle assembled in a child verifies %+v, %v", v, err)
	}

	if _, _, err := e.PrepareSegments(ctx, dir, "groth16", []byte(`{"input_data": [[1, 2]]}`)); !errors.Is(err, api.ErrInvalidInput) {
		t.Fatalf("bad input through a child: %v, want ErrInvalidInput", err)
	}
	if _, err := e.ProveSegment(ctx, dir, "groth16", acts, n); !errors.Is(err, api.ErrInvalidInput) {
		t.Fatalf("segment %d of %d through a child: %v, want ErrInvalidInput", n, n, err)
	}
	// Segment 1's proof in segment 0's place: the child's verification refuses it.
	if _, err := e.AssembleBundle(ctx, dir, "groth16", acts, [][]byte{segs[1], segs[1]}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("tampered bundle assembled in a child: %v", err)
	}
}

// crashOn is a child command that runs this test binary as the child, except for
// the operation op: that one records its flags in args and dies like a Go runtime out
// of memory (message, then SIGKILL), or, with hang, sleeps until it is killed.
func crashOn(t *testing.T, op, args string, hang bool) []string {
	selfChild(t)
	die := `echo 'fatal error: runtime: out of memory' >&2; kill -9 $$`
	if hang {
		die = `exec sleep 60`
	}
	script := `case " $* " in *" --op ` + op + ` "*) echo "$*" > "$ARGS"; ` + die + `;; esac; exec "$SELF" "$@"`
	t.Setenv("ARGS", args)
	t.Setenv("SELF", os.Args[0])
	return []string{"/bin/sh", "-c", script, "sh"}
}

// TestShardChildDies: each sharded step whose child dies fails with ErrResourceLimit
// naming the runtime's error (a worker fails the job instead of dying), under the
// engine's memory limit; a cancelled step kills its child and returns at once.
func TestShardChildDies(t *testing.T) {
	ctx := context.Background()
	dir, input := shardedChildModel(t, &Engine{ChildCommand: selfChild(t)})
	acts, _, err := (&Engine{ChildCommand: selfChild(t)}).PrepareSegments(ctx, dir, "groth16", input)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 3 << 30
	steps := map[string]func(e *Engine) error{
		OpPrepareSegments: func(e *Engine) error { _, _, err := e.PrepareSegments(ctx, dir, "groth16", input); return err },
		OpProveSegment:    func(e *Engine) error { _, err := e.ProveSegment(ctx, dir, "groth16", acts, 1); return err },
		OpAssembleBundle: func(e *Engine) error {
			_, err := e.AssembleBundle(ctx, dir, "groth16", acts, [][]byte{[]byte("{}"), []byte("{}")})
			return err
		},
	}
	for op, step := range steps {
		args := filepath.Join(t.TempDir(), "args")
		e := &Engine{ChildCommand: crashOn(t, op, args, false)}
		e.Limits.MaxMemoryBytes = limit
		err := step(e)
		if !errors.Is(err, api.ErrResourceLimit) || !strings.Contains(err.Error(), "fatal error: runtime: out of memory") ||
			!strings.Contains(err.Error(), "memory limit 3072 MiB") {
			t.Fatalf("%s: dying child gave %v", op, err)
		}
		b, _ := os.ReadFile(args)
		if !strings.Contains(string(b), "--memory-limit 3221225472") || !strings.Contains(string(b), "--dir "+dir) {
			t.Fatalf("%s child ran with %q: no memory limit or directory", op, b)
		}
		if op == OpProveSegment && !strings.Contains(string(b), "--segment 1") {
			t.Fatalf("segment child ran with %q", b)
		}
	}

	e := &Engine{ChildCommand: crashOn(t, OpProveSegment, filepath.Join(t.TempDir(), "args"), true)}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := e.ProveSegment(cctx, dir, "groth16", acts, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled segment: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancelled segment returned after %s", d)
	}
}
