package circuits

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/consensys/gnark/constraint"
)

// LayerStats is the cost of one layer. Constraints counts those added while the layer
// was built; range checks and lookups are batched into arguments added after the last
// layer and reported in Stats.Deferred.
type LayerStats struct {
	Name           string `json:"name"`
	Op             string `json:"op"`
	Kind           string `json:"kind"`
	Bits           int    `json:"bits,omitempty"` // the signed width the layer proves or relies on (quant.Layer.Bits)
	Constraints    int    `json:"constraints"`
	Wires          int    `json:"wires"` // internal variables added by the layer
	RangeChecks    int    `json:"range_checks"`
	RangeCheckBits int    `json:"range_check_bits"`
	Lookups        int    `json:"lookups"`
	// SumWires counts the constraints among Constraints that make R1CS dot products
	// one wire (WireSumTerms): one per such sum, plus the one wire's equality in the
	// layer that first needs it.
	SumWires int `json:"sum_wires,omitempty"`
	// MaxError bounds the layer's output error against the float function of its
	// fixed-point input (lookup nonlinearities; 0 where the layer is exact or rounds by
	// at most half a step).
	MaxError  float64 `json:"max_error,omitempty"`
	TableSize int     `json:"table_size,omitempty"` // entries of the layer's lookup table
	// RLC: the layer's outputs are hinted and proven by a random-linear-combination
	// check (quant.Layer.RLC). The check is built after the last layer, with the
	// arguments: its constraints are CheckConstraints (and CheckWires wires), counted in
	// Stats.Deferred, not in Constraints (which stays the count of those built while
	// the layer was, in order: hintfuzz attributes constraints by it).
	RLC              bool `json:"rlc,omitempty"`
	CheckConstraints int  `json:"check_constraints,omitempty"`
	CheckWires       int  `json:"check_wires,omitempty"`
	start            int
	startWires       int
}

// Stats is a circuit-size report.
type Stats struct {
	System     string       `json:"system"`
	Constraint string       `json:"constraint_system"`
	Layers     []LayerStats `json:"layers"`
	// Deferred constraints: the range-check and lookup arguments, the output equality
	// checks and the commitment, added after the layers.
	Deferred int `json:"deferred_constraints"`
	// The range argument (lookup mode): its limb width t (a table of 2^t entries) and
	// its number of queries; each entry and each query is one R1CS constraint.
	RangeLimbBits int `json:"range_limb_bits,omitempty"`
	RangeQueries  int `json:"range_queries,omitempty"`
	Constraints   int `json:"constraints"`
	Public        int `json:"public_inputs"`
	Secret        int `json:"secret_inputs"`
	Internal      int `json:"internal_variables"`
}

// LayerConstraints is a layer's constraints with its random-linear-combination
// check's (built after the last layer): what the layer costs.
func (l LayerStats) LayerConstraints() int { return l.Constraints + l.CheckConstraints }

// ArgumentConstraints is Deferred less the layers' checks: the range-check and
// lookup arguments, output equalities and commitment.
func (s *Stats) ArgumentConstraints() int {
	n := s.Deferred
	for _, l := range s.Layers {
		n -= l.CheckConstraints
	}
	return n
}

// PublicInputs is the number of public inputs a verifier is given: the constraint
// system's public variables, less the constant-one wire that gnark's R1CS builder declares
// as its first public variable (PLONK's SCS has none).
func (s *Stats) PublicInputs() int {
	if s.Constraint == "r1cs" {
		return s.Public - 1
	}
	return s.Public
}

func (s *Stats) finish(ccs constraint.ConstraintSystem) {
	s.Constraints = ccs.GetNbConstraints()
	s.Public = ccs.GetNbPublicVariables()
	s.Secret = ccs.GetNbSecretVariables()
	s.Internal = ccs.GetNbInternalVariables()
	s.Deferred = s.Constraints
	for _, l := range s.Layers {
		s.Deferred -= l.Constraints
	}
}

// WriteTable prints the report as an aligned text table.
func (s *Stats) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "layer\top\tbits\tconstraints\twires\trange checks\tlookups\ttable\tmax error\t\n")
	for _, l := range s.Layers {
		table, maxErr, bits := "", "", ""
		if l.Bits > 0 {
			bits = fmt.Sprint(l.Bits)
		}
		if l.TableSize > 0 {
			table = fmt.Sprint(l.TableSize)
		}
		if l.MaxError > 0 {
			maxErr = fmt.Sprintf("%.2g", l.MaxError)
		}
		op := l.Op
		if l.RLC {
			op += " (rlc check)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", l.Name, op, bits, l.LayerConstraints(), l.Wires+l.CheckWires, l.RangeChecks, l.Lookups, table, maxErr)
	}
	fmt.Fprintf(tw, "(range-check and lookup arguments)\t\t\t%d\t\t\t\t\t\t\n", s.ArgumentConstraints())
	fmt.Fprintf(tw, "total (%s, %s)\t\t\t%d\t%d\t\t\t\t\t\n", s.System, s.Constraint, s.Constraints, s.Internal)
	if err := tw.Flush(); err != nil {
		return err
	}
	if s.RangeLimbBits > 0 {
		if _, err := fmt.Fprintf(w, "range argument: %d queries over a table of 2^%d\n", s.RangeQueries, s.RangeLimbBits); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "public inputs %d, secret inputs %d, internal variables %d\n", s.PublicInputs(), s.Secret, s.Internal)
	return err
}
