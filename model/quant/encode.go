package quant

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
)

// EncodingVersion is the version of the canonical program encoding written by
// WriteCanonical. Any change to what is written, or in which order, must bump it: the
// model ID (prover.ModelID) is the SHA-256 of this encoding, and verifier contracts are
// deployed with it.
const EncodingVersion = 1

// encodingMagic opens every canonical encoding, before the version.
const encodingMagic = "zkml/quant.Program"

// groupsExtension opens the boundary groups, written after every other field of a
// program that has them.
const groupsExtension = "groups"

// privateInputsExtension opens Program.PrivateInputs, written after the groups of a
// program that has it.
const privateInputsExtension = "private inputs"

// WriteCanonical writes the canonical binary encoding of p to w: every field of the
// program, its settings, values, params, layers and tables, in a fixed order, each
// length-prefixed where it has a length, so two programs have the same encoding
// exactly when they are equal field by field (docs/model-id.md).
//
// Encoding (all integers little-endian):
//
//	magic "zkml/quant.Program" (as a string), u32 EncodingVersion, then the fields
//	int, int64      8 bytes (two's complement)
//	int32           4 bytes
//	bool            1 byte, 0 or 1
//	float64         8 bytes, its IEEE 754 bits
//	string          u64 byte length, the bytes
//	slice           u64 element count, the elements
//	optional (*T)   1 byte 0 (nil) or 1 followed by T
//	map             u64 entry count, the entries (key, value) in increasing key order
//	*Table of a layer: i64 index in Program.Tables (-1: nil; -2: not there, followed
//	                by the table itself)
//	*Layer          like an optional, with one more tag: 2 is a layer with extension
//	                fields, written after all the others: int RLC. A layer whose
//	                extension fields are all zero is written with tag 1 and without
//	                them, so programs that use none encode (and are identified) exactly
//	                as before the extensions were added. Tag 3 is a layer with an
//	                output range (Layer.OutLo or OutHi not zero): the fields, then int
//	                RLC, int OutLo, int OutHi.
//	boundary groups after all the others, only when InputGroups or OutputGroups is
//	                set: string "groups", then InputGroups and OutputGroups (slices of
//	                int). A program without them (every unsharded program) is written
//	                without it, exactly as before groups were added; with them the
//	                encoding is longer than a complete encoding without them (every
//	                field is length-prefixed, so no encoding is a prefix of another).
//	private inputs after the groups, only when PrivateInputs is set: string
//	                "private inputs", then int PrivateInputs.
//
// It writes through a fixed 64 KiB buffer and never holds the whole encoding: hashing
// a program costs no memory proportional to its size.
func (p *Program) WriteCanonical(w io.Writer) error {
	e := &encoder{w: w, buf: make([]byte, 0, 64<<10)}
	e.str(encodingMagic)
	e.u32(EncodingVersion)
	e.config(&p.Config)
	e.u64(uint64(len(p.Values)))
	for i := range p.Values {
		v := &p.Values[i]
		e.ints(v.Shape)
		e.int(v.Scale)
		e.f64(v.Bound)
	}
	e.ints(p.Inputs)
	e.ints(p.Outputs)
	e.u64(uint64(len(p.Params)))
	for _, par := range p.Params {
		e.param(par)
	}
	e.u64(uint64(len(p.Layers)))
	for _, l := range p.Layers {
		e.layer(p, l)
	}
	e.u64(uint64(len(p.Tables)))
	for _, t := range p.Tables {
		e.optional(t != nil, func() { e.table(t) })
	}
	e.strs(p.InputNames)
	e.strs(p.OutputNames)
	e.quantIOs(p.InputQuant)
	e.quantIOs(p.OutputQuant)
	if len(p.InputGroups) > 0 || len(p.OutputGroups) > 0 {
		e.str(groupsExtension)
		e.ints(p.InputGroups)
		e.ints(p.OutputGroups)
	}
	if p.PrivateInputs != 0 {
		e.str(privateInputsExtension)
		e.int(p.PrivateInputs)
	}
	return e.flush()
}

func (e *encoder) config(c *Config) {
	e.int(c.Scale)
	e.int(c.ParamScale)
	e.int(c.Bits)
	keys := slices.Sorted(maps.Keys(c.Widths))
	e.u64(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.int(c.Widths[k])
	}
	e.int(c.LookupBits)
	e.str(c.RangeCheck)
	e.str(string(c.InputVis))
	e.str(string(c.OutputVis))
	e.str(string(c.ParamVis))
}

func (e *encoder) param(par *Param) {
	e.optional(par != nil, func() {
		e.str(par.Name)
		e.int(par.Value)
		e.i64s(par.Data)
		e.int(par.Bits)
		e.bool(par.Internal)
	})
}

func (e *encoder) layer(p *Program, l *Layer) {
	if l != nil && (l.OutLo != 0 || l.OutHi != 0) {
		e.u8(3)
		e.layerFields(p, l)
		e.int(l.RLC)
		e.int(l.OutLo)
		e.int(l.OutHi)
		return
	}
	if l != nil && l.RLC != 0 {
		e.u8(2)
		e.layerFields(p, l)
		e.int(l.RLC)
		return
	}
	e.optional(l != nil, func() { e.layerFields(p, l) })
}

