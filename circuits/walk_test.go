package circuits

import (
	"reflect"
	"testing"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/schema"

	"github.com/zkml/zkml/model/quant"
)

// TestSchemaWalkSkipsProgram: gnark's schema walk of a circuit (done by every compile
// and witness) visits the witness vectors only, not the program behind the circuit,
// whose linear layers hold two index entries per multiply-accumulate. It walked them
// all before, allocating a name for each (#16).
func TestSchemaWalkSkipsProgram(t *testing.T) {
	const macs = 1 << 18
	ta, tb := make([]int32, macs), make([]int32, macs)
	for i := range ta {
		ta[i], tb[i] = int32(i%64), int32(i%64)
	}
	p := &quant.Program{Config: quant.DefaultConfig(),
		Values: []quant.Value{{Shape: []int{64}}, {Shape: []int{64}}, {Shape: []int{1}}},
		Inputs: []int{0}, Outputs: []int{2},
		Params: []*quant.Param{{Name: "w", Value: 1, Data: make([]int64, 64), Bits: 8}},
		Layers: []*quant.Layer{{Name: "fc", Op: "Gemm", Kind: quant.KLinear, In: []int{0, 1}, Out: 2,
			TermStart: []int32{0, macs}, TA: ta, TB: tb, Bias: []int32{-1}}}}
	c := New(p)
	tVariable := reflect.TypeFor[frontend.Variable]()
	var count schema.LeafCount
	allocs := testing.AllocsPerRun(1, func() {
		var err error
		if count, err = schema.Walk(Field, c, tVariable, nil); err != nil {
			t.Fatal(err)
		}
	})
	if count.Public != 1 || count.Secret != 64 {
		t.Fatalf("walk counted %+v, want 1 public and 64 secret", count)
	}
	if allocs > 1000 {
		t.Fatalf("walking the circuit of a %d-MAC program allocated %.0f times", macs, allocs)
	}
}
