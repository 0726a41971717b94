package prover

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/constraint"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/srs"
)

// testPtau was made by snarkjs (two contributions and a beacon, power 9): see
// srs/testdata/make-ptau.sh.
const testPtau = "../srs/testdata/pot9.ptau"

const testBeacon = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// reluModel creates a model directory for the small ReLU test model in the repository,
// with sys compiled, and returns it with its sample input.
func reluModel(t *testing.T, sys circuits.System) (*Model, []*model.Tensor) {
	t.Helper()
	onnx, err := os.ReadFile("../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Create(t.TempDir(), onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Compile(sys); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("../model/testdata/relu/input.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in, err := model.ReadInput(f, m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	return m, in
}

func proveAndVerify(t *testing.T, m *Model, sys circuits.System, in []*model.Tensor) {
	t.Helper()
	p, err := m.Prove(sys, in)
	if err != nil {
		t.Fatal(err)
	}
	checkVerify(t, m, sys, p)
}

// TestUniversalSetupPlonk makes PLONK keys on the snarkjs ptau, proves and verifies with
// them, and checks the setup is reproducible byte for byte (a second model directory,
// and ReproducePlonkVK from the source model).
func TestUniversalSetupPlonk(t *testing.T) {
	cache := t.TempDir()
	m, in := reluModel(t, circuits.Plonk)
	if err := m.SetupUniversal(testPtau, cache); err != nil {
		t.Fatal(err)
	}
	prov := m.Provenance(circuits.Plonk)
	if prov.Trust != TrustUniversalSRS || prov.Ptau.Power != 9 || len(prov.Ptau.BLAKE2b) != 128 || len(prov.Ptau.Contributors) != 3 {
		t.Fatalf("provenance %+v", prov)
	}
	proveAndVerify(t, m, circuits.Plonk, in)

	// Provenance survives reopening.
	re, err := Open(m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.Provenance(circuits.Plonk); got.Trust != TrustUniversalSRS || got.Ptau.BLAKE2b != prov.Ptau.BLAKE2b {
		t.Fatalf("reopened provenance %+v", got)
	}

	vk, err := m.VerifyingKeyBytes(circuits.Plonk)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := reluModel(t, circuits.Plonk)
	if err := other.SetupUniversal(testPtau, t.TempDir()); err != nil { // no cache: imported again
		t.Fatal(err)
	}
	vk2, err := other.VerifyingKeyBytes(circuits.Plonk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vk, vk2) {
		t.Fatal("two setups on the same circuit and ptau gave different verifying keys")
	}
	vk3, circuitOK, err := m.ReproducePlonkVK(testPtau, cache)
	if err != nil {
		t.Fatal(err)
	}
	if !circuitOK || !bytes.Equal(vk, vk3) {
		t.Fatalf("reproduce: circuit matches %v, vk equal %v", circuitOK, bytes.Equal(vk, vk3))
	}
}

// ceremonyWithContributions runs init and n contributions (each through the standalone
// ContributeFile a participant runs, then Accept).
func ceremonyWithContributions(t *testing.T, m *Model, cache string, n int) *Ceremony {
	t.Helper()
	c, err := m.CeremonyInit(testPtau, cache)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		out := filepath.Join(t.TempDir(), "next.bin")
		hash, err := ContributeFile(c.CurrentFile(), out)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := c.Accept(b, []string{"alice", "bob", "carol"}[i])
		if err != nil {
			t.Fatal(err)
		}
		if rec.Hash != hash {
			t.Fatalf("accepted hash %s, contributor printed %s", rec.Hash, hash)
		}
	}
	return c
}

// TestCeremonyGroth16 runs a phase-2 ceremony with two contributions and a beacon on the
// snarkjs ptau, for a circuit with a commitment (the lookup range check), then proves
// and verifies with the sealed keys and re-verifies the whole transcript.
func TestCeremonyGroth16(t *testing.T) {
	cache := t.TempDir()
	m, in := reluModel(t, circuits.Groth16)
	r1cs, err := m.r1cs()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r1cs.CommitmentInfo.(constraint.Groth16Commitments)); n != 1 {
		t.Fatalf("the test circuit has %d commitments, want 1 (the lookup range check's)", n)
	}
	c := ceremonyWithContributions(t, m, cache, 0)
	if err := c.Seal(testPtau, cache, testBeacon); err == nil || !strings.Contains(err.Error(), "no contribution") {
		t.Fatalf("seal without contributions: %v", err)
	}
	c = ceremonyWithContributions(t, m, cache, 2)
	if err := c.Verify(testPtau, cache); err != nil {
		t.Fatalf("verify before seal: %v", err)
	}
	if err := c.Seal(testPtau, cache, testBeacon); err != nil {
		t.Fatal(err)
	}
	prov := m.Provenance(circuits.Groth16)
	if prov.Trust != TrustCeremony || len(prov.Contributions) != 2 || prov.Contributions[1].Name != "bob" || prov.Beacon != testBeacon || prov.Ptau == nil {
		t.Fatalf("provenance %+v", prov)
	}
	proveAndVerify(t, m, circuits.Groth16, in)

	reopened, err := m.OpenCeremony()
	if err != nil {
		t.Fatal(err)
	}
	if err := reopened.Verify(testPtau, cache); err != nil {
		t.Fatalf("verify sealed transcript: %v", err)
	}
	if _, err := reopened.Accept(nil, "late"); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("accept after seal: %v", err)
	}
	if _, err := reopened.AcceptFile(filepath.Join(reopened.Dir, phaseFile(2)), "late"); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("accept file after seal: %v", err)
	}
	// Keys that are not the transcript's are caught.
	if err := m.Setup(circuits.Groth16); err != nil {
		t.Fatal(err)
	}
	if err := reopened.Verify(testPtau, cache); !errors.Is(err, ErrCeremony) || !strings.Contains(err.Error(), "not the one the sealed transcript gives") {
		t.Fatalf("verify with replaced keys: %v", err)
	}
}

