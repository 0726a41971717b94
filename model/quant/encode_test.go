package quant

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func canonicalHash(t testing.TB, p *Program) string {
	t.Helper()
	h := sha256.New()
	if err := p.WriteCanonical(h); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fullProgram is a program in which every field of every struct reachable from it is
// set, every slice of structs is non-empty and every pointer is non-nil, so that the
// reflection walk below reaches every field. It need not be a working program: the
// encoding does not interpret fields.
func fullProgram() *Program {
	tab := &Table{Name: "tanh", Lo: -4, Values: []int64{-3, 0, 3}}
	return &Program{
		Config: Config{Scale: 8, ParamScale: 7, Bits: 24, Widths: map[string]int{"input input": 10, "conv/rescale": 12}, LookupBits: 12, RangeCheck: "lookup",
			InputVis: Private, OutputVis: Public, ParamVis: Hashed},
		Values:  []Value{{Shape: []int{1, 4}, Scale: 8, Bound: 256}, {Shape: []int{4, 4}, Scale: 7, Bound: 100.5}},
		Inputs:  []int{0},
		Outputs: []int{2},
		Params:  []*Param{{Name: "w", Value: 1, Data: []int64{1, -2, 3}, Bits: 4, Internal: true}},
		Layers: []*Layer{{
			Name: "conv", Op: "Conv", Kind: KLinear, In: []int{0, 1}, Out: 2,
			TermStart: []int32{0, 2}, TA: []int32{0, 1}, TB: []int32{2, 3}, Bias: []int32{-1},
			IA: []int32{0}, IB: []int32{1}, MA: 3, MB: 5, Shift: 7, Relu: true, Bits: 24, Key: "conv/rescale",
			Groups: [][]int32{{0, 1}, {2}}, Index: []int32{3, 2}, Fill: -1, Table: tab,
			TailLo: 1, TailHi: 2, TailShift: 3, TailBits: 4, Strict: true, MaxError: 0.25,
			Lo: -8, Hi: 8, Min: true, NumBits: 9, DenBits: 10, Last: true, OneHot: true,
			Mult: []int64{11, 12}, Off: []int64{13}, Zero: 14,
		}},
		Tables:      []*Table{tab},
		InputNames:  []string{"input"},
		OutputNames: []string{"output"},
		InputQuant:  []*QuantIO{{Lo: -128, Hi: 127, Scale: []float64{0.5}, Zero: []int64{3}, Axis: 1}},
		OutputQuant: []*QuantIO{{Lo: 0, Hi: 255, Scale: []float64{0.1, 0.2}, Zero: []int64{0, 1}, Axis: 2}},
		// Not a valid grouping (the encoding does not interpret it).
		InputGroups:  []int{1, 2},
		OutputGroups: []int{3},
	}
}

// withoutGroups is fullProgram without boundary groups: every unsharded program.
func withoutGroups() *Program {
	p := fullProgram()
	p.InputGroups, p.OutputGroups = nil, nil
	return p
}

// mutation changes one field (named by path) of a program.
type mutation struct {
	path string
	f    func(p *Program) error
}

// apply runs the mutation; a nil pointer or empty slice on its path is an error.
func (m mutation) apply(p *Program) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fullProgram does not reach it: %v", r)
		}
	}()
	return m.f(p)
}

