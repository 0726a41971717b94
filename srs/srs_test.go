package srs

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/kzg"
)

// The checked-in files were made by snarkjs (testdata/make-ptau.sh): two contributions
// and a beacon; pot9.ptau is the plain output at power 9, pot8_prepared.ptau the
// prepared output at power 8.
const (
	plainPtau    = "testdata/pot9.ptau"
	preparedPtau = "testdata/pot8_prepared.ptau"
)

func TestImportSnarkjsFiles(t *testing.T) {
	for _, path := range []string{plainPtau, preparedPtau} {
		p, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if p.Power != map[string]int{plainPtau: 9, preparedPtau: 8}[path] || p.Prepared != (path == preparedPtau) {
			t.Errorf("%s: power %d prepared %v", path, p.Power, p.Prepared)
		}
		p.Close()
		for _, kind := range []Kind{KZG, Groth16} {
			for _, power := range []int{3, p.Power} {
				s, err := Import(path, power, kind)
				if err != nil {
					t.Fatalf("%s %s 2^%d: %v", path, kind, power, err)
				}
				n := 1 << power
				var names []string
				for _, c := range s.Source.Contributions {
					names = append(names, c.Name)
				}
				if got := strings.Join(names, ","); got != "first contributor,second contributor,final beacon" {
					t.Errorf("contributions %q", got)
				}
				if s.Source.Contributions[2].Beacon != "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" || s.Source.Contributions[2].BeaconIterationsExp != 10 {
					t.Errorf("beacon %+v", s.Source.Contributions[2])
				}
				switch kind {
				case KZG:
					if len(s.TauG1) != n+3 || len(s.TauG2) != 2 || len(s.LagrangeG1) != n {
						t.Errorf("kzg sizes %d %d %d", len(s.TauG1), len(s.TauG2), len(s.LagrangeG1))
					}
					// The Lagrange basis read from a prepared file (snarkjs's FFT, its root
					// of unity) must equal the one computed here (gnark's domain).
					want, err := kzg.ToLagrangeG1(s.TauG1[:n])
					if err != nil {
						t.Fatal(err)
					}
					for i := range want {
						if !want[i].Equal(&s.LagrangeG1[i]) {
							t.Fatalf("%s: lagrange[%d] differs", path, i)
						}
					}
				case Groth16:
					if len(s.TauG1) != 2*n-1 || len(s.TauG2) != n || len(s.AlphaTauG1) != n || len(s.BetaTauG1) != n {
						t.Errorf("groth16 sizes")
					}
				}
			}
		}
	}
	if _, err := Import(plainPtau, 10, Groth16); err == nil || !strings.Contains(err.Error(), "power 10") {
		t.Errorf("power above the file: %v", err)
	}
}

// snarkjsCLI returns the pinned snarkjs (scripts/ensure-snarkjs.sh exports it as
// ZKML_SNARKJS in scripts/test.sh); the tests that run it are skipped without it.
func snarkjsCLI(t *testing.T) string {
	cli := os.Getenv("ZKML_SNARKJS")
	if cli == "" {
		t.Skip("ZKML_SNARKJS not set (scripts/ensure-snarkjs.sh installs snarkjs)")
	}
	return cli
}

// exportedX is what `snarkjs powersoftau export json` (0.7.6) writes for a point: it
// prints the point's first 32 bytes (x, or x.c0 in G2, in Montgomery form) read as an
// element of Fr in Montgomery form: (x·2²⁵⁶ mod q)·2⁻²⁵⁶ mod r.
func exportedX(x *fp.Element) string {
	// x's limbs are its Montgomery form x·2²⁵⁶ mod q.
	var b [32]byte
	for i, l := range x {
		binary.BigEndian.PutUint64(b[24-8*i:], l)
	}
	m := new(big.Int).SetBytes(b[:])
	r := fr.Modulus()
	inv := new(big.Int).ModInverse(new(big.Int).Exp(big.NewInt(2), big.NewInt(256), r), r)
	m.Mul(m, inv).Mod(m, r)
	return m.String()
}

