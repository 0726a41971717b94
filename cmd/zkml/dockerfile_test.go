package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerStage is one FROM ... AS name stage of the Dockerfile with its instructions.
type dockerStage struct {
	base, name string
	lines      []string // instructions, continuation lines joined
}

func parseDockerfile(t *testing.T, path string) (args map[string]string, stages []*dockerStage) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args = map[string]string{}
	var cur *dockerStage
	var pending string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" && pending == "" {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""
		fields := strings.Fields(line)
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			if k, v, ok := strings.Cut(fields[1], "="); ok && cur == nil {
				args[k] = v
			}
		case "FROM":
			cur = &dockerStage{base: fields[1]}
			if len(fields) == 4 && strings.EqualFold(fields[2], "AS") {
				cur.name = fields[3]
			}
			stages = append(stages, cur)
			continue
		}
		if cur == nil && !strings.EqualFold(fields[0], "ARG") {
			t.Fatalf("%s: instruction before the first FROM: %s", path, line)
		}
		if cur != nil {
			cur.lines = append(cur.lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return args, stages
}

// TestDockerfile lints the Dockerfile where no container engine runs (CI has none):
// stage references, the repository paths it copies and runs, the CUDA target's ICICLE
// build, and the Go version against go.mod. Where a Docker daemon answers, `docker build
// --check` runs BuildKit's own checks on both targets too.
func TestDockerfile(t *testing.T) {
	root := filepath.Join("..", "..")
	path := filepath.Join(root, "Dockerfile")
	args, stages := parseDockerfile(t, path)
	byName := map[string]*dockerStage{}
	for _, s := range stages {
		if s.name == "" {
			continue
		}
		if byName[s.name] != nil {
			t.Errorf("stage %q defined twice", s.name)
		}
		byName[s.name] = s
	}
	for _, target := range []string{"build", "cpu", "cuda-build", "cuda"} {
		if byName[target] == nil {
			t.Fatalf("no stage %q", target)
		}
	}
	if last := stages[len(stages)-1]; last.base != "cpu" {
		t.Errorf("the default (last) target is %q, want the cpu image", last.base)
	}
	// COPY --from must name an earlier stage; COPY sources and scripts run must exist.
	seen := map[string]bool{}
	fromRe := regexp.MustCompile(`--from=(\S+)`)
	scriptRe := regexp.MustCompile(`scripts/[A-Za-z0-9_.-]+`)
	for _, s := range stages {
		for _, l := range s.lines {
			if m := fromRe.FindStringSubmatch(l); m != nil && !seen[m[1]] {
				t.Errorf("stage %q: %q copies from %q, which is not an earlier stage", s.name, l, m[1])
			}
			f := strings.Fields(l)
			if strings.EqualFold(f[0], "COPY") && fromRe.FindString(l) == "" {
				for _, src := range f[1 : len(f)-1] {
					if src == "." {
						continue
					}
					if _, err := os.Stat(filepath.Join(root, src)); err != nil {
						t.Errorf("stage %q copies %s: %v", s.name, src, err)
					}
				}
			}
			for _, sc := range scriptRe.FindAllString(l, -1) {
				if fi, err := os.Stat(filepath.Join(root, sc)); err != nil || fi.Mode()&0o111 == 0 {
					t.Errorf("stage %q runs %s, which is missing or not executable (%v)", s.name, sc, err)
				}
			}
		}
		if s.name != "" {
			seen[s.name] = true
		}
	}
	cb := strings.Join(byName["cuda-build"].lines, "\n")
	for _, want := range []string{"scripts/build-icicle.sh --cuda /opt/icicle", "go build -tags icicle"} {
		if !strings.Contains(cb, want) {
			t.Errorf("the cuda-build stage does not run %q", want)
		}
	}
	cu := strings.Join(byName["cuda"].lines, "\n")
	for _, want := range []string{"COPY --from=cuda-build /opt/icicle/lib /opt/icicle/lib", "LD_LIBRARY_PATH=/opt/icicle/lib", "--device\", \"gpu\""} {
		if !strings.Contains(cu, want) {
			t.Errorf("the cuda stage lacks %q", want)
		}
	}
	// The images build with the Go release go.mod asks for.
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goLine == nil || args["GO_VERSION"] != string(goLine[1]) {
		t.Errorf("Dockerfile GO_VERSION %q, go.mod wants go %s", args["GO_VERSION"], goLine[1])
	}
	if exec.Command("docker", "info").Run() != nil {
		t.Log("no Docker daemon: the images are linted, not built")
		return
	}
	for _, target := range []string{"cpu", "cuda"} {
		out, err := exec.Command("docker", "build", "--check", "--target", target, root).CombinedOutput()
		if err != nil {
			t.Errorf("docker build --check --target %s: %v\n%s", target, err, out)
		}
	}
}
