// Package adversary acts as a malicious prover in tests: it does to model directories
// what someone holding a model's artifacts can do, so that every verifier can be shown
// to reject the result.
package adversary

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/plonk"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
	"github.com/consensys/gnark/backend/witness"
)

// ShareKeys gives the model directory to the circuit and keys of system in from (a
// prover holding from's proving key), rewriting to's manifest so that they load. The two
// models must compile to the same circuit, as any two models of the same shapes do with
// witness (public, private or hashed) params.
func ShareKeys(from, to, system string) error {
	read := func(dir string) (map[string]any, error) {
		var m map[string]any
		b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			return nil, err
		}
		return m, json.Unmarshal(b, &m)
	}
	mf, err := read(from)
	if err != nil {
		return err
	}
	mt, err := read(to)
	if err != nil {
		return err
	}
	ff, ok1 := mf["files"].(map[string]any)
	ft, ok2 := mt["files"].(map[string]any)
	if !ok1 || !ok2 {
		return fmt.Errorf("adversary: manifest without files")
	}
	for _, kind := range []string{"circuit", "pk", "vk"} {
		name := fmt.Sprintf("%s.%s.bin", kind, system)
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o644); err != nil {
			return err
		}
		ft[name] = ff[name]
	}
	if s, ok := mf["setup"]; ok {
		mt["setup"] = s
	}
	b, err := json.Marshal(mt)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(to, "manifest.json"), b, 0o644)
}

// BumpDecimal returns the decimal BN254 field element s plus one: a commitment or
// public value changed by the least a forger can change it.
func BumpDecimal(s string) (string, error) {
	var x, one fr.Element
	if _, err := x.SetString(s); err != nil {
		return "", err
	}
	one.SetOne()
	x.Add(&x, &one)
	return x.String(), nil
}

// BumpPublic returns the binary public witness pub (gnark's encoding over BN254) with
// its value at slot plus one.
func BumpPublic(pub []byte, slot int) ([]byte, error) {
	w, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	if err := w.UnmarshalBinary(pub); err != nil {
		return nil, err
	}
	vec, ok := w.Vector().(fr.Vector)
	if !ok || slot < 0 || slot >= len(vec) {
		return nil, fmt.Errorf("public witness of %d values has no slot %d", len(vec), slot)
	}
	var one fr.Element
	one.SetOne()
	vec[slot].Add(&vec[slot], &one)
	return w.MarshalBinary()
}

// OffCurveProvingKey returns pk (a BN254 Groth16 or PLONK proving key) encoded by
// encode with one point every proof uses moved off the curve (Groth16's [α]₁, PLONK's
// [τ]₁ of the quotient's and the openings' commitments), leaving pk as it was: the key
// a prover who can write a model directory, and match its checksum, would plant. It
// fails unless gnark's checked decoder refuses the result.
func OffCurveProvingKey(pk any, encode func(io.WriterTo) ([]byte, error)) ([]byte, error) {
	var p *bn254.G1Affine
	var checked io.ReaderFrom
	switch k := pk.(type) {
	case *plonkbn254.ProvingKey:
		p, checked = &k.Kzg.G1[1], plonk.NewProvingKey(ecc.BN254)
	case *groth16bn254.ProvingKey:
		p, checked = &k.G1.Alpha, groth16.NewProvingKey(ecc.BN254)
	default:
		return nil, fmt.Errorf("proving key %T", pk)
	}
	saved := *p
	defer func() { *p = saved }()
	var one fp.Element
	one.SetOne()
	p.Y.Add(&p.Y, &one)
	if p.IsOnCurve() {
		return nil, fmt.Errorf("tampered point still on the curve")
	}
	bad, err := encode(pk.(io.WriterTo))
	if err != nil {
		return nil, err
	}
	if _, err := checked.ReadFrom(bytes.NewReader(bad)); err == nil {
		return nil, fmt.Errorf("gnark's checked decoder accepts the tampered key")
	}
	return bad, nil
}
