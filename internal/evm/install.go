package evm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/zkml/zkml/contracts"
)

// PinnedSolcVersion is the solc-js version pinned in contracts/package.json (embedded in
// the binary, so an installed zkml knows it without the source tree).
func PinnedSolcVersion() (string, error) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(contracts.PackageJSON, &pkg); err != nil {
		return "", fmt.Errorf("evm: contracts/package.json: %w", err)
	}
	v := pkg.Dependencies["solc"]
	if v == "" {
		return "", errors.New("evm: contracts/package.json has no solc dependency")
	}
	return v, nil
}

// CacheDir is where zkml installs the pinned solc-js: <user cache dir>/zkml/solc-<version>
// (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches on macOS).
func CacheDir() (string, error) {
	v, err := PinnedSolcVersion()
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no user cache directory (set $%s): %v", ErrSolcUnavailable, EnvSolc, err)
	}
	return filepath.Join(cache, "zkml", "solc-"+v), nil
}

// Locate says where solc-js is looked for: explicit (the CLI's --solc) when set, else
// $ZKML_SOLC, else $ZKML_SOLCJS, else CacheDir. A path to a file (such as the wrapper
// script ZKML_SOLCJS used to name) stands for its directory. Locate does not check that
// solc-js is installed there; NewCompilerAt does.
func Locate(explicit string) (string, error) {
	for _, p := range []string{explicit, os.Getenv(EnvSolc), os.Getenv(EnvSolcJS)} {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrSolcUnavailable, p, err)
		}
		if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
			abs = filepath.Dir(abs)
		}
		return abs, nil
	}
	return CacheDir()
}

// checkInstalled checks that dir/node_modules/solc holds the pinned version.
func checkInstalled(dir string) error {
	pinned, err := PinnedSolcVersion()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "solc", "package.json"))
	if err != nil {
		return fmt.Errorf("%w: solc-js %s is not installed in %s: %w", ErrSolcUnavailable, pinned, dir, err)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSolcUnavailable, filepath.Join(dir, "node_modules", "solc", "package.json"), err)
	}
	if pkg.Version != pinned {
		return fmt.Errorf("%w: %s holds solc %s, zkml needs the pinned %s", ErrSolcUnavailable, dir, pkg.Version, pinned)
	}
	return nil
}

// Ensure returns a compiler for DefaultFork from the solc-js Locate(explicit) names. When
// nothing overrides the location and CacheDir lacks solc-js, it first installs it there
// with npm (Install), telling log (the user) so; a location given by explicit or the
// environment is used as it is.
func Ensure(ctx context.Context, explicit string, log io.Writer) (*Compiler, error) {
	dir, err := Locate(explicit)
	if err != nil {
		return nil, err
	}
	if cache, err := CacheDir(); err == nil && dir == cache && errors.Is(checkInstalled(dir), fs.ErrNotExist) {
		if err := Install(ctx, dir, log); err != nil {
			return nil, err
		}
	}
	return NewCompilerAt(dir, DefaultFork)
}

// Install installs the pinned solc-js into dir: `npm ci` on the embedded
// contracts/package.json and package-lock.json in a fresh directory beside dir, renamed
// to dir when complete, so an interrupted install leaves nothing half-done. It needs
// node, npm and the npm registry; progress goes to log.
func Install(ctx context.Context, dir string, log io.Writer) error {
	pinned, err := PinnedSolcVersion()
	if err != nil {
		return err
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("%w: installing solc-js %s needs npm in PATH (install Node.js >= 18 with npm), or set $%s to an installed solc-js", ErrSolcUnavailable, pinned, EnvSolc)
	}
	fmt.Fprintf(log, "zkml: installing solc-js %s (the Solidity compiler, once) with npm into %s\n", pinned, dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrSolcUnavailable, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".install-")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSolcUnavailable, err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{"package.json": contracts.PackageJSON, "package-lock.json": contracts.PackageLock} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return fmt.Errorf("%w: %v", ErrSolcUnavailable, err)
		}
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: npm ci in %s: %v: %s", ErrSolcUnavailable, tmp, err, strings.TrimSpace(out.String()))
	}
	if err := checkInstalled(tmp); err != nil {
		return err
	}
	if checkInstalled(dir) == nil {
		return nil // another process installed it meanwhile
	}
	// What is there (an interrupted copy, an empty directory) is zkml's cache: replace it.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("%w: %v", ErrSolcUnavailable, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if checkInstalled(dir) == nil {
			return nil
		}
		return fmt.Errorf("%w: %v", ErrSolcUnavailable, err)
	}
	fmt.Fprintf(log, "zkml: solc-js %s installed\n", pinned)
	return nil
}