// TestMatchesSnarkjsExport makes a fresh ptau with snarkjs (new, two contributions,
// beacon, prepare phase2), imports it, and compares every point read with snarkjs's own
// JSON export of the same file, for the fresh file and the checked-in ones.
func TestMatchesSnarkjsExport(t *testing.T) {
	cli := snarkjsCLI(t)
	dir := t.TempDir()
	cmd := exec.Command("testdata/make-ptau.sh", "5", dir)
	cmd.Env = append(os.Environ(), "ZKML_SNARKJS="+cli)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-ptau: %v\n%s", err, out)
	}
	for _, path := range []string{filepath.Join(dir, "pot5_prepared.ptau"), preparedPtau} {
		js := filepath.Join(dir, "export.json")
		if out, err := exec.Command("node", cli, "powersoftau", "export", "json", path, js).CombinedOutput(); err != nil {
			t.Fatalf("export json: %v\n%s", err, out)
		}
		b, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		var exp struct {
			Power      int        `json:"power"`
			TauG1      []string   `json:"tauG1"`
			TauG2      []string   `json:"tauG2"`
			AlphaTauG1 []string   `json:"alphaTauG1"`
			BetaTauG1  []string   `json:"betaTauG1"`
			BetaG2     []string   `json:"betaG2"`
			LTauG1     [][]string `json:"lTauG1"`
		}
		if err := json.Unmarshal(b, &exp); err != nil {
			t.Fatal(err)
		}
		g, err := Import(path, exp.Power, Groth16)
		if err != nil {
			t.Fatal(err)
		}
		k, err := Import(path, exp.Power, KZG)
		if err != nil {
			t.Fatal(err)
		}
		checkG1 := func(name string, want []string, got []curve.G1Affine) {
			t.Helper()
			if len(got) > len(want) {
				t.Fatalf("%s: %d points, export has %d", name, len(got), len(want))
			}
			for i := range got {
				if s := exportedX(&got[i].X); s != want[i] {
					t.Fatalf("%s %s[%d]: read %s, snarkjs exports %s", path, name, i, s, want[i])
				}
			}
		}
		checkG1("tauG1", exp.TauG1, g.TauG1)
		checkG1("alphaTauG1", exp.AlphaTauG1, g.AlphaTauG1)
		checkG1("betaTauG1", exp.BetaTauG1, g.BetaTauG1)
		checkG1("lTauG1", exp.LTauG1[exp.Power], k.LagrangeG1)
		for i := range g.TauG2 {
			if s := exportedX(&g.TauG2[i].X.A0); s != exp.TauG2[i] {
				t.Fatalf("tauG2[%d]: read %s, snarkjs exports %s", i, s, exp.TauG2[i])
			}
		}
		if s := exportedX(&g.BetaG2.X.A0); s != exp.BetaG2[0] {
			t.Fatalf("betaG2: read %s, snarkjs exports %s", s, exp.BetaG2[0])
		}
	}
}