// mutations walks the structs reachable from fullProgram by reflection and returns,
// for every field, changes of it alone: a scalar is changed, a slice gets one more
// element and its first element changed (or, for slices of structs, loses its last one
// and has its first element's fields changed), a pointer becomes nil. A field of a kind
// it does not know is an error: a field added later is either covered or fails the
// test, never silently skipped.
func mutations(t *testing.T) ([]mutation, map[string]bool) {
	var out []mutation
	reached := map[string]bool{}
	var walk func(path string, get func(p *Program) reflect.Value, typ reflect.Type)
	add := func(path string, get func(p *Program) reflect.Value, f func(v reflect.Value) error) {
		out = append(out, mutation{path, func(p *Program) error { return f(get(p)) }})
	}
	walk = func(path string, get func(p *Program) reflect.Value, typ reflect.Type) {
		if typ == reflect.TypeFor[*ConvGeom]() || typ == reflect.TypeFor[*MatGeom]() {
			// A layer's geometry stands for its term lists and is encoded as them: a
			// geometry is only meaningful whole (TestGeomEncoded changes each field;
			// TestConvTermsMatchMaterialized checks the bytes are the lists').
			return
		}
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				if !f.IsExported() {
					t.Errorf("%s.%s: unexported field; the encoding and this test only know exported ones", path, f.Name)
					continue
				}
				reached[typ.Name()+"."+f.Name] = true
				walk(path+"."+f.Name, func(p *Program) reflect.Value { return get(p).Field(i) }, f.Type)
			}
		case reflect.Pointer:
			add(path+"=nil", get, func(v reflect.Value) error {
				if v.IsNil() {
					return errors.New("nil in fullProgram")
				}
				v.SetZero()
				return nil
			})
			walk(path, func(p *Program) reflect.Value { return get(p).Elem() }, typ.Elem())
		case reflect.Slice:
			elem := typ.Elem()
			add(path+"+[]", get, func(v reflect.Value) error {
				if v.Len() == 0 {
					return errors.New("empty in fullProgram")
				}
				if k := elem.Kind(); k == reflect.Struct || k == reflect.Pointer {
					v.Set(v.Slice(0, v.Len()-1))
				} else {
					v.Set(reflect.Append(v, reflect.Zero(elem)))
				}
				return nil
			})
			walk(path+"[0]", func(p *Program) reflect.Value { return get(p).Index(0) }, elem)
		case reflect.Map:
			if typ.Key().Kind() != reflect.String || typ.Elem().Kind() != reflect.Int {
				t.Errorf("%s: map of %s: teach WriteCanonical and this test to encode it", path, typ)
				return
			}
			first := func(v reflect.Value) (reflect.Value, error) {
				keys := v.MapKeys()
				if len(keys) == 0 {
					return reflect.Value{}, errors.New("empty in fullProgram")
				}
				slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
				return keys[0], nil
			}
			add(path+"+{}", get, func(v reflect.Value) error {
				v.SetMapIndex(reflect.ValueOf("zzz"), reflect.Zero(typ.Elem()))
				return nil
			})
			add(path+"[k]", get, func(v reflect.Value) error {
				k, err := first(v)
				if err == nil {
					v.SetMapIndex(k, reflect.ValueOf(int(v.MapIndex(k).Int()+1)))
				}
				return err
			})
			add(path+"[k]=>k+x", get, func(v reflect.Value) error {
				k, err := first(v)
				if err == nil {
					w := v.MapIndex(k)
					v.SetMapIndex(k, reflect.Value{})
					v.SetMapIndex(reflect.ValueOf(k.String()+"x"), w)
				}
				return err
			})
		case reflect.Int, reflect.Int32, reflect.Int64:
			add(path, get, func(v reflect.Value) error { v.SetInt(v.Int() + 1); return nil })
		case reflect.Float64:
			add(path, get, func(v reflect.Value) error { v.SetFloat(v.Float() + 1); return nil })
		case reflect.Bool:
			add(path, get, func(v reflect.Value) error { v.SetBool(!v.Bool()); return nil })
		case reflect.String:
			add(path, get, func(v reflect.Value) error { v.SetString(v.String() + "x"); return nil })
		default:
			t.Errorf("%s: field of kind %s: teach WriteCanonical and this test to encode it", path, typ.Kind())
		}
	}
	walk("Program", func(p *Program) reflect.Value { return reflect.ValueOf(p).Elem() }, reflect.TypeFor[Program]())
	return out, reached
}

