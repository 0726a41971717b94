package prover

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/zkml/zkml/circuits"
)

// checkListed fails unless a fresh Open of dir lists every name with its content
// intact.
func checkListed(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for name, data := range want {
		b, err := m.ReadArtifact(name)
		if err != nil {
			lost++
			if lost <= 3 {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if string(b) != string(data) {
			t.Errorf("%s: content %q, want %q", name, b, data)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d artifacts written concurrently are missing from the manifest", lost, len(want))
	}
}

// TestConcurrentSetupsKeepBothSystems runs the Groth16 and the PLONK setup of one
// directory at once, each through its own Model (two jobs of the service open the
// directory separately): both systems' keys and provenance must be listed afterwards.
func TestConcurrentSetupsKeepBothSystems(t *testing.T) {
	m, _ := reluModel(t, circuits.Groth16)
	if _, err := m.Compile(circuits.Plonk); err != nil {
		t.Fatal(err)
	}
	systems := []circuits.System{circuits.Groth16, circuits.Plonk}
	models := make([]*Model, len(systems))
	for i := range systems {
		var err error
		if models[i], err = Open(m.Dir); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(systems))
	for i, sys := range systems {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = models[i].Setup(sys)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("setup %s: %v", systems[i], err)
		}
	}
	got, err := Open(m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, sys := range systems {
		for _, kind := range []string{"pk", "vk"} {
			if !got.Has(kind, sys) {
				t.Errorf("%s.%s is not listed after concurrent setups", kind, sys)
			}
		}
		if _, ok := got.manifest.Provenance[string(sys)]; !ok {
			t.Errorf("provenance of %s is not recorded after concurrent setups", sys)
		}
		if _, err := got.ProvingKey(sys); err != nil {
			t.Errorf("%s proving key: %v", sys, err)
		}
	}
	// Each setup's own Model finds the other's keys too, though its manifest was read
	// before they were made.
	for i, sys := range systems {
		other := systems[1-i]
		if _, err := models[i].VerifyingKey(other); err != nil {
			t.Errorf("the Model that set up %s does not find %s's keys: %v", sys, other, err)
		}
	}
}

// TestConcurrentWriteArtifactAndProvenance writes many artifacts and provenance
// records at once through several Models of one directory, with readers opening it
// all along: nothing written may go missing, and no reader may see a half-written
// manifest.
func TestConcurrentWriteArtifactAndProvenance(t *testing.T) {
	m, _ := reluModel(t, circuits.Groth16)
	const writers, each = 4, 25
	models := make([]*Model, writers)
	for i := range models {
		var err error
		if models[i], err = Open(m.Dir); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]byte{}
	for w := range writers {
		for k := range each {
			want[fmt.Sprintf("w%d.%d.bin", w, k)] = fmt.Appendf(nil, "writer %d artifact %d", w, k)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := readManifest(m.Dir); err != nil {
				readerErr <- err
				return
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				name := fmt.Sprintf("w%d.%d.bin", w, k)
				if err := models[w].WriteArtifact(name, want[name]); err != nil {
					t.Error(err)
					return
				}
			}
			// One writer also records provenance in between, as a sharded setup's
			// RecordTrust does while segment artifacts are written.
			if w == 0 {
				if err := models[w].RecordProvenance(circuits.Plonk, &Provenance{Trust: TrustUniversalSRS, Ptau: &PtauInfo{BLAKE2b: "ab", Power: 9}}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-readerErr; err != nil {
		t.Fatalf("a reader saw a broken manifest: %v", err)
	}
	checkListed(t, m.Dir, want)
	p, err := ReadProvenance(m.Dir, circuits.Plonk)
	if err != nil {
		t.Fatal(err)
	}
	if p.Trust != TrustUniversalSRS {
		t.Errorf("recorded provenance was dropped: %+v", p)
	}
}

// TestConcurrentWriteArtifactAcrossProcesses is TestConcurrentWriteArtifactAndProvenance
// across processes (workers sharing a model directory): this test binary runs itself
// as several writers at once.
func TestConcurrentWriteArtifactAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("ZKML_MANIFEST_WRITER_DIR"); dir != "" {
		w, _ := strconv.Atoi(os.Getenv("ZKML_MANIFEST_WRITER"))
		m, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for k := range 20 {
			if err := m.WriteArtifact(fmt.Sprintf("p%d.%d.bin", w, k), fmt.Appendf(nil, "process %d artifact %d", w, k)); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	m, _ := reluModel(t, circuits.Groth16)
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	want := map[string][]byte{}
	for w := range procs {
		for k := range 20 {
			want[fmt.Sprintf("p%d.%d.bin", w, k)] = fmt.Appendf(nil, "process %d artifact %d", w, k)
		}
		cmds[w] = exec.Command(os.Args[0], "-test.run=^TestConcurrentWriteArtifactAcrossProcesses$", "-test.count=1")
		cmds[w].Env = append(os.Environ(), "ZKML_MANIFEST_WRITER_DIR="+m.Dir, "ZKML_MANIFEST_WRITER="+strconv.Itoa(w))
		cmds[w].Stderr = os.Stderr
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	checkListed(t, m.Dir, want)
	if _, err := os.Stat(filepath.Join(m.Dir, manifestName)); err != nil {
		t.Fatal(err)
	}
}

// TestMergeManifests merges the manifests of two copies of one model directory, one
// with Groth16 keys and one with PLONK keys (two machines' setups): the merge lists
// both systems' keys with their provenance, and names the files the local copy lacks.
func TestMergeManifests(t *testing.T) {
	a, _ := reluModel(t, circuits.Groth16)
	if _, err := a.Compile(circuits.Plonk); err != nil {
		t.Fatal(err)
	}
	b := t.TempDir()
	if err := os.CopyFS(b, os.DirFS(a.Dir)); err != nil {
		t.Fatal(err)
	}
	mb, err := Open(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Setup(circuits.Groth16); err != nil {
		t.Fatal(err)
	}
	if err := mb.SetupUniversal(testPtau, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(filepath.Join(a.Dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(filepath.Join(b, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	merged, fromStored, err := MergeManifests(stored, local)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(fromStored)
	if want := []string{"pk.groth16.bin", "vk.groth16.bin"}; !slices.Equal(fromStored, want) {
		t.Errorf("fromStored = %v, want %v", fromStored, want)
	}
	m, err := parseManifest(merged)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pk.groth16.bin", "vk.groth16.bin", "pk.plonk.bin", "vk.plonk.bin", "circuit.groth16.bin", "circuit.plonk.bin"} {
		if _, ok := m.Files[name]; !ok {
			t.Errorf("merged manifest lacks %s", name)
		}
	}
	if p := m.Provenance["groth16"]; p == nil || p.Trust != TrustDevelopment {
		t.Errorf("groth16 provenance %+v", p)
	}
	if p := m.Provenance["plonk"]; p == nil || p.Trust != TrustUniversalSRS {
		t.Errorf("plonk provenance %+v", p)
	}
	// Merging is idempotent from either side, and refuses another model's manifest.
	if again, from, err := MergeManifests(merged, merged); err != nil || len(from) != 0 || string(again) != string(merged) {
		t.Errorf("merge of a manifest with itself: %v, from %v", err, from)
	}
	other := strings.Replace(string(stored), a.ID, strings.Repeat("0", len(a.ID)), 1)
	if _, _, err := MergeManifests([]byte(other), local); !errors.Is(err, ErrCorrupt) {
		t.Errorf("merge with another model's manifest: %v", err)
	}
}