// TestCeremonyRejects checks that bad contributions and transcripts are refused with an
// error that says which contribution and why, and that a refused upload changes nothing.
func TestCeremonyRejects(t *testing.T) {
	cache := t.TempDir()
	m, _ := reluModel(t, circuits.Groth16)
	c := ceremonyWithContributions(t, m, cache, 1)
	cur, err := os.ReadFile(c.CurrentFile())
	if err != nil {
		t.Fatal(err)
	}
	contribute := func(state []byte) []byte {
		var out bytes.Buffer
		if _, err := Contribute(bytes.NewReader(state), &out); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	good := contribute(cur)
	p, err := decodePhase2(good)
	if err != nil {
		t.Fatal(err)
	}
	// A point replaced by another valid point: the PKK of the next state is swapped for
	// one of the previous state's Z points.
	replaced := *p
	replaced.Parameters.G1.PKK = append(replaced.Parameters.G1.PKK[:0:0], p.Parameters.G1.PKK...)
	replaced.Parameters.G1.PKK[0] = p.Parameters.G1.Z[0]
	replacedBytes, err := encodePhase2(&replaced)
	if err != nil {
		t.Fatal(err)
	}
	// A proof of knowledge that does not match: δ's proof from another contribution.
	other, err := decodePhase2(contribute(cur))
	if err != nil {
		t.Fatal(err)
	}
	badProof := *p
	badProof.Delta = other.Delta
	badProofBytes, err := encodePhase2(&badProof)
	if err != nil {
		t.Fatal(err)
	}
	initial, err := os.ReadFile(filepath.Join(c.Dir, phaseFile(0)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		next []byte
		want string
	}{
		{"point replaced", replacedBytes, "contribution 2 rejected: failed to verify contribution to δ"},
		{"proof of knowledge from another contribution", badProofBytes, "contribution 2 rejected: failed to verify contribution to δ"},
		{"built on an older state (skips contribution 1)", contribute(initial), "made from state 0, but 1 contribution(s) have been accepted since"},
		{"the accepted contribution again", cur, "already accepted as contribution 1 (by alice)"},
		{"the initial state itself", initial, "contribution 2 names no previous state"},
		{"truncated upload", good[:len(good)/2], "not a phase-2 state"},
		{"trailing bytes", append(append([]byte(nil), good...), 0), "bytes after the phase-2 state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Accept(tc.next, "mallory")
			if !errors.Is(err, ErrCeremony) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrCeremony with %q", err, tc.want)
			}
			// Only a contribution made from an earlier state is stale (the service's 409).
			if stale := strings.HasPrefix(tc.name, "built on an older state"); errors.Is(err, ErrStaleContribution) != stale {
				t.Fatalf("error %v: ErrStaleContribution %v, want %v", err, !stale, stale)
			}
			upload := filepath.Join(t.TempDir(), "upload.bin")
			if err := os.WriteFile(upload, tc.next, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := c.AcceptFile(upload, "mallory"); !errors.Is(err, ErrCeremony) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AcceptFile: error %v, want ErrCeremony with %q", err, tc.want)
			}
			if len(c.State.Contributions) != 1 {
				t.Fatal("a refused contribution changed the transcript")
			}
			if _, err := os.Stat(filepath.Join(c.Dir, phaseFile(2))); err == nil {
				t.Fatal("a refused contribution left a state file")
			}
		})
	}
	upload := filepath.Join(t.TempDir(), "good.bin")
	if err := os.WriteFile(upload, good, 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := c.AcceptFile(upload, "bob")
	if err != nil {
		t.Fatalf("the good contribution after refusals: %v", err)
	}
	if stored, err := os.ReadFile(filepath.Join(c.Dir, phaseFile(2))); err != nil || !bytes.Equal(stored, good) || rec.Hash != sha256Hex(good) {
		t.Fatalf("accepted upload stored wrongly: %v", err)
	}

	// A transcript with contribution 1 removed (its record and file dropped, the later
	// state renumbered) fails verification, and so does a seal.
	cut, err := m.OpenCeremony()
	if err != nil {
		t.Fatal(err)
	}
	cut.State.Contributions = cut.State.Contributions[1:]
	if err := os.Rename(filepath.Join(c.Dir, phaseFile(2)), filepath.Join(c.Dir, phaseFile(1))); err != nil {
		t.Fatal(err)
	}
	if err := cut.writeState(); err != nil {
		t.Fatal(err)
	}
	cut, err = m.OpenCeremony()
	if err != nil {
		t.Fatal(err)
	}
	if err := cut.Verify(testPtau, cache); !errors.Is(err, ErrCeremony) || !strings.Contains(err.Error(), "contribution 1 rejected: the challenge does not match") {
		t.Fatalf("verify with a contribution removed: %v", err)
	}
	if err := cut.Seal(testPtau, cache, testBeacon); !errors.Is(err, ErrCeremony) {
		t.Fatalf("seal with a contribution removed: %v", err)
	}
	if m.Has("pk", circuits.Groth16) {
		t.Fatal("a refused seal wrote keys")
	}
	// Another ptau than the one the ceremony began with is refused.
	if err := cut.Verify("../srs/testdata/pot8_prepared.ptau", cache); !errors.Is(err, ErrCeremony) || !strings.Contains(err.Error(), "not the Powers of Tau file") {
		t.Fatalf("verify with another ptau: %v", err)
	}
}

// TestInitPhase2MatchesGnark checks that phase 2 initialized from a prepared ptau's
// Lagrange bases is gnark's own Initialize, byte for byte (state and evaluations), for a
// circuit with a commitment; and that a ceremony on a prepared file verifies and seals.
func TestInitPhase2MatchesGnark(t *testing.T) {
	const prepared = "../srs/testdata/pot8_prepared.ptau"
	m, in := reluModel(t, circuits.Groth16)
	r1cs, err := m.r1cs()
	if err != nil {
		t.Fatal(err)
	}
	s, err := srs.Load(prepared, Groth16Power(r1cs), srs.Groth16, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.LagrangeG2) == 0 {
		t.Fatal("a prepared file gave no Lagrange bases")
	}
	commons, err := s.Commons()
	if err != nil {
		t.Fatal(err)
	}
	var fast, slow mpcsetup.Phase2
	fastEvals := initPhase2(&fast, r1cs, commons, s)
	slowEvals := slow.Initialize(r1cs, commons)
	fb, err := encodePhase2(&fast)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := encodePhase2(&slow)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fb, sb) {
		t.Fatal("phase-2 state differs from gnark's Initialize")
	}
	if !reflect.DeepEqual(fastEvals, slowEvals) {
		t.Fatal("phase-2 evaluations differ from gnark's Initialize")
	}

	cache := t.TempDir()
	c, err := m.CeremonyInit(prepared, cache)
	if err != nil {
		t.Fatal(err)
	}
	if c.State.Initial != sha256Hex(sb) {
		t.Fatal("the ceremony's initial state is not gnark's")
	}
	var next bytes.Buffer
	cur, err := os.ReadFile(c.CurrentFile())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Contribute(bytes.NewReader(cur), &next); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Accept(next.Bytes(), "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.Seal(prepared, cache, testBeacon); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(prepared, cache); err != nil {
		t.Fatal(err)
	}
	proveAndVerify(t, m, circuits.Groth16, in)
}