func (e *encoder) layerFields(p *Program, l *Layer) {
	e.str(l.Name)
	e.str(l.Op)
	e.str(string(l.Kind))
	e.ints(l.In)
	e.int(l.Out)
	if s := l.structure(); s != nil {
		e.structuredTerms(l, s)
	} else {
		e.i32s(l.TermStart)
		e.i32s(l.TA)
		e.i32s(l.TB)
	}
	e.i32s(l.Bias)
	e.i32s(l.IA)
	e.i32s(l.IB)
	e.i64(l.MA)
	e.i64(l.MB)
	e.int(l.Shift)
	e.bool(l.Relu)
	e.int(l.Bits)
	e.str(l.Key)
	e.u64(uint64(len(l.Groups)))
	for _, g := range l.Groups {
		e.i32s(g)
	}
	e.i32s(l.Index)
	e.i64(l.Fill)
	switch i := slices.Index(p.Tables, l.Table); {
	case l.Table == nil:
		e.i64(-1)
	case i < 0:
		e.i64(-2)
		e.table(l.Table)
	default:
		e.i64(int64(i))
	}
	e.i64(l.TailLo)
	e.i64(l.TailHi)
	e.int(l.TailShift)
	e.int(l.TailBits)
	e.bool(l.Strict)
	e.f64(l.MaxError)
	e.i64(l.Lo)
	e.i64(l.Hi)
	e.bool(l.Min)
	e.int(l.NumBits)
	e.int(l.DenBits)
	e.bool(l.Last)
	e.bool(l.OneHot)
	e.i64s(l.Mult)
	e.i64s(l.Off)
	e.i64(l.Zero)
}

func (e *encoder) table(t *Table) {
	e.str(t.Name)
	e.i64(t.Lo)
	e.i64s(t.Values)
}

func (e *encoder) quantIOs(qs []*QuantIO) {
	e.u64(uint64(len(qs)))
	for _, q := range qs {
		e.optional(q != nil, func() {
			e.i64(q.Lo)
			e.i64(q.Hi)
			e.u64(uint64(len(q.Scale)))
			for _, s := range q.Scale {
				e.f64(s)
			}
			e.i64s(q.Zero)
			e.int(q.Axis)
		})
	}
}

// encoder appends to buf and writes it to w whenever it fills; the first write error
// is kept and ends the encoding.
type encoder struct {
	w   io.Writer
	buf []byte
	err error
}

func (e *encoder) flush() error {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
	if e.err != nil {
		return fmt.Errorf("encode program: %w", e.err)
	}
	return nil
}

// room makes room for n more bytes (n is at most 8).
func (e *encoder) room(n int) {
	if len(e.buf)+n > cap(e.buf) {
		_ = e.flush()
	}
}

func (e *encoder) u32(v uint32) {
	e.room(4)
	e.buf = binary.LittleEndian.AppendUint32(e.buf, v)
}

func (e *encoder) u64(v uint64) {
	e.room(8)
	e.buf = binary.LittleEndian.AppendUint64(e.buf, v)
}

func (e *encoder) i64(v int64)   { e.u64(uint64(v)) }
func (e *encoder) int(v int)     { e.u64(uint64(int64(v))) }
func (e *encoder) f64(v float64) { e.u64(math.Float64bits(v)) }

func (e *encoder) bool(v bool) {
	e.room(1)
	if v {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

func (e *encoder) u8(v byte) {
	e.room(1)
	e.buf = append(e.buf, v)
}

func (e *encoder) optional(present bool, f func()) {
	e.bool(present)
	if present {
		f()
	}
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	for len(s) > 0 {
		e.room(1)
		n := copy(e.buf[len(e.buf):cap(e.buf)], s)
		e.buf, s = e.buf[:len(e.buf)+n], s[n:]
	}
}

func (e *encoder) strs(ss []string) {
	e.u64(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) ints(vs []int) {
	e.u64(uint64(len(vs)))
	for _, v := range vs {
		e.int(v)
	}
}

func (e *encoder) i32s(vs []int32) {
	e.u64(uint64(len(vs)))
	e.i32raw(vs)
}

// structuredTerms writes a structured layer's TermStart, TA and TB exactly as i32s
// writes the lists Materialized would hold, generating them (three passes) instead.
func (e *encoder) structuredTerms(l *Layer, s structure) {
	n := l.LinearOutputs()
	total := 0
	e.u64(uint64(n + 1))
	l.termCounts(s, func(c int) {
		e.u32(uint32(int32(total)))
		total += c
	})
	e.u32(uint32(int32(total)))
	var buf TermBuf
	for side := range 2 {
		e.u64(uint64(total))
		for o := 0; o < n; o++ {
			ta, tb := l.Terms(o, &buf)
			if side == 0 {
				e.i32raw(ta)
			} else {
				e.i32raw(tb)
			}
		}
	}
}

// i32raw writes vs without a length.
func (e *encoder) i32raw(vs []int32) {
	for len(vs) > 0 {
		e.room(4)
		n := min(len(vs), (cap(e.buf)-len(e.buf))/4)
		b := e.buf[len(e.buf) : len(e.buf)+4*n]
		for i, v := range vs[:n] {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		}
		e.buf, vs = e.buf[:len(e.buf)+4*n], vs[n:]
	}
}

func (e *encoder) i64s(vs []int64) {
	e.u64(uint64(len(vs)))
	for len(vs) > 0 {
		e.room(8)
		n := min(len(vs), (cap(e.buf)-len(e.buf))/8)
		b := e.buf[len(e.buf) : len(e.buf)+8*n]
		for i, v := range vs[:n] {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
		e.buf, vs = e.buf[:len(e.buf)+8*n], vs[n:]
	}
}
