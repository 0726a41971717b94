package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeCommands returns the `zkml ...` lines of the first sh block of the README's
// "Command line" section, without their trailing comments, and the whole block.
func readmeCommands(t *testing.T, readme string) (lines []string, block string) {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Command line\n")
	if i < 0 {
		t.Fatalf("%s has no \"## Command line\" section", readme)
	}
	s = s[i:]
	start := strings.Index(s, "\n```sh\n")
	if start < 0 {
		t.Fatalf("%s: no ```sh block in \"Command line\"", readme)
	}
	s = s[start+len("\n```sh\n"):]
	end := strings.Index(s, "\n```")
	if end < 0 {
		t.Fatalf("%s: unterminated ```sh block in \"Command line\"", readme)
	}
	block = s[:end]
	for _, line := range strings.Split(block, "\n") {
		if c := strings.Index(line, "#"); c >= 0 {
			line = line[:c]
		}
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "zkml ") {
			lines = append(lines, line)
		}
	}
	return lines, block
}

// shellFields splits a README command line into arguments. The lines are kept to plain
// words so that running them without a shell is what a shell would run.
func shellFields(t *testing.T, line string) []string {
	t.Helper()
	if strings.ContainsAny(line, "'\"$`|&;<>()*?\\") {
		t.Fatalf("README command %q uses shell syntax; keep the lines to plain words", line)
	}
	return strings.Fields(line)
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// gasClaim finds the README's "about NNNk gas" figure for `verify --evm`.
var gasClaim = regexp.MustCompile(`verifier \(about (\d+)k gas\)`)

// TestREADMECommands runs every `zkml ...` line of the README's "Command line" block, in
// order, through the CLI in a fresh directory holding a copy of examples/ (as a user in
// a clone would), so that the README and the CLI cannot drift apart. It also checks what
// the README says about the results: the default model directory of compile, and the
// gas figure of `verify --evm` (within 1k gas: the random setup moves it by a few dozen).
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's pipeline (setup, prove, EVM verification, bench); skipped in -short")
	}
	lines, block := readmeCommands(t, "../../README.md")
	if len(lines) < 10 {
		t.Fatalf("found only %d zkml lines in the README's Command line block:\n%s", len(lines), block)
	}
	work := t.TempDir()
	copyTree(t, "../../examples", filepath.Join(work, "examples"))
	t.Chdir(work)
	var evmOut string
	for _, line := range lines {
		args := shellFields(t, line)[1:]
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		t.Logf("%s: ok", line)
		if args[0] == "verify" && strings.Contains(line, "--evm") {
			evmOut = out
		}
	}

	// compile without -d writes <model file name>.zkml in the current directory.
	for _, line := range lines {
		args := shellFields(t, line)
		if args[1] != "compile" || strings.Contains(line, " -d ") {
			continue
		}
		dir := strings.TrimSuffix(filepath.Base(args[2]), ".onnx") + ".zkml"
		if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
			t.Errorf("%s: no model directory %s: %v", line, dir, err)
		}
		if !strings.Contains(block, "writes "+dir+"/") {
			t.Errorf("the README does not say that %q writes %s/", line, dir)
		}
	}

	// The README's gas figure is what verify --evm measures.
	m := gasClaim.FindStringSubmatch(block)
	if m == nil {
		t.Fatalf("no \"verifier (about NNNk gas)\" in the README's Command line block")
	}
	var claimed, gas int
	fmt.Sscan(m[1], &claimed)
	i := strings.Index(evmOut, "verify gas ")
	if i < 0 {
		t.Fatalf("no gas figure in the output of verify --evm: %q", evmOut)
	}
	if _, err := fmt.Sscanf(evmOut[i:], "verify gas %d", &gas); err != nil {
		t.Fatal(err)
	}
	if d := gas - claimed*1000; d < -1000 || d > 1000 {
		t.Errorf("README says about %dk gas, verify --evm measures %d: update the README", claimed, gas)
	}
}

// TestReadmeCommandsParse checks the README parser on a block with comments, blank
// lines and a non-zkml command (this part runs in -short too).
func TestReadmeCommandsParse(t *testing.T) {
	readme := filepath.Join(t.TempDir(), "README.md")
	doc := "# x\n\n## Other\n\n```sh\nzkml other\n```\n\n## Command line\n\n```sh\ngo install ./cmd/zkml\n\n" +
		"# a comment\nzkml compile a.onnx -d a.zkml   # trailing\n  zkml setup -d a.zkml\n```\n\n```sh\nzkml later\n```\n"
	if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := readmeCommands(t, readme)
	want := []string{"zkml compile a.onnx -d a.zkml", "zkml setup -d a.zkml"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q, want %q", got, want)
	}
	// And the real README has a block to run.
	if lines, _ := readmeCommands(t, "../../README.md"); len(lines) == 0 {
		t.Fatal("the README's Command line block has no zkml line")
	}
}

// TestDefaultDir pins compile's default model directory: the model file's name, in the
// current directory (it used to be the parent folder's name for network.onnx).
func TestDefaultDir(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"examples/mnist_cnn/network.onnx", "network.zkml"},
		{"cnn.int8.onnx", "cnn.int8.zkml"},
		{"/models/model.onnx", "model.zkml"},
		{"weights", "weights.zkml"},
	} {
		if got := defaultDir(tt.in); got != tt.want {
			t.Errorf("defaultDir(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCompileHelpVisibility checks that compile --help offers every visibility the
// settings accept (hashed inputs and outputs work; the help used to omit them).
func TestCompileHelpVisibility(t *testing.T) {
	out, err := run(t, "compile", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--input-visibility", "--output-visibility", "--param-visibility"} {
		i := strings.Index(out, flag)
		if i < 0 {
			t.Fatalf("compile --help lacks %s:\n%s", flag, out)
		}
		line, _, _ := strings.Cut(out[i:], "\n")
		if !strings.Contains(line, "public, private or hashed") {
			t.Errorf("compile --help: %q does not offer public, private and hashed", line)
		}
	}
}