func TestCache(t *testing.T) {
	cache := t.TempDir()
	a, err := Load(plainPtau, 4, Groth16, cache)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "*.srs"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v", entries)
	}
	b, err := Load(plainPtau, 4, Groth16, cache)
	if err != nil {
		t.Fatal(err)
	}
	if !a.TauG1[5].Equal(&b.TauG1[5]) || !a.BetaG2.Equal(&b.BetaG2) || len(b.TauG2) != 16 || b.Source.Hash != a.Source.Hash {
		t.Fatal("cached SRS differs")
	}
	// A corrupt entry is ignored and rewritten, never used.
	raw, _ := os.ReadFile(entries[0])
	raw[len(raw)/2] ^= 1
	if err := os.WriteFile(entries[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readCache(entries[0]); !errors.Is(err, errCacheCorrupt) {
		t.Fatalf("corrupt cache read: %v", err)
	}
	c, err := Load(plainPtau, 4, Groth16, cache)
	if err != nil || !c.TauG1[5].Equal(&a.TauG1[5]) {
		t.Fatalf("reload after corruption: %v", err)
	}
	if _, err := readCache(entries[0]); err != nil {
		t.Fatalf("cache not rewritten: %v", err)
	}
}

// putMont writes x in the file's Montgomery little-endian form.
func putMont(b []byte, x *fp.Element) {
	for i, l := range x {
		binary.LittleEndian.PutUint64(b[8*i:], l)
	}
}

// notInSubgroupG2 returns a point on the twist that is not in G2's prime-order subgroup.
func notInSubgroupG2(t *testing.T) curve.G2Affine {
	_, _, _, g2 := curve.Generators()
	var b, y2, x3 curve.G2Affine
	// b' = y² - x³ from the generator.
	y2.Y.Square(&g2.Y)
	x3.X.Square(&g2.X)
	x3.X.Mul(&x3.X, &g2.X)
	b.X.Sub(&y2.Y, &x3.X)
	var p curve.G2Affine
	for i := uint64(1); i < 1000; i++ {
		p.X.A0.SetUint64(i)
		p.X.A1.SetUint64(1)
		var rhs = p.X
		rhs.Square(&rhs).Mul(&rhs, &p.X).Add(&rhs, &b.X)
		if rhs.Legendre() == 1 {
			p.Y.Sqrt(&rhs)
			if p.IsOnCurve() && !p.IsInSubGroup() {
				return p
			}
		}
	}
	t.Fatal("no point found")
	return p
}

// TestRejects corrupts the plain file in the ways a bad or damaged download would be, and
// checks each is refused with an error that says what is wrong.
func TestRejects(t *testing.T) {
	orig, err := os.ReadFile(plainPtau)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(plainPtau)
	if err != nil {
		t.Fatal(err)
	}
	sec := p.sections
	p.Close()
	g1At := func(id uint32, i int) int { return int(sec[id].off) + i*g1Size }
	g2At := func(id uint32, i int) int { return int(sec[id].off) + i*g2Size }
	bad := notInSubgroupG2(t)
	for _, tc := range []struct {
		name   string
		mutate func(b []byte) []byte
		kind   Kind
		want   string
	}{
		{"flipped byte in tauG1", func(b []byte) []byte { b[g1At(secTauG1, 7)+3] ^= 0x40; return b }, Groth16, "tauG1[7]: not on the curve"},
		{"tauG1 point swapped for another power", func(b []byte) []byte {
			copy(b[g1At(secTauG1, 7):g1At(secTauG1, 8)], b[g1At(secTauG1, 9):g1At(secTauG1, 10)])
			return b
		}, KZG, "tauG1 is not a sequence of successive powers"},
		{"alphaTauG1 point swapped", func(b []byte) []byte {
			copy(b[g1At(secAlphaTauG1, 3):g1At(secAlphaTauG1, 4)], b[g1At(secAlphaTauG1, 4):g1At(secAlphaTauG1, 5)])
			return b
		}, Groth16, "alphaTauG1 is not a sequence"},
		{"tauG2 point swapped", func(b []byte) []byte {
			copy(b[g2At(secTauG2, 2):g2At(secTauG2, 3)], b[g2At(secTauG2, 4):g2At(secTauG2, 5)])
			return b
		}, Groth16, "tauG2 is not a sequence"},
		{"betaG2 replaced", func(b []byte) []byte {
			copy(b[g2At(secBetaG2, 0):g2At(secBetaG2, 1)], b[g2At(secTauG2, 1):g2At(secTauG2, 2)])
			return b
		}, Groth16, "betaG2 does not match"},
		{"G2 point outside the subgroup", func(b []byte) []byte {
			o := g2At(secTauG2, 5)
			putMont(b[o:], &bad.X.A0)
			putMont(b[o+32:], &bad.X.A1)
			putMont(b[o+64:], &bad.Y.A0)
			putMont(b[o+96:], &bad.Y.A1)
			return b
		}, Groth16, "tauG2[5]: not in the prime-order subgroup"},
		{"point at infinity", func(b []byte) []byte {
			clear(b[g1At(secBetaTauG1, 2):g1At(secBetaTauG1, 3)])
			return b
		}, Groth16, "betaTauG1[2]: point at infinity"},
		{"coordinate above the modulus", func(b []byte) []byte {
			o := g1At(secTauG1, 4)
			for i := range 32 {
				b[o+i] = 0xff
			}
			return b
		}, KZG, "tauG1[4]: coordinate not below the field modulus"},
		{"no contribution (tau = 1)", func(b []byte) []byte {
			copy(b[g1At(secTauG1, 1):g1At(secTauG1, 2)], b[g1At(secTauG1, 0):g1At(secTauG1, 1)])
			return b
		}, KZG, "τ is 1"},
		{"truncated file", func(b []byte) []byte { return b[:len(b)-1000] }, KZG, "truncated"},
		{"truncated in a section header", func(b []byte) []byte { return b[:int(sec[secTauG2].off)-6] }, KZG, "truncated"},
		{"bad magic", func(b []byte) []byte { copy(b, "zkey"); return b }, KZG, "not a ptau file"},
		{"other curve", func(b []byte) []byte { b[int(sec[secHeader].off)+4] ^= 1; return b }, KZG, "is not BN254"},
		{"wrong section size", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[int(sec[secHeader].off)+36:], 10)
			binary.LittleEndian.PutUint32(b[int(sec[secHeader].off)+40:], 10)
			return b
		}, KZG, "power 10 needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.ptau")
			if err := os.WriteFile(path, tc.mutate(append([]byte(nil), orig...)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, 4, tc.kind, t.TempDir())
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
}

func TestPowerFor(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want int
	}{{0, 0}, {1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {1 << 20, 20}, {1<<20 + 1, 21}} {
		if got := PowerFor(tc.n); got != tc.want {
			t.Errorf("PowerFor(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// TestRejectsBadLagrange swaps two points of a prepared file's Lagrange sections (in the
// block an import at 2^4 reads): each import that reads the section refuses it.
func TestRejectsBadLagrange(t *testing.T) {
	orig, err := os.ReadFile(preparedPtau)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(preparedPtau)
	if err != nil {
		t.Fatal(err)
	}
	sec := p.sections
	p.Close()
	const power = 4
	for _, tc := range []struct {
		id   uint32
		size int
		kind Kind
	}{{secLagTauG1, g1Size, KZG}, {secLagTauG1, g1Size, Groth16}, {secLagTauG2, g2Size, Groth16}, {secLagAlphaTauG1, g1Size, Groth16}, {secLagBetaTauG1, g1Size, Groth16}} {
		t.Run(sectionNames[tc.id]+" "+string(tc.kind), func(t *testing.T) {
			b := append([]byte(nil), orig...)
			at := func(i int) int { return int(sec[tc.id].off) + (1<<power-1+i)*tc.size }
			tmp := append([]byte(nil), b[at(2):at(3)]...)
			copy(b[at(2):at(3)], b[at(5):at(6)])
			copy(b[at(5):at(6)], tmp)
			path := filepath.Join(t.TempDir(), "bad.ptau")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Import(path, power, tc.kind)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), sectionNames[tc.id]+" section (prepare phase2) does not match") {
				t.Fatalf("error %v", err)
			}
		})
	}
}
