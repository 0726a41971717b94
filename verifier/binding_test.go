package verifier_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/test/unsafekzg"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/internal/onnxtest"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/verifier"
)

// gemmProgram lowers onnxtest.TinyGemm(w0) with params of visibility vis.
func gemmProgram(t *testing.T, vis quant.Visibility, w0 float32) *quant.Program {
	t.Helper()
	b := onnxtest.TinyGemm(w0)
	gr, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg := quant.DefaultConfig()
	cfg.ParamVis = vis
	p, err := quant.Lower(gr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// keys is a circuit and its development keys.
type keys struct {
	system  string
	ccs     constraint.ConstraintSystem
	pk      any
	vk      any
	vkBytes []byte
}

func setupKeys(t *testing.T, system string, p *quant.Program) *keys {
	t.Helper()
	ccs, _, err := circuits.Compile(p, circuits.System(system))
	if err != nil {
		t.Fatal(err)
	}
	k := &keys{system: system, ccs: ccs}
	var vk interface {
		WriteTo(w io.Writer) (int64, error)
	}
	switch system {
	case verifier.Groth16:
		pk, gvk, err := groth16.Setup(ccs)
		if err != nil {
			t.Fatal(err)
		}
		k.pk, k.vk, vk = pk, gvk, gvk
	default:
		srs, lag, err := unsafekzg.NewSRS(ccs)
		if err != nil {
			t.Fatal(err)
		}
		pk, pvk, err := plonk.Setup(ccs, srs, lag)
		if err != nil {
			t.Fatal(err)
		}
		k.pk, k.vk, vk = pk, pvk, pvk
	}
	var buf bytes.Buffer
	if _, err := vk.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	k.vkBytes = buf.Bytes()
	return k
}

// prove proves p on x with k, which may be the keys of another program of the same
// shapes: exactly what a prover holding a model's proving key can do.
func (k *keys) prove(t *testing.T, p *quant.Program, x []int64) (any, witness.Witness) {
	t.Helper()
	r, err := p.Eval([][]int64{x})
	if err != nil {
		t.Fatal(err)
	}
	a, err := circuits.Assign(p, [][]int64{x}, r.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	full, err := frontend.NewWitness(a, circuits.Field)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := full.Public()
	if err != nil {
		t.Fatal(err)
	}
	opts := verifier.ProverOptions(k.system)
	var proof any
	if k.system == verifier.Groth16 {
		proof, err = groth16.Prove(k.ccs, k.pk.(groth16.ProvingKey), full, opts...)
	} else {
		proof, err = plonk.Prove(k.ccs, k.pk.(plonk.ProvingKey), full, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return proof, pub
}

// TestParamsBinding is the audit's exploit 1: with hashed (or public) params the
// verifying key fixes the architecture, not the weights, so a prover holding model A's
// proving key proves with weights B, and the proof verifies against A's key. Every
// verifier must compare the params commitment (or the public params) with A's own: the
// library (VerifyModel), and the Solidity wrapper (paramsMatch, verify).
func TestParamsBinding(t *testing.T) {
	x := []int64{256, -128, 64, 512}
	for _, vis := range []quant.Visibility{quant.Hashed, quant.Public} {
		a := gemmProgram(t, vis, 1)
		b := gemmProgram(t, vis, 0.5)
		ba, _ := circuits.ModelBinding(a)
		bb, _ := circuits.ModelBinding(b)
		if ba == nil || bb == nil || ba.Values[0].Cmp(bb.Values[0]) == 0 {
			t.Fatalf("%s params: bindings %+v and %+v", vis, ba, bb)
		}
		for _, system := range []string{verifier.Groth16, verifier.PLONK} {
			if testing.Short() && system == verifier.PLONK {
				continue
			}
			t.Run(string(vis)+"/"+system, func(t *testing.T) {
				k := setupKeys(t, system, a)
				honest, honestPub := k.prove(t, a, x)
				forged, forgedPub := k.prove(t, b, x)
				// The exploit: the forged proof is a valid proof for A's verifying key.
				if err := verifier.VerifyDecoded(system, k.vkBytes, forged, forgedPub); err != nil {
					t.Fatalf("the forged proof does not even verify against the key (%v): the test no longer shows the exploit", err)
				}
				if err := verifier.VerifyModel(a, system, k.vkBytes, honest, honestPub); err != nil {
					t.Fatalf("honest proof: %v", err)
				}
				err := verifier.VerifyModel(a, system, k.vkBytes, forged, forgedPub)
				if !errors.Is(err, verifier.ErrModelMismatch) || !errors.Is(err, verifier.ErrInvalidProof) || !strings.Contains(err.Error(), ba.What) {
					t.Fatalf("forged proof: %v, want a params mismatch", err)
				}
				if err := verifier.VerifyModel(b, system, k.vkBytes, forged, forgedPub); err != nil {
					t.Fatalf("the forged proof is B's: %v", err)
				}

				// On-chain: the wrapper pins A's binding.
				c := evm.RequireCompiler(t)
				d, err := verifier.DeployOnEVM(context.Background(), c, k.vk, testModelID, verifier.WithBinding(ba))
				if err != nil {
					t.Fatal(err)
				}
				for _, tc := range []struct {
					name  string
					proof any
					pub   witness.Witness
					want  bool
				}{{"honest", honest, honestPub, true}, {"forged", forged, forgedPub, false}} {
					pb, err := verifier.ProofBytes(tc.proof)
					if err != nil {
						t.Fatal(err)
					}
					in, err := verifier.PublicInputs(tc.pub)
					if err != nil {
						t.Fatal(err)
					}
					ok, _, err := d.Verify(pb, in)
					if err != nil || ok != tc.want {
						t.Fatalf("EVM verify %s: %v %v, want %v", tc.name, ok, err, tc.want)
					}
					if m, err := d.ParamsMatch(in); err != nil || m != tc.want {
						t.Fatalf("EVM paramsMatch %s: %v %v, want %v", tc.name, m, err, tc.want)
					}
				}
			})
		}
	}
}

// TestCanonicalPublicInputs is the audit's exploit 3: a public input v + r verified in Go
// (PublicWitness reduced it mod r) while the EVM rejects it. Every encoding of a public
// input other than the canonical one is now an invalid proof.
func TestCanonicalPublicInputs(t *testing.T) {
	r := fr.Modulus()
	rMinus1 := new(big.Int).Sub(r, big.NewInt(1))
	for _, tc := range []struct {
		in []string
		ok bool
	}{
		{[]string{"0", "1", rMinus1.String()}, true},
		{[]string{r.String()}, false},
		{[]string{new(big.Int).Add(r, big.NewInt(5)).String()}, false},
		{[]string{"-1"}, false},
		{[]string{strings.Repeat("9", 78)}, false},
		{[]string{"0x10"}, false},
	} {
		_, err := verifier.PublicWitness(tc.in)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, verifier.ErrInvalidProof)) {
			t.Errorf("PublicWitness(%v): %v, want ok=%v", tc.in, err, tc.ok)
		}
	}

	// The binary form: gnark's header (nbPublic, nbSecret, vector length) and elements.
	enc := func(nbPublic, nbSecret uint32, elems ...*big.Int) []byte {
		var b []byte
		b = binary.BigEndian.AppendUint32(b, nbPublic)
		b = binary.BigEndian.AppendUint32(b, nbSecret)
		b = binary.BigEndian.AppendUint32(b, uint32(len(elems)))
		for _, e := range elems {
			var w [32]byte
			e.FillBytes(w[:])
			b = append(b, w[:]...)
		}
		return b
	}
	five := big.NewInt(5)
	good, err := verifier.DecodePublicWitness(enc(1, 0, five))
	if err != nil {
		t.Fatal(err)
	}
	if in, _ := verifier.PublicInputs(good); len(in) != 1 || in[0].Cmp(five) != 0 {
		t.Fatalf("decoded %v", in)
	}
	for name, b := range map[string][]byte{
		"v + r":          enc(1, 0, new(big.Int).Add(five, r)),
		"r":              enc(1, 0, r),
		"trailing bytes": append(enc(1, 0, five), 0),
		"secret values":  enc(0, 1, five),
		"short vector":   enc(2, 0, five),
	} {
		if _, err := verifier.DecodePublicWitness(b); !errors.Is(err, verifier.ErrInvalidProof) {
			t.Errorf("%s: %v, want an invalid proof", name, err)
		}
	}
}