// TestCanonicalEncodingCoversEveryField: changing any single field of the program (its
// settings, values, params, layers, tables, names and quantized I/O) changes the
// encoding, hence the model ID. A field added to any of these structs without being
// encoded fails here.
func TestCanonicalEncodingCoversEveryField(t *testing.T) {
	base := canonicalHash(t, fullProgram())
	ms, reached := mutations(t)
	seen := map[string]string{}
	for _, m := range ms {
		p := fullProgram()
		if err := m.apply(p); err != nil {
			t.Errorf("%s: %v", m.path, err)
			continue
		}
		h := canonicalHash(t, p)
		if h == base {
			t.Errorf("changing %s does not change the encoding", m.path)
		}
		if prev, ok := seen[h]; ok && !strings.HasPrefix(m.path, "Program.Layers[0].Table") && !strings.HasPrefix(prev, "Program.Layers[0].Table") {
			t.Errorf("changing %s and changing %s give the same encoding", prev, m.path)
		}
		seen[h] = m.path
	}
	// Every field of every struct type is reached (Config through Program's embedding).
	for _, typ := range []reflect.Type{reflect.TypeFor[Program](), reflect.TypeFor[Config](), reflect.TypeFor[Value](),
		reflect.TypeFor[Param](), reflect.TypeFor[Layer](), reflect.TypeFor[Table](), reflect.TypeFor[QuantIO]()} {
		for i := range typ.NumField() {
			if name := typ.Name() + "." + typ.Field(i).Name; !reached[name] {
				t.Errorf("%s is not reached by the walk", name)
			}
		}
	}
	if len(ms) < 60 {
		t.Fatalf("only %d mutations", len(ms))
	}
}

// TestCanonicalEncodingBoundaries: moving an element across the boundary of two
// adjacent lists, or between a list and its neighbour's length, changes the encoding
// (every list is length-prefixed).
func TestCanonicalEncodingBoundaries(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b func(p *Program)
	}{
		{"TA/TB", func(p *Program) { p.Layers[0].TA, p.Layers[0].TB = []int32{1, 2}, []int32{3} },
			func(p *Program) { p.Layers[0].TA, p.Layers[0].TB = []int32{1}, []int32{2, 3} }},
		{"Groups", func(p *Program) { p.Layers[0].Groups = [][]int32{{1, 2}, {3}} },
			func(p *Program) { p.Layers[0].Groups = [][]int32{{1}, {2, 3}} }},
		{"names", func(p *Program) { p.InputNames, p.OutputNames = []string{"ab"}, []string{"c"} },
			func(p *Program) { p.InputNames, p.OutputNames = []string{"a"}, []string{"bc"} }},
		{"inputs/outputs", func(p *Program) { p.Inputs, p.Outputs = []int{0, 1}, []int{2} },
			func(p *Program) { p.Inputs, p.Outputs = []int{0}, []int{1, 2} }},
		{"nil and empty quant", func(p *Program) { p.InputQuant = nil },
			func(p *Program) { p.InputQuant = []*QuantIO{nil} }},
		{"widths", func(p *Program) { p.Widths = map[string]int{"ab": 3} },
			func(p *Program) { p.Widths = map[string]int{"a": 3} }},
		{"nil and empty widths", func(p *Program) { p.Widths = nil },
			func(p *Program) { p.Widths = map[string]int{"": 0} }},
		{"shared and equal table", func(p *Program) {},
			func(p *Program) { t := *p.Tables[0]; p.Layers[0].Table = &t }},
	} {
		pa, pb := fullProgram(), fullProgram()
		c.a(pa)
		c.b(pb)
		if canonicalHash(t, pa) == canonicalHash(t, pb) {
			t.Errorf("%s: same encoding", c.name)
		}
	}
}

// TestCanonicalEncodingDeterministic: maps (Config.Widths) are encoded in key order,
// so the encoding does not depend on Go's random map iteration.
func TestCanonicalEncodingDeterministic(t *testing.T) {
	p := fullProgram()
	for i := range 50 {
		p.Widths[fmt.Sprintf("layer%d/rescale", i)] = 2 + i%30
	}
	want := canonicalHash(t, p)
	for range 20 {
		q := fullProgram()
		q.Widths = maps.Clone(p.Widths)
		if got := canonicalHash(t, q); got != want {
			t.Fatalf("encoding %s, then %s", want, got)
		}
	}
}

