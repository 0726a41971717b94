package circuits

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/consensys/gnark/frontend"

	"github.com/zkml/zkml/model/quant"
)

// TestCommitVectors pins the commitment encoding: a verifier outside zkml recomputes
// published commitments with these exact values.
func TestCommitVectors(t *testing.T) {
	vectors := []struct {
		tag  int
		w    int
		vals []int64
		want string
	}{
		{TagInputs, 8, []int64{1, -2, 3}, "6700917067726173946967207164019329863743009806416865572905200065808778779455"},
		{TagOutputs, 24, []int64{0}, "9533739910920531894120097949298971403276727787950157601667760581733462596295"},
		{TagParams, 9, []int64{-256, 255, 0, 17, -17, 100, -100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}, "2340353829529144800187068922250134219375353452547664569784707867335990671156"},
	}
	for i, v := range vectors {
		got, err := Commit(v.tag, v.w, v.vals)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != v.want {
			t.Errorf("vector %d: Commit = %s, want %s", i, got, v.want)
		}
	}
	if _, err := Commit(TagInputs, 8, []int64{128}); err == nil {
		t.Error("value outside its width was committed")
	}
}

type visCase struct {
	in, out, par quant.Visibility
}

func (v visCase) String() string { return fmt.Sprintf("in=%s,out=%s,params=%s", v.in, v.out, v.par) }

// TestVisibilityModes proves that, in every visibility mode, the honest witness solves
// and a witness for a different input, output or parameters than the public values
// commit to does not.
func TestVisibilityModes(t *testing.T) {
	g, in := loadShared(t, "1l_mlp")
	var cases []visCase
	for _, iv := range []quant.Visibility{quant.Public, quant.Private, quant.Hashed} {
		for _, ov := range []quant.Visibility{quant.Public, quant.Private, quant.Hashed} {
			for _, pv := range []quant.Visibility{quant.Fixed, quant.Public, quant.Private, quant.Hashed} {
				cases = append(cases, visCase{iv, ov, pv})
			}
		}
	}
	if testing.Short() {
		cases = []visCase{{quant.Hashed, quant.Hashed, quant.Hashed}, {quant.Public, quant.Public, quant.Public}}
	}
	for _, vc := range cases {
		t.Run(vc.String(), func(t *testing.T) {
			cfg := quant.DefaultConfig()
			cfg.InputVis, cfg.OutputVis, cfg.ParamVis = vc.in, vc.out, vc.par
			p, err := quant.Lower(g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			qi, err := p.QuantizeInputs(in)
			if err != nil {
				t.Fatal(err)
			}
			r, err := p.Eval(qi)
			if err != nil {
				t.Fatal(err)
			}
			for _, sys := range []System{Groth16, Plonk} {
				ccs, _, err := Compile(p, sys)
				if err != nil {
					t.Fatal(err)
				}
				check := func(name string, a *Circuit, wantOK bool) {
					t.Helper()
					w, err := frontend.NewWitness(a, Field)
					if err != nil {
						t.Fatal(err)
					}
					err = ccs.IsSolved(w)
					if wantOK && err != nil {
						t.Fatalf("%s %s: honest witness rejected: %v", sys, name, err)
					}
					if !wantOK && err == nil {
						t.Fatalf("%s %s: tampered witness accepted", sys, name)
					}
				}
				honest, err := Assign(p, qi, r.Outputs)
				if err != nil {
					t.Fatal(err)
				}
				check("honest", honest, true)
				l := NewLayout(p)

				// A different input under the same claimed output and commitments must
				// fail when its true output differs, and always when the input is hashed
				// (the commitment binds it). A private input whose output is the same is
				// a true statement.
				other := [][]int64{append([]int64(nil), qi[0]...)}
				other[0][0] += 64
				r2, err := p.Eval(other)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(r2.Outputs) != fmt.Sprint(r.Outputs) || vc.in == quant.Hashed {
					a, _ := Assign(p, qi, r.Outputs)
					s := l.Inputs[0]
					vec := a.Secret
					if s.Public {
						vec = a.Public
					}
					vec[s.Offset] = other[0][0]
					check("other input", a, false)
				}

				// A different claimed output.
				a, _ := Assign(p, qi, r.Outputs)
				s := l.Outputs[0]
				vec := a.Secret
				if s.Public {
					vec = a.Public
				}
				vec[s.Offset] = r.Outputs[0][0] + 1
				check("other output", a, false)

				// Different witness params (when params are witnesses at all).
				for i, ps := range l.Params {
					if ps == nil || vc.par == quant.Private {
						continue
					}
					a, _ = Assign(p, qi, r.Outputs)
					vec = a.Secret
					if ps.Public {
						vec = a.Public
					}
					vec[ps.Offset] = p.Params[i].Data[0] + 1
					check("other params", a, false)
					break
				}

				// A wrong public commitment.
				for _, h := range l.Hashes {
					a, _ = Assign(p, qi, r.Outputs)
					a.Public[h.Offset] = new(big.Int).Add(a.Public[h.Offset].(*big.Int), big.NewInt(1))
					check(fmt.Sprintf("wrong commitment %d", h.Tag), a, false)
				}
			}
		})
	}
}
