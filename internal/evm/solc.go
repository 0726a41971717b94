package evm

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// ErrSolcUnavailable reports that the pinned solc-js compiler (or node) cannot be found.
// Tests turn it into t.Skip under `go test -short` only; see SkipOrFatal.
var ErrSolcUnavailable = errors.New("evm: solc-js unavailable (run scripts/ensure-solc.sh)")

// EnvSolcJS names the environment variable that may hold the path of
// contracts/solcjs-standard-json.js, as printed by scripts/ensure-solc.sh.
const EnvSolcJS = "ZKML_SOLCJS"

// DefaultOptimizerRuns is the solc optimizer setting used for every compile: verifiers are
// deployed once and called often.
const DefaultOptimizerRuns = 200

// Compiler runs the pinned npm solc-js through node with standard-JSON input.
type Compiler struct {
	node    string
	wrapper string
	version string
	fork    Fork
	runs    int
}

// NewCompiler locates node and the solc-js wrapper (from $ZKML_SOLCJS, else the checkout's
// contracts/ directory) and checks that the installed solc matches the version pinned in
// contracts/package.json. It targets the given fork's evmVersion. Every failure to find a
// usable compiler wraps ErrSolcUnavailable.
func NewCompiler(fork Fork) (*Compiler, error) {
	if _, err := fork.rules(); err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node not found in PATH", ErrSolcUnavailable)
	}
	wrapper, err := findWrapper()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(wrapper)
	pinned, err := pinnedSolcVersion(filepath.Join(dir, "package.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSolcUnavailable, err)
	}
	installed, err := readPackageVersion(filepath.Join(dir, "node_modules", "solc", "package.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: solc not installed in %s: %v", ErrSolcUnavailable, dir, err)
	}
	if installed != pinned {
		return nil, fmt.Errorf("%w: installed solc %s differs from pinned %s", ErrSolcUnavailable, installed, pinned)
	}
	out, err := exec.Command(node, wrapper, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s --version: %v", ErrSolcUnavailable, wrapper, err)
	}
	return &Compiler{
		node:    node,
		wrapper: wrapper,
		version: strings.TrimSpace(string(out)),
		fork:    fork,
		runs:    DefaultOptimizerRuns,
	}, nil
}

var (
	defaultCompilerOnce sync.Once
	defaultCompiler     *Compiler
	defaultCompilerErr  error
)

// DefaultCompiler returns a process-wide Compiler for DefaultFork.
func DefaultCompiler() (*Compiler, error) {
	defaultCompilerOnce.Do(func() {
		defaultCompiler, defaultCompilerErr = NewCompiler(DefaultFork)
	})
	return defaultCompiler, defaultCompilerErr
}

// Version is the full solc version string, e.g. "0.8.37+commit.f401782d.Emscripten.clang".
func (c *Compiler) Version() string { return c.version }

// Fork is the fork whose evmVersion the compiler targets.
func (c *Compiler) Fork() Fork { return c.fork }

// Artifact is one compiled contract.
type Artifact struct {
	Source           string          // source unit name, e.g. "ZKMLVerifier.sol"
	Name             string          // contract name
	ABI              json.RawMessage // ABI JSON array
	Bytecode         []byte          // creation code (constructor arguments not appended)
	DeployedBytecode []byte          // runtime code; its length is the deployed size
}

// Artifacts holds every contract of one compilation, keyed by "source:Name".
type Artifacts map[string]*Artifact

// Get returns the contract called name; it fails if no or several sources define it.
func (a Artifacts) Get(name string) (*Artifact, error) {
	var found *Artifact
	for _, art := range a {
		if art.Name != name {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("evm: contract %s defined in %s and %s", name, found.Source, art.Source)
		}
		found = art
	}
	if found == nil {
		return nil, fmt.Errorf("evm: no contract %s in compiler output", name)
	}
	return found, nil
}

