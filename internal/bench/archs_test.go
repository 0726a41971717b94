package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
)

// TestSegments: layers are grouped greedily in order while a group's memory estimate
// fits the budget; a layer over the budget alone counts as the parts it needs.
func TestSegments(t *testing.T) {
	// unit is the slot memory of 2^18 constraints (the base memory is under a third of it).
	const unit = EstimateGroth16BytesPerSlot << 18
	node := func(cons, termBytes int64) NodeEstimate {
		return NodeEstimate{R1CS: cons, Bytes: termBytes + EstimateGroth16BytesPerSlot*cons}
	}
	e := &GraphEstimate{Nodes: []NodeEstimate{
		node(1<<18, unit), // 1 unit of slots + 1 unit of terms
		node(1<<18, unit), // together 2 units of slots (domain 2^19) + 2 units
		node(1<<18, unit), // a third: 4 units of slots (2^20) + 3 units + the base: fits 8
		node(1<<20, 0),    // with the three, 2^21 slots = 8 units: a new segment
		node(1<<22, 0),    // 16 units alone: over 8 units less the base, 3 parts
	}}
	if got := Segments(e, 8*unit); got != 5 {
		t.Errorf("8 units: %d segments, want 5", got)
	}
	if got := Segments(e, 64*unit); got != 1 {
		t.Errorf("64 units: %d segments, want 1", got)
	}
	if got := Segments(e, EstimateBaseMemory); got != 0 {
		t.Errorf("no room: %d segments, want 0", got)
	}
}

// TestArchTable: the bench's --arch table has a row per architecture with its MACs
// and the per-layer table a row per node.
func TestArchTable(t *testing.T) {
	row, _, err := EstimateArch(onnxgen.VGG16{Size: 32, Div: 32, Classes: 4, FillWeights: true}, quant.DefaultConfig(), 8<<30)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteArchTable(&b, []*ArchRow{row}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| vgg16_32_div32 | "+thousands(row.Estimate.MACs)+" |") || row.Segments != 1 {
		t.Errorf("table:\n%s(segments %d)", b.String(), row.Segments)
	}
	b.Reset()
	if err := WriteLayerTable(&b, row.Arch, row.Estimate); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "Conv+Relu"); n != 13 {
		t.Errorf("%d Conv+Relu rows, want 13:\n%s", n, b.String())
	}
}
