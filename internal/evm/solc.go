package evm

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"

	"github.com/zkml/zkml/contracts"
)

// ErrSolcUnavailable reports that the pinned solc-js compiler (or node) cannot be found.
// Tests turn it into t.Skip under `go test -short` only; see SkipOrFatal.
var ErrSolcUnavailable = errors.New("evm: solc-js unavailable")

// EnvSolc names the environment variable that says where solc-js is: a directory whose
// node_modules/solc holds the pinned version (npm install solc@<version> there), or a
// file inside such a directory. It overrides the user cache directory (CacheDir).
const EnvSolc = "ZKML_SOLC"

// EnvSolcJS is the former name of EnvSolc (it held the path of the wrapper script), still
// read when EnvSolc is unset.
const EnvSolcJS = "ZKML_SOLCJS"

// DefaultOptimizerRuns is the solc optimizer setting used for every compile: verifiers are
// deployed once and called often.
const DefaultOptimizerRuns = 200

// Compiler runs the pinned npm solc-js through node with standard-JSON input.
type Compiler struct {
	node    string
	dir     string // holds node_modules/solc
	version string
	fork    Fork
	runs    int
}

// NewCompiler returns a compiler for solc-js where Locate("") finds it, targeting the
// given fork's evmVersion; it installs nothing. Every failure to find a usable compiler
// wraps ErrSolcUnavailable.
func NewCompiler(fork Fork) (*Compiler, error) {
	dir, err := Locate("")
	if err != nil {
		return nil, err
	}
	return NewCompilerAt(dir, fork)
}

// NewCompilerAt returns a compiler for the solc-js installed in dir (dir/node_modules/solc),
// after checking that it is the version pinned in contracts/package.json.
func NewCompilerAt(dir string, fork Fork) (*Compiler, error) {
	if _, err := fork.rules(); err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node not found in PATH (install Node.js >= 18)", ErrSolcUnavailable)
	}
	if err := checkInstalled(dir); err != nil {
		return nil, err
	}
	c := &Compiler{node: node, dir: dir, fork: fork, runs: DefaultOptimizerRuns}
	out, err := c.command(context.Background(), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: solc-js in %s: --version: %v", ErrSolcUnavailable, dir, err)
	}
	c.version = strings.TrimSpace(string(out))
	return c, nil
}

// command runs the embedded wrapper (contracts/solcjs-standard-json.js) on the solc
// package of c.dir.
func (c *Compiler) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, c.node, append([]string{"-e", contracts.SolcJSWrapper, "--", c.dir}, args...)...)
}

var (
	defaultMu       sync.Mutex
	defaultCompiler *Compiler
)

// DefaultCompiler returns the process-wide Compiler for DefaultFork: the one UseCompiler
// set, else the solc-js that Locate("") finds (installing nothing).
func DefaultCompiler() (*Compiler, error) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultCompiler != nil {
		return defaultCompiler, nil
	}
	c, err := NewCompiler(DefaultFork)
	if err != nil {
		return nil, err
	}
	defaultCompiler = c
	return c, nil
}

// UseCompiler makes c the compiler DefaultCompiler returns (the CLI sets the one its
// --solc flag, or the installation on first use, gave).
func UseCompiler(c *Compiler) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	defaultCompiler = c
}

// Dir is the directory holding the compiler's node_modules/solc.
func (c *Compiler) Dir() string { return c.dir }

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
	cmd := c.command(ctx)
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
