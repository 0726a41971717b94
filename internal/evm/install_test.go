package evm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// isolate points the user cache directory and the solc overrides at a fresh temporary
// directory and returns the cache directory zkml installs into.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	t.Setenv(EnvSolc, "")
	t.Setenv(EnvSolcJS, "")
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLocate(t *testing.T) {
	cache := isolate(t)
	pinned, err := PinnedSolcVersion()
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && cache != filepath.Join(os.Getenv("XDG_CACHE_HOME"), "zkml", "solc-"+pinned) {
		t.Fatalf("cache dir %s is not $XDG_CACHE_HOME/zkml/solc-%s", cache, pinned)
	}
	a, b := t.TempDir(), t.TempDir()
	wrapper := filepath.Join(b, "solcjs-standard-json.js")
	if err := os.WriteFile(wrapper, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, explicit, env, envJS, want string
	}{
		{"user cache by default", "", "", "", cache},
		{"ZKML_SOLCJS (former name)", "", "", b, b},
		{"ZKML_SOLCJS naming the wrapper script", "", "", wrapper, b},
		{"ZKML_SOLC over ZKML_SOLCJS", "", a, b, a},
		{"--solc over the environment", b, a, a, b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvSolc, tt.env)
			t.Setenv(EnvSolcJS, tt.envJS)
			got, err := Locate(tt.explicit)
			if err != nil || got != tt.want {
				t.Fatalf("Locate(%q) = %q, %v; want %q", tt.explicit, got, err, tt.want)
			}
		})
	}
}

// fakeNPM puts an `npm` on PATH whose `ci` installs a stand-in solc package (version
// version, answering --version and compiling nothing) after checking that it runs in a
// directory holding the embedded package.json and package-lock.json. It counts its runs
// in the returned file.
func fakeNPM(t *testing.T, version string) (count string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in npm is a shell script")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not in PATH")
	}
	bin := t.TempDir()
	count = filepath.Join(bin, "runs")
	script := `#!/bin/sh
set -e
echo run >> "` + count + `"
[ "$1" = ci ] || { echo "want npm ci, got $*" >&2; exit 1; }
grep -q '"solc"' package.json && [ -f package-lock.json ] || { echo "no package files" >&2; exit 1; }
mkdir -p node_modules/solc
echo '{"name": "solc", "version": "` + version + `"}' > node_modules/solc/package.json
echo 'module.exports = {version: () => "` + version + `+fake", compile: () => "{}"};' > node_modules/solc/index.js
`
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	node, _ := exec.LookPath("node")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+filepath.Dir(node))
	return count
}

func runs(t *testing.T, count string) int {
	t.Helper()
	b, err := os.ReadFile(count)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run")
}

// TestEnsureInstallsOnce checks the first-use path of an installed binary: nothing in
// the cache, so Ensure installs the pinned solc-js there with npm (saying so), and the
// next call finds it without running npm.
func TestEnsureInstallsOnce(t *testing.T) {
	cache := isolate(t)
	pinned, err := PinnedSolcVersion()
	if err != nil {
		t.Fatal(err)
	}
	count := fakeNPM(t, pinned)
	if _, err := NewCompiler(DefaultFork); !errors.Is(err, ErrSolcUnavailable) {
		t.Fatalf("NewCompiler before install: %v, want ErrSolcUnavailable", err)
	}
	var log bytes.Buffer
	c, err := Ensure(context.Background(), "", &log)
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir() != cache || c.Version() != pinned+"+fake" {
		t.Fatalf("compiler in %s, version %s; want %s, %s+fake", c.Dir(), c.Version(), cache, pinned)
	}
	if !strings.Contains(log.String(), "installing solc-js "+pinned) || !strings.Contains(log.String(), cache) {
		t.Errorf("no install message naming the version and directory: %q", log.String())
	}
	log.Reset()
	if _, err := Ensure(context.Background(), "", &log); err != nil {
		t.Fatal(err)
	}
	if n := runs(t, count); n != 1 || log.Len() != 0 {
		t.Fatalf("second Ensure: npm ran %d times in all, log %q; want 1 and silence", n, log.String())
	}
	if _, err := NewCompiler(DefaultFork); err != nil {
		t.Fatalf("NewCompiler finds the cache: %v", err)
	}
	leftovers, _ := filepath.Glob(cache + ".install-*")
	if len(leftovers) != 0 {
		t.Errorf("temporary install directories left: %v", leftovers)
	}
}

// TestEnsureOverrides checks that a location given by --solc or $ZKML_SOLC is used as
// it is: never installed into, and rejected when it holds another solc version.
func TestEnsureOverrides(t *testing.T) {
	isolate(t)
	count := fakeNPM(t, "0.0.1")
	empty := t.TempDir()
	if _, err := Ensure(context.Background(), empty, &bytes.Buffer{}); !errors.Is(err, ErrSolcUnavailable) {
		t.Fatalf("--solc at an empty directory: %v, want ErrSolcUnavailable", err)
	}
	t.Setenv(EnvSolc, empty)
	if _, err := Ensure(context.Background(), "", &bytes.Buffer{}); !errors.Is(err, ErrSolcUnavailable) {
		t.Fatalf("$ZKML_SOLC at an empty directory: %v, want ErrSolcUnavailable", err)
	}
	if n := runs(t, count); n != 0 {
		t.Fatalf("npm ran %d times for an explicit location", n)
	}
	// A directory holding another version is refused, naming both versions.
	other := t.TempDir()
	cmd := exec.Command("npm", "ci")
	cmd.Dir = other
	if err := os.WriteFile(filepath.Join(other, "package.json"), []byte(`{"dependencies": {"solc": "0.0.1"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "package-lock.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stand-in npm: %v %s", err, out)
	}
	_, err := Ensure(context.Background(), other, &bytes.Buffer{})
	if pinned, _ := PinnedSolcVersion(); !errors.Is(err, ErrSolcUnavailable) || !strings.Contains(err.Error(), "0.0.1") || !strings.Contains(err.Error(), pinned) {
		t.Fatalf("wrong version: %v", err)
	}
}

// TestInstallWithoutNPM checks the message when npm is missing.
func TestInstallWithoutNPM(t *testing.T) {
	isolate(t)
	t.Setenv("PATH", t.TempDir())
	_, err := Ensure(context.Background(), "", &bytes.Buffer{})
	if !errors.Is(err, ErrSolcUnavailable) || !strings.Contains(err.Error(), "npm") {
		t.Fatalf("got %v, want ErrSolcUnavailable naming npm", err)
	}
}
