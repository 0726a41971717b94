package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/prover"
)

// cliProcess is the zkml command run as a child process (the test binary, see
// TestMain), its stderr read line by line.
type cliProcess struct {
	cmd    *exec.Cmd
	stdout strings.Builder
	mu     sync.Mutex
	stderr strings.Builder
	lines  chan string // stderr lines, closed at EOF
	done   chan struct{}
	err    error // cmd.Wait's, once done is closed
}

func startCLI(t *testing.T, env []string, args ...string) *cliProcess {
	t.Helper()
	p := &cliProcess{cmd: exec.Command(os.Args[0], args...), lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), "ZKML_TEST_CLI=1", "ZKML_TEST_PROGRESS=100ms"), env...)
	p.cmd.Stdout = &p.stdout
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		io.Copy(io.Discard, errPipe)
		close(p.lines)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *cliProcess) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLine waits up to d for a stderr line containing every one of want.
func (p *cliProcess) waitLine(t *testing.T, d time.Duration, want ...string) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.done
				t.Fatalf("zkml %s exited (%v) before printing a line with %q; stderr:\n%s", p.cmd.Args[1], p.err, want, p.stderrText())
			}
			hit := true
			for _, w := range want {
				hit = hit && strings.Contains(l, w)
			}
			if hit {
				return l
			}
		case <-timeout:
			t.Fatalf("no line with %q after %v; stderr:\n%s", want, d, p.stderrText())
		}
	}
}

// waitExit waits up to d for the process to exit and returns its state.
func (p *cliProcess) waitExit(t *testing.T, d time.Duration) *os.ProcessState {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("zkml %s still running %v after the signal (killed); stderr:\n%s", p.cmd.Args[1], d, p.stderrText())
		return nil
	}
}

// writeSqueezeNet writes a small SqueezeNet (32x32 input, channels / 8): choosing its
// settings takes seconds, its Groth16 setup too (6-7 s each on 2 cores).
func writeSqueezeNet(t *testing.T) (onnxPath, inputPath string) {
	t.Helper()
	arch, err := onnxgen.ParseArch("squeezenet", 32, 8, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	onnx, input, _, err := arch.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	onnxPath, inputPath = filepath.Join(dir, "network.onnx"), filepath.Join(dir, "input.json")
	if err := os.WriteFile(onnxPath, onnx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inputPath, input, 0o644); err != nil {
		t.Fatal(err)
	}
	return onnxPath, inputPath
}

// TestInterruptStopsCompile: SIGTERM or SIGINT while compile chooses settings (a
// CPU-bound step that looks at no context) stops it at once, with a message and 128 +
// the signal's number, and leaves no model directory. It used to run to the end:
// the signal was swallowed by signal.NotifyContext.
func TestInterruptStopsCompile(t *testing.T) {
	onnx, input := writeSqueezeNet(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m.zkml")
			p := startCLI(t, nil, "compile", onnx, "-d", dir, "--system", "groth16", "--input", input)
			p.waitLine(t, 60*time.Second, "choose settings", "running")
			sent := time.Now()
			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			st := p.waitExit(t, 10*time.Second)
			took := time.Since(sent)
			t.Logf("exited %v after the signal: %v", took.Round(time.Millisecond), st)
			if st.ExitCode() != tc.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", st.ExitCode(), tc.code, p.stderrText())
			}
			if took > 5*time.Second {
				t.Errorf("took %v to stop, want about a second at most", took)
			}
			if !strings.Contains(p.stderrText(), "zkml: interrupted\n") {
				t.Errorf("stderr lacks %q:\n%s", "zkml: interrupted", p.stderrText())
			}
			if strings.Contains(p.stdout.String(), "model ID") {
				t.Errorf("compile finished anyway:\n%s", p.stdout.String())
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("model directory after an interrupt in choose settings: %v", err)
			}
		})
	}
}

