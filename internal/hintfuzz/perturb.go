package hintfuzz

import (
	"fmt"
	"math/big"
	"math/rand"
	"slices"

	"github.com/zkml/zkml/circuits"
)

// Perturbations returns the adversarial rewrites of one hint call's outputs: for each
// output tried, its neighbours (±1, ±2), its negation r - v (a flipped sign), the
// half-field shifts v + (r±1)/2 (a wrap past (r-1)/2 mod r), shifts by ±2^-k mod r
// (the classic forgery of a quotient against a remainder check: q + 2^-k mod r makes
// the remainder move by exactly -1), the boundaries of every range k the hint works at
// (0, 2^k - 1, 2^k, -2^k) and a random field element; then joint rewrites of several
// outputs specific to zkml's hints. v ± r is not listed: a hint output is a field
// element, so it is v itself.
//
// extra bounds the cost: each output tried keeps its neighbours and its negation
// (the NbCore first rewrites) plus extra of the others, sampled with rng; extra < 0
// keeps them all.
func Perturbations(s Site, rng *rand.Rand, extra int) []Perturbation {
	var ps []Perturbation
	for _, j := range outputsToTry(s, rng) {
		all := valuePerturbations(s, j, rng)
		rest := all[NbCore:]
		if extra >= 0 && extra < len(rest) {
			rng.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
			rest = rest[:extra]
		}
		for i := range all[:NbCore] {
			all[i].Core = true
		}
		ps = append(append(ps, all[:NbCore]...), rest...)
	}
	joint := jointPerturbations(s, rng)
	for i := range joint {
		joint[i].Core = true
	}
	return append(ps, joint...)
}

// NbCore is the number of rewrites of each output that every run tries (marked Core,
// with the joint rewrites).
const NbCore = 5

var (
	halfDown = new(big.Int).Rsh(circuits.Field, 1)                                  // (r-1)/2
	halfUp   = new(big.Int).Add(new(big.Int).Rsh(circuits.Field, 1), big.NewInt(1)) // (r+1)/2
)

// setOut returns a perturbation writing f(v) into output j.
func setOut(name string, j int, f func(v *big.Int) *big.Int) Perturbation {
	return Perturbation{Name: fmt.Sprintf("out[%d] %s", j, name), Apply: func(_, out []*big.Int) {
		out[j].Mod(f(new(big.Int).Set(out[j])), circuits.Field)
	}}
}

func addConst(c *big.Int) func(v *big.Int) *big.Int {
	return func(v *big.Int) *big.Int { return v.Add(v, c) }
}

func constant(c *big.Int) func(*big.Int) *big.Int {
	return func(*big.Int) *big.Int { return new(big.Int).Set(c) }
}

func valuePerturbations(s Site, j int, rng *rand.Rand) []Perturbation {
	ps := []Perturbation{
		setOut("+1", j, addConst(big.NewInt(1))),
		setOut("-1", j, addConst(big.NewInt(-1))),
		setOut("+2", j, addConst(big.NewInt(2))),
		setOut("-2", j, addConst(big.NewInt(-2))),
		setOut("negated (r - v)", j, func(v *big.Int) *big.Int { return v.Neg(v) }),
		setOut("+(r-1)/2", j, addConst(halfDown)),
		setOut("+(r+1)/2", j, addConst(halfUp)),
	}
	for _, k := range widths(s, j) {
		p2 := new(big.Int).Lsh(big.NewInt(1), uint(k))
		inv := new(big.Int).ModInverse(p2, circuits.Field)
		ps = append(ps,
			setOut(fmt.Sprintf("= 2^%d - 1", k), j, constant(new(big.Int).Sub(p2, big.NewInt(1)))),
			setOut(fmt.Sprintf("= 2^%d", k), j, constant(p2)),
			setOut(fmt.Sprintf("= -2^%d", k), j, constant(new(big.Int).Neg(p2))),
			setOut(fmt.Sprintf("+ 2^-%d mod r", k), j, addConst(inv)),
			setOut(fmt.Sprintf("- 2^-%d mod r", k), j, addConst(new(big.Int).Neg(inv))),
		)
	}
	r := new(big.Int).Rand(rng, circuits.Field)
	ps = append(ps,
		setOut("= 0", j, constant(big.NewInt(0))),
		setOut("= "+r.String()+" (random)", j, constant(r)))
	return ps
}

