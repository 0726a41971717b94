package verifier_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zkml/zkml/verifier"
)

func TestCalldataLayout(t *testing.T) {
	r := fr.Modulus()
	wantInputs := []*big.Int{
		new(big.Int).Sub(r, big.NewInt(3)), big.NewInt(4), // x = (-3, 4)
		new(big.Int).Sub(r, big.NewInt(41)), big.NewInt(7), // y = (-41, 7)
	}
	parsed, err := verifier.ParsedWrapperABI()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		system   string
		proofLen int
	}{
		// A, B, C + one commitment + its proof of knowledge.
		{verifier.Groth16, 256 + 64 + 64},
		// gnark's PLONK layout with one api.Commit (std/rangecheck).
		{verifier.PLONK, 864},
	} {
		t.Run(tc.system, func(t *testing.T) {
			f := getFixture(t, tc.system)
			proof, err := verifier.ProofBytes(f.proof)
			if err != nil {
				t.Fatal(err)
			}
			if len(proof) != tc.proofLen {
				t.Fatalf("proof is %d bytes, want %d", len(proof), tc.proofLen)
			}
			var bin bytes.Buffer
			if _, err := f.proof.(io.WriterTo).WriteTo(&bin); err != nil {
				t.Fatal(err)
			}
			decoded, err := verifier.DecodeProof(tc.system, bin.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := verifier.ProofBytes(decoded); !bytes.Equal(again, proof) {
				t.Fatal("DecodeProof round trip changed the proof")
			}
			if _, err := verifier.DecodeProof(tc.system, bin.Bytes()[:10]); !errors.Is(err, verifier.ErrInvalidProof) {
				t.Fatalf("truncated proof: err = %v, want ErrInvalidProof", err)
			}
			cd, err := verifier.Calldata(f.proof, f.public)
			if err != nil {
				t.Fatal(err)
			}
			if sel := crypto.Keccak256([]byte("verify(bytes,uint256[])"))[:4]; !bytes.Equal(cd[:4], sel) {
				t.Fatalf("selector %x, want %x", cd[:4], sel)
			}
			args, err := parsed.Methods["verify"].Inputs.Unpack(cd[4:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(args[0].([]byte), proof) {
				t.Fatal("calldata proof differs from ProofBytes")
			}
			if got := bigs(args[1].([]*big.Int)); fmt.Sprint(got) != fmt.Sprint(bigs(wantInputs)) {
				t.Fatalf("calldata inputs %v, want %v", got, bigs(wantInputs))
			}
			// head (2 words) + bytes (length word + padded data) + array (length word + 4 words)
			if want := 4 + 32*2 + 32 + (len(proof)+31)/32*32 + 32 + 32*4; len(cd) != want {
				t.Fatalf("calldata is %d bytes, want %d", len(cd), want)
			}

			dec, err := verifier.EncodeCall("verifyAndDecode", f.proof, f.public)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dec[4:], cd[4:]) || bytes.Equal(dec[:4], cd[:4]) {
				t.Fatal("verifyAndDecode calldata should differ from verify only in the selector")
			}
		})
	}
	if _, err := verifier.EncodeCall("modelId", getFixture(t, verifier.Groth16).proof, getFixture(t, verifier.Groth16).public); err == nil {
		t.Fatal("EncodeCall(modelId) accepted")
	}
	if _, err := verifier.ProofBytes("proof"); err == nil {
		t.Fatal("ProofBytes accepted a string")
	}
}

func TestToSigned(t *testing.T) {
	r := fr.Modulus()
	half := new(big.Int).Rsh(r, 1)
	sub := func(a *big.Int, b int64) *big.Int { return new(big.Int).Sub(a, big.NewInt(b)) }
	add := func(a *big.Int, b int64) *big.Int { return new(big.Int).Add(a, big.NewInt(b)) }
	for _, tc := range []struct {
		in   *big.Int
		want string // "" means error
	}{
		{big.NewInt(0), "0"},
		{big.NewInt(7), "7"},
		{half, half.String()},
		{add(half, 1), "-" + half.String()},
		{sub(r, 1), "-1"},
		{sub(r, 41), "-41"},
		{r, ""},
		{big.NewInt(-1), ""},
	} {
		got, err := verifier.ToSigned(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ToSigned(%v) = %v, want error", tc.in, got)
		case tc.want != "" && (err != nil || got.String() != tc.want):
			t.Errorf("ToSigned(%v) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestProverVerifierOptions(t *testing.T) {
	for _, system := range []string{verifier.Groth16, verifier.PLONK, "GROTH16"} {
		if _, err := backend.NewProverConfig(verifier.ProverOptions(system)...); err != nil {
			t.Errorf("ProverOptions(%q): %v", system, err)
		}
		if _, err := backend.NewVerifierConfig(verifier.VerifierOptions(system)...); err != nil {
			t.Errorf("VerifierOptions(%q): %v", system, err)
		}
	}
	if _, err := backend.NewProverConfig(verifier.ProverOptions("stark")...); err == nil {
		t.Error("ProverOptions(stark) did not fail")
	}
	if _, err := backend.NewVerifierConfig(verifier.VerifierOptions("stark")...); err == nil {
		t.Error("VerifierOptions(stark) did not fail")
	}
}

func ExampleToSigned() {
	// -41 in the BN254 scalar field is r - 41.
	v := new(big.Int).Sub(fr.Modulus(), big.NewInt(41))
	s, _ := verifier.ToSigned(v)
	fmt.Println(s)
	// Output: -41
}