// TestInterruptedSetupLeavesNoKeys interrupts a Groth16 setup and checks the claim of
// signals.go: what it leaves in the model directory is not taken for keys, even with
// stray key files of a write cut short between the rename and the manifest.
func TestInterruptedSetupLeavesNoKeys(t *testing.T) {
	onnx, input := writeSqueezeNet(t)
	dir := filepath.Join(t.TempDir(), "m.zkml")
	if _, err := run(t, "compile", onnx, "-d", dir, "--system", "groth16"); err != nil {
		t.Fatal(err)
	}
	p := startCLI(t, nil, "setup", "-d", dir, "--system", "groth16")
	p.waitLine(t, 60*time.Second, "setup groth16", "running")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := p.waitExit(t, 10*time.Second); st.ExitCode() != 143 {
		t.Fatalf("setup exit status %d, want 143; stderr:\n%s", st.ExitCode(), p.stderrText())
	}
	// A kill between writeAtomic's rename and the manifest's: files the manifest does
	// not list, and a temporary file.
	for name, b := range map[string][]byte{"pk.groth16.bin": []byte("half a key"), "vk.groth16.bin": nil, ".tmp-manifest.json123": []byte("{")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := prover.Open(dir)
	if err != nil {
		t.Fatalf("the interrupted directory does not open: %v", err)
	}
	if !m.Has("circuit", circuits.Groth16) || m.Has("pk", circuits.Groth16) || m.Has("vk", circuits.Groth16) {
		t.Fatalf("after an interrupted setup: circuit %v, pk %v, vk %v; want the circuit alone",
			m.Has("circuit", circuits.Groth16), m.Has("pk", circuits.Groth16), m.Has("vk", circuits.Groth16))
	}
	if _, err := run(t, "prove", "-d", dir, "--input", input); err == nil || !strings.Contains(err.Error(), "no pk for groth16") {
		t.Errorf("prove after an interrupted setup: %v, want no pk", err)
	}
	if _, err := run(t, "verify", "-d", dir); err == nil || !strings.Contains(err.Error(), "vk.groth16.bin is missing") {
		t.Errorf("verify after an interrupted setup: %v, want vk.groth16.bin missing", err)
	}
}

// startServe starts `zkml serve` on a loopback port with a fresh embedded store and
// returns it with its address, once it listens.
func startServe(t *testing.T) (*cliProcess, string) {
	t.Helper()
	p := startCLI(t, []string{"ZKML_SHUTDOWN_GRACE=30s"}, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	var rec struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal([]byte(p.waitLine(t, 60*time.Second, `"msg":"listening"`)), &rec); err != nil || rec.Addr == "" {
		t.Fatalf("listening line: %v %+v", err, rec)
	}
	return p, rec.Addr
}

// TestServeGracefulShutdown: the first SIGTERM shuts serve down gracefully (exit
// status 0, its "stopped" log).
func TestServeGracefulShutdown(t *testing.T) {
	p, _ := startServe(t)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := p.waitExit(t, 20*time.Second)
	if st.ExitCode() != 0 || !strings.Contains(p.stderrText(), `"msg":"stopped"`) {
		t.Fatalf("serve after SIGTERM: %v; stderr:\n%s", st, p.stderrText())
	}
}

// TestServeSecondSignalKills: a second SIGTERM while serve waits in its graceful
// shutdown (for a request whose headers have not all arrived) kills it at once. It
// used to be swallowed like the first.
func TestServeSecondSignalKills(t *testing.T) {
	p, addr := startServe(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: zkml\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server reads it: the connection is active
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLine(t, 10*time.Second, `"msg":"shutting down"`)
	select {
	case <-p.done:
		t.Fatalf("serve did not wait for the open request: %v; stderr:\n%s", p.cmd.ProcessState, p.stderrText())
	case <-time.After(500 * time.Millisecond):
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := p.waitExit(t, 3*time.Second)
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("serve after a second SIGTERM: %v, want killed by SIGTERM; stderr:\n%s", st, p.stderrText())
	}
}

// TestInterruptedDemoRemovesItsDir: an interrupted demo removes the temporary model
// directory it made, as its end does.
func TestInterruptedDemoRemovesItsDir(t *testing.T) {
	onnx, _ := writeSqueezeNet(t)
	tmp := t.TempDir()
	p := startCLI(t, []string{"TMPDIR=" + tmp}, "demo", "--offline", "--example", filepath.Dir(onnx))
	p.waitLine(t, 60*time.Second, "setup groth16", "running")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if st := p.waitExit(t, 10*time.Second); st.ExitCode() != 130 {
		t.Fatalf("demo exit status %d, want 130; stderr:\n%s", st.ExitCode(), p.stderrText())
	}
	assertEmpty(t, tmp)
}