// CheckCodeSizes checks every deployable contract's runtime size against the EIP-170 limit.
func (a Artifacts) CheckCodeSizes() error {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if err := CheckCodeSize(a[k].Name, a[k].DeployedBytecode); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Compile compiles the given sources (unit name -> Solidity text) with the optimizer on and
// the fork's evmVersion. Compiler errors (not warnings) are returned as one error.
func (c *Compiler) Compile(ctx context.Context, sources map[string]string) (Artifacts, error) {
	input := stdInput{Language: "Solidity", Sources: map[string]stdSource{}}
	for name, src := range sources {
		input.Sources[name] = stdSource{Content: src}
	}
	input.Settings.Optimizer.Enabled = true
	input.Settings.Optimizer.Runs = c.runs
	input.Settings.EVMVersion = string(c.fork)
	input.Settings.OutputSelection = map[string]map[string][]string{
		"*": {"*": {"abi", "evm.bytecode.object", "evm.deployedBytecode.object"}},
	}
	in, err := json.Marshal(input)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, c.node, c.wrapper)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("evm: solc-js: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var out stdOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("evm: decode solc output: %w", err)
	}
	var msgs []string
	for _, e := range out.Errors {
		if e.Severity == "error" {
			msgs = append(msgs, strings.TrimSpace(e.FormattedMessage))
		}
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("evm: solc %s: %s", c.version, strings.Join(msgs, "\n"))
	}
	arts := Artifacts{}
	for src, contracts := range out.Contracts {
		for name, ct := range contracts {
			code, err := hex.DecodeString(ct.EVM.Bytecode.Object)
			if err != nil {
				return nil, fmt.Errorf("evm: %s:%s bytecode: %w", src, name, err)
			}
			runtime, err := hex.DecodeString(ct.EVM.DeployedBytecode.Object)
			if err != nil {
				return nil, fmt.Errorf("evm: %s:%s deployed bytecode: %w", src, name, err)
			}
			arts[src+":"+name] = &Artifact{Source: src, Name: name, ABI: ct.ABI, Bytecode: code, DeployedBytecode: runtime}
		}
	}
	return arts, nil
}

type stdSource struct {
	Content string `json:"content"`
}

type stdInput struct {
	Language string               `json:"language"`
	Sources  map[string]stdSource `json:"sources"`
	Settings struct {
		Optimizer struct {
			Enabled bool `json:"enabled"`
			Runs    int  `json:"runs"`
		} `json:"optimizer"`
		EVMVersion      string                         `json:"evmVersion"`
		OutputSelection map[string]map[string][]string `json:"outputSelection"`
	} `json:"settings"`
}

type stdOutput struct {
	Errors []struct {
		Severity         string `json:"severity"`
		FormattedMessage string `json:"formattedMessage"`
	} `json:"errors"`
	Contracts map[string]map[string]struct {
		ABI json.RawMessage `json:"abi"`
		EVM struct {
			Bytecode struct {
				Object string `json:"object"`
			} `json:"bytecode"`
			DeployedBytecode struct {
				Object string `json:"object"`
			} `json:"deployedBytecode"`
		} `json:"evm"`
	} `json:"contracts"`
}

const wrapperName = "solcjs-standard-json.js"

// findWrapper returns the solc-js wrapper script: $ZKML_SOLCJS, else contracts/ in the
// checkout this package was built from, else contracts/ above the working directory.
func findWrapper() (string, error) {
	if p := os.Getenv(EnvSolcJS); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: $%s: %v", ErrSolcUnavailable, EnvSolcJS, err)
		}
		return filepath.Abs(p)
	}
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", "contracts", wrapperName))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, "contracts", wrapperName))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("%w: %s not found (set $%s)", ErrSolcUnavailable, wrapperName, EnvSolcJS)
}

func pinnedSolcVersion(packageJSON string) (string, error) {
	b, err := os.ReadFile(packageJSON)
	if err != nil {
		return "", err
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("%s: %w", packageJSON, err)
	}
	v := pkg.Dependencies["solc"]
	if v == "" {
		return "", fmt.Errorf("%s: no solc dependency", packageJSON)
	}
	return v, nil
}

func readPackageVersion(packageJSON string) (string, error) {
	b, err := os.ReadFile(packageJSON)
	if err != nil {
		return "", err
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("%s: %w", packageJSON, err)
	}
	return pkg.Version, nil
}