// widths lists the bit widths of the ranges the hint's output j lives in.
func widths(s Site, j int) []int {
	in := func(i int) int {
		if i < len(s.In) && s.In[i].IsInt64() {
			return int(s.In[i].Int64())
		}
		return 0
	}
	var ws []int
	switch s.Name {
	case "circuits.rescaleHint": // (x, k, bits, relu)
		ws = []int{in(1), in(2) - 1, in(2)}
	case "circuits.roundEvenHint": // (x, k)
		ws = []int{in(1), in(1) + 1}
	case "circuits.limbsHint", "circuits.rangeCountHint": // (t, ...)
		ws = []int{in(0)}
	case "circuits.divHint": // (a, b)
		ws = []int{signedLen(s.In[0]), signedLen(s.In[1])}
	default:
		// gnark's own hints: small constant inputs are usually widths.
		for i := range s.In {
			if w := in(i); w >= 2 && w <= 64 {
				ws = append(ws, w)
			}
		}
	}
	ws = append(ws, signedLen(s.Out[j])+1)
	out := ws[:0]
	for _, w := range ws {
		if w >= 1 && w < 254 && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// signedLen is the bit length of |v| for v read as a signed field element.
func signedLen(v *big.Int) int {
	if v.Cmp(halfDown) > 0 {
		return new(big.Int).Sub(circuits.Field, v).BitLen()
	}
	return v.BitLen()
}

// outputsToTry picks the outputs of a call to perturb: all of a small hint's; for a
// wide one (multiplicities), the first and last, two non-zero ones and a random one.
func outputsToTry(s Site, rng *rand.Rand) []int {
	n := len(s.Out)
	if n <= 4 {
		js := make([]int, n)
		for i := range js {
			js[i] = i
		}
		return js
	}
	var nz []int
	for i, v := range s.Out {
		if v.Sign() != 0 {
			nz = append(nz, i)
		}
	}
	js := []int{0, n - 1, rng.Intn(n)}
	if len(nz) > 0 {
		js = append(js, nz[0], nz[rng.Intn(len(nz))])
	}
	out := js[:0]
	for _, j := range js {
		if !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	return out
}

// jointPerturbations rewrite several outputs at once, keeping what a single
// constraint sees unchanged where that is possible.
func jointPerturbations(s Site, rng *rand.Rand) []Perturbation {
	var ps []Perturbation
	switch s.Name {
	case "circuits.rescaleHint":
		if len(s.Out) == 2 && len(s.In) == 4 {
			// (s, low) -> (1 - s, low + (2s-1)*2^(bits-1)): the same quotient with the
			// other sign, so the ReLU output s*low would change.
			half := new(big.Int).Lsh(big.NewInt(1), uint(s.In[2].Int64()-1))
			ps = append(ps, Perturbation{Name: "sign flipped, quotient kept", Apply: func(_, out []*big.Int) {
				sOld := new(big.Int).Set(out[0])
				out[0].Sub(big.NewInt(1), out[0])
				d := new(big.Int).Mul(new(big.Int).Sub(new(big.Int).Lsh(sOld, 1), big.NewInt(1)), half)
				out[1].Add(out[1], d)
			}})
		}
	case "circuits.roundEvenHint":
		// (h, b) -> (h - 1, b + 2) and (h + 1, b - 2): the same y = 2h + b.
		for _, d := range []int64{-1, 1} {
			ps = append(ps, Perturbation{Name: fmt.Sprintf("half %+d, parity %+d (same y)", d, -2*d), Apply: func(_, out []*big.Int) {
				out[0].Add(out[0], big.NewInt(d))
				out[1].Sub(out[1], big.NewInt(2*d))
			}})
		}
	case "circuits.limbsHint":
		// A carry between neighbouring limbs keeps the recomposed value.
		if len(s.In) == 2 {
			t := uint(s.In[0].Int64())
			for i := 0; i+1 < len(s.Out); i++ {
				ps = append(ps, Perturbation{Name: fmt.Sprintf("limb %d +2^%d, limb %d -1", i, t, i+1), Apply: func(_, out []*big.Int) {
					out[i].Add(out[i], new(big.Int).Lsh(big.NewInt(1), t))
					out[i+1].Sub(out[i+1], big.NewInt(1))
				}})
			}
		}
	case "circuits.rangeCountHint":
		// Move one count from a queried value to another (a forged multiplicity), or
		// add one everywhere.
		var nz []int
		for i, v := range s.Out {
			if v.Sign() != 0 {
				nz = append(nz, i)
			}
		}
		if len(nz) > 0 {
			from := nz[rng.Intn(len(nz))]
			for _, to := range []int{(from + 1) % len(s.Out), rng.Intn(len(s.Out))} {
				if to == from {
					continue
				}
				ps = append(ps, Perturbation{Name: fmt.Sprintf("count moved from %d to %d", from, to), Apply: func(_, out []*big.Int) {
					out[from].Sub(out[from], big.NewInt(1))
					out[to].Add(out[to], big.NewInt(1))
				}})
			}
		}
	}
	return ps
}