// TestCanonicalEncodingGolden pins the encoding: the hash of fullProgram's encoding
// and its first bytes. If this changes, EncodingVersion must change, and every model
// ID with it (verifier contracts are deployed with model IDs).
func TestCanonicalEncodingGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := withoutGroups().WriteCanonical(&buf); err != nil {
		t.Fatal(err)
	}
	head := "1200000000000000" + hex.EncodeToString([]byte(encodingMagic)) + "01000000" +
		"0800000000000000" + "0700000000000000" + "1800000000000000" + "0200000000000000" + // scale, param_scale, bits, 2 widths
		"0c00000000000000" + hex.EncodeToString([]byte("conv/rescale")) + "0c00000000000000" // the first width, by key
	if got := hex.EncodeToString(buf.Bytes()[:len(head)/2]); got != head {
		t.Errorf("encoding starts\n%s, want\n%s", got, head)
	}
	const want = "1197706ad3d69c40fa4a8f4f64dfeb5eacb2653a98aacfd44c9172b712c76027"
	if got := canonicalHash(t, withoutGroups()); got != want {
		t.Errorf("encoding hash %s, want %s (version %d)", got, want, EncodingVersion)
	}
}

// TestGroupsEncoding: boundary groups are encoded after every other field, tagged,
// only when set, so programs without them (every unsharded program) keep their
// encodings and model IDs (TestCanonicalEncodingGolden); set, they change the encoding,
// and moving a tensor between the input and output groups changes it too.
func TestGroupsEncoding(t *testing.T) {
	enc := func(p *Program) []byte {
		var b bytes.Buffer
		if err := p.WriteCanonical(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	base, with := enc(withoutGroups()), enc(fullProgram())
	if !bytes.HasPrefix(with, base) {
		t.Fatal("the encoding with groups does not extend the encoding without")
	}
	ext := "0600000000000000" + hex.EncodeToString([]byte(groupsExtension)) +
		"0200000000000000" + "0100000000000000" + "0200000000000000" + // InputGroups [1, 2]
		"0100000000000000" + "0300000000000000" // OutputGroups [3]
	if got := hex.EncodeToString(with[len(base):]); got != ext {
		t.Errorf("groups encoded as\n%s, want\n%s", got, ext)
	}
	only := withoutGroups()
	only.OutputGroups = []int{1, 2}
	moved := withoutGroups()
	moved.InputGroups = []int{1, 2}
	if bytes.Equal(enc(only), enc(moved)) || bytes.Equal(enc(only), base) {
		t.Error("input and output groups are not told apart")
	}
}

// failingWriter fails its n-th write.
type failingWriter struct{ n int }

func (w *failingWriter) Write(b []byte) (int, error) {
	w.n--
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	return len(b), nil
}

func TestCanonicalEncodingWriteError(t *testing.T) {
	p := bigLinear(1 << 16)
	for _, n := range []int{1, 2} {
		if err := p.WriteCanonical(&failingWriter{n: n}); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("write %d fails: err %v", n, err)
		}
	}
}

// bigLinear is a program with one linear layer of macs multiply-accumulates.
func bigLinear(macs int) *Program {
	ta, tb := make([]int32, macs), make([]int32, macs)
	for i := range ta {
		ta[i], tb[i] = int32(i%1000), int32(i%77)
	}
	return &Program{Config: DefaultConfig(), Values: []Value{{Shape: []int{1000}}, {Shape: []int{77}}, {Shape: []int{1}}},
		Inputs: []int{0}, Outputs: []int{2},
		Layers: []*Layer{{Name: "fc", Op: "Gemm", Kind: KLinear, In: []int{0, 1}, Out: 2, TermStart: []int32{0, int32(macs)}, TA: ta, TB: tb, Bias: []int32{-1}}}}
}

// TestCanonicalEncodingStreams: hashing a program of millions of multiply-accumulates
// allocates a fixed amount, not the encoding (the JSON-based ID allocated several
// bytes per MAC).
func TestCanonicalEncodingStreams(t *testing.T) {
	p := bigLinear(4 << 20) // 32 MiB of index lists
	h := sha256.New()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := p.WriteCanonical(h); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("hashing %d MACs allocated %d bytes", 4<<20, got)
	}
	if testing.AllocsPerRun(3, func() { _ = p.WriteCanonical(h) }) > 10 {
		t.Fatal("more than 10 allocations per encoding")
	}
}
