package circuits

import (
	"math/big"

	"github.com/zkml/zkml/model/quant"
)

// Binding is the run of public inputs whose values the model itself determines: the
// params commitment when params are hashed, or the params when they are public.
//
// The verifying key fixes the architecture, not witness params: a prover holding the
// proving key can prove with any weights of the same widths, and the proof verifies.
// What makes such a proof "a proof for this model" is that these public inputs equal
// the model's own, so every verifier (library, CLI, API, Solidity wrapper) compares
// them. Fixed params are constants of the circuit (the verifying key binds them);
// private params are bound by nothing, by the user's choice.
type Binding struct {
	What   string     // BindsParamsCommitment or BindsPublicParams
	Offset int        // index of the first value among the public inputs
	Values []*big.Int // canonical field elements (a negative v is r - |v|)
}

// What a Binding pins.
const (
	BindsParamsCommitment = "params commitment"
	BindsPublicParams     = "public params"
)

// ModelBinding returns the binding of p's public inputs to its params, or nil when p
// has none (fixed or private params).
func ModelBinding(p *quant.Program) (*Binding, error) {
	l := NewLayout(p)
	for _, h := range l.Hashes {
		if h.Tag == TagParams {
			c, err := Commit(h.Domain, h.Width, l.group(h, p, nil, nil))
			if err != nil {
				return nil, err
			}
			return &Binding{What: BindsParamsCommitment, Offset: h.Offset, Values: []*big.Int{c}}, nil
		}
	}
	b := &Binding{What: BindsPublicParams, Offset: -1}
	for i, s := range l.Params {
		if s == nil || !s.Public {
			continue
		}
		if b.Offset < 0 {
			b.Offset = s.Offset
		}
		for _, v := range p.Params[i].Data {
			b.Values = append(b.Values, FieldElement(v))
		}
	}
	if len(b.Values) == 0 {
		return nil, nil
	}
	return b, nil
}

// FieldElement is the canonical field element of a signed integer: v mod r.
func FieldElement(v int64) *big.Int {
	return new(big.Int).Mod(big.NewInt(v), Field)
}
