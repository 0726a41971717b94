package srs_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/internal/ptautest"
	"github.com/zkml/zkml/srs"
)

// BenchmarkImport measures import and check (no cache) of a Powers of Tau file truncated
// to 2^16, 2^18 and 2^20 points: the commons of a Groth16 ceremony, and PLONK's KZG SRS
// from a prepared file (Lagrange basis read and checked with two MSMs). At 2^16 it also
// measures the KZG SRS from a plain file, where the Lagrange basis is computed (an FFT
// over G1, far slower). Files are written by ptautest first (not timed). Run with
// -benchtime=1x:
//
//	go test -run '^$' -bench Import/2e16 -benchtime 1x ./srs/
func BenchmarkImport(b *testing.B) {
	for _, power := range []int{16, 18, 20} {
		b.Run(fmt.Sprintf("2e%d", power), func(b *testing.B) {
			prepared := filepath.Join(b.TempDir(), "prepared.ptau")
			if err := ptautest.WritePrepared(prepared, power, 5, 7, 11, power); err != nil {
				b.Fatal(err)
			}
			run := func(name, path string, kind srs.Kind) {
				b.Run(name, func(b *testing.B) {
					for range b.N {
						if _, err := srs.Import(path, power, kind); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			run("groth16", prepared, srs.Groth16)
			run("kzg-prepared", prepared, srs.KZG)
			if power == 16 {
				plain := filepath.Join(b.TempDir(), "plain.ptau")
				if err := ptautest.Write(plain, power, 5, 7, 11); err != nil {
					b.Fatal(err)
				}
				run("kzg-plain", plain, srs.KZG)
			}
		})
	}
}
