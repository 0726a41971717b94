// Package typescript holds the TypeScript client of the zkml service (an npm package);
// its Go test runs the client's node tests against a real `zkml serve`.
package typescript_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/internal/onnxtest"
)

// TestTypeScriptClient builds zkml, starts `zkml serve` on a free loopback port with
// the embedded store in a temporary data directory, installs the client's pinned npm
// dependencies (scripts/ensure-ts-client.sh) and runs `npm test` (generated sources up
// to date, tsc, node --test) against it.
func TestTypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds zkml and runs the TypeScript client's node tests against zkml serve; skipped with -short")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the TypeScript client's tests need %s (Node.js >= 18), which is not on PATH", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tmp := t.TempDir()

	bin := filepath.Join(tmp, "zkml")
	runCmd(t, exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/zkml/zkml/cmd/zkml"))
	runCmd(t, exec.CommandContext(ctx, filepath.Join("..", "..", "scripts", "ensure-ts-client.sh")))
	model := filepath.Join(tmp, "tiny.onnx")
	if err := os.WriteFile(model, onnxtest.TinyGemm(1), 0o644); err != nil {
		t.Fatal(err)
	}

	const admin = "admin-key-for-the-typescript-client-test"
	serve := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(tmp, "data"))
	serve.Env = append(os.Environ(), "ZKML_ADMIN_KEY="+admin, "ZKML_DATABASE_URL=", "ZKML_POLL_INTERVAL=20ms",
		"ZKML_WEBHOOK_ALLOW_PRIVATE=true") // the node test receives a webhook on loopback
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	found, logDone := readLog(t, stderr)
	t.Cleanup(func() {
		serve.Process.Signal(os.Interrupt)
		<-logDone // the log's reads (and t.Log calls) end before Wait closes the pipe
		serve.Wait()
	})
	var addr string
	select {
	case a, ok := <-found:
		if !ok {
			t.Fatal("zkml serve exited before listening")
		}
		addr = a
	case <-time.After(time.Minute):
		t.Fatal("zkml serve did not log its listening address within a minute")
	}

	npm := exec.CommandContext(ctx, "npm", "test")
	npm.Env = append(os.Environ(), "ZKML_URL=http://"+addr, "ZKML_ADMIN_KEY="+admin, "ZKML_TEST_MODEL="+model)
	out, err := npm.CombinedOutput()
	if err != nil {
		t.Fatalf("npm test: %v\n%s", err, out)
	}
	// The service test must have run and passed, not been skipped: node's tap reporter
	// writes "ok N - name", its spec reporter "✔ name"; a skipped test is marked so.
	ran := regexp.MustCompile(`(?m)^\s*(ok \d+ - |✔ )drives the dApp flow[^\n#﹣]*$`)
	failed := regexp.MustCompile(`(?m)^(#|ℹ) fail 0$`)
	if !ran.Match(out) || !failed.Match(out) {
		t.Fatalf("npm test did not run and pass the service test:\n%s", out)
	}
	t.Logf("npm test:\n%s", out)
}

func runCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

// readLog copies the service's JSON log to the test log, sends the address of its
// "listening" line on found (closed when the log ends) and closes done at the end.
func readLog(t *testing.T, stderr io.Reader) (found <-chan string, done <-chan struct{}) {
	addrs := make(chan string, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer close(addrs)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			t.Log("zkml serve: " + line)
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" && rec.Addr != "" {
				select {
				case addrs <- rec.Addr:
				default:
				}
			}
		}
	}()
	return addrs, ended
}
