// Package srs imports public Powers of Tau files (the snarkjs .ptau format of the Perpetual
// Powers of Tau and Hermez ceremonies, BN254) and turns them into the structured reference
// strings zkml's setups need: a KZG SRS (canonical and Lagrange) for PLONK, and gnark's
// phase-1 commons (mpcsetup.SrsCommons) for a Groth16 phase-2 ceremony.
//
// Nothing in a .ptau file is trusted beyond what is checked here: the header and section
// layout, every point read on the curve and in the prime-order subgroup, and the powers
// consistent with one τ (and one α, β) through pairing checks on random linear
// combinations. Files are streamed: only the prefix of each section that the circuit's
// domain needs is read, so a power-24 file costs no more memory than its truncation.
// Checked imports are cached by the file's content hash (see Load).
package srs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"runtime"
	"sync"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
)

// ErrInvalid is wrapped by every error that rejects a .ptau file's content or layout.
var ErrInvalid = errors.New("invalid ptau file")

// Section identifiers of the snarkjs .ptau format (powersoftau_utils.js).
const (
	secHeader        = 1
	secTauG1         = 2
	secTauG2         = 3
	secAlphaTauG1    = 4
	secBetaTauG1     = 5
	secBetaG2        = 6
	secContributions = 7
	// Sections written by `snarkjs powersoftau prepare phase2`: the same points in
	// Lagrange form, for every power 0..power (and power+1 for τ in G1), concatenated.
	secLagTauG1      = 12
	secLagTauG2      = 13
	secLagAlphaTauG1 = 14
	secLagBetaTauG1  = 15
)

const (
	g1Size = 64  // x, y: Montgomery form, little endian
	g2Size = 128 // x.c0, x.c1, y.c0, y.c1
	// MaxPower is the largest power a BN254 ptau file can hold (2-adicity of r).
	MaxPower = 28
)

var sectionNames = map[uint32]string{
	secHeader: "header", secTauG1: "tauG1", secTauG2: "tauG2", secAlphaTauG1: "alphaTauG1",
	secBetaTauG1: "betaTauG1", secBetaG2: "betaG2", secContributions: "contributions",
	secLagTauG1: "lagrange tauG1", secLagTauG2: "lagrange tauG2", secLagAlphaTauG1: "lagrange alphaTauG1",
	secLagBetaTauG1: "lagrange betaTauG1",
}

type section struct{ off, size int64 }

// File is an opened .ptau file whose header and section layout were checked. Points are
// read on demand (ReadG1, ReadG2), so opening a large file is cheap.
type File struct {
	f *os.File
	// Power is log2 of the number of τ powers in G2 (the file holds 2^(Power+1)-1 in G1).
	Power int
	// CeremonyPower is the power of the ceremony the file was truncated from.
	CeremonyPower int
	// Prepared reports the Lagrange sections of `snarkjs powersoftau prepare phase2`.
	Prepared bool
	// Size is the file size in bytes.
	Size     int64
	sections map[uint32]section
}

// Open opens a .ptau file and checks its header and section layout: magic, version, the
// BN254 base field, the power, every section present once, inside the file, and of the
// size the power implies.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	p, err := parse(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Close closes the file.
func (p *File) Close() error { return p.f.Close() }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func parse(f *os.File) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	p := &File{f: f, Size: st.Size(), sections: map[uint32]section{}}
	var head [12]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return nil, invalid("file too short for a ptau header (%d bytes)", p.Size)
	}
	if string(head[:4]) != "ptau" {
		return nil, invalid("not a ptau file (magic %q)", head[:4])
	}
	if v := binary.LittleEndian.Uint32(head[4:]); v != 1 {
		return nil, invalid("ptau format version %d, this reader knows version 1", v)
	}
	nSections := binary.LittleEndian.Uint32(head[8:])
	off := int64(12)
	for i := uint32(0); i < nSections; i++ {
		var sh [12]byte
		if _, err := f.ReadAt(sh[:], off); err != nil {
			return nil, invalid("truncated: section %d of %d has no header at offset %d (file is %d bytes)", i+1, nSections, off, p.Size)
		}
		typ := binary.LittleEndian.Uint32(sh[:4])
		size := binary.LittleEndian.Uint64(sh[4:])
		off += 12
		if size > uint64(p.Size-off) {
			return nil, invalid("truncated: section %d (%s) declares %d bytes at offset %d but the file is %d bytes", typ, sectionNames[typ], size, off, p.Size)
		}
		if _, dup := p.sections[typ]; dup {
			return nil, invalid("section %d (%s) appears twice", typ, sectionNames[typ])
		}
		p.sections[typ] = section{off: off, size: int64(size)}
		off += int64(size)
	}
	if off != p.Size {
		return nil, invalid("%d trailing bytes after the last section", p.Size-off)
	}
	if err := p.readHeader(); err != nil {
		return nil, err
	}
	return p, p.checkLayout()
}

func (p *File) readHeader() error {
	s, ok := p.sections[secHeader]
	if !ok {
		return invalid("no header section")
	}
	if s.size != 4+32+4+4 {
		return invalid("header section is %d bytes, want 44", s.size)
	}
	b := make([]byte, s.size)
	if _, err := p.f.ReadAt(b, s.off); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if n8 := binary.LittleEndian.Uint32(b); n8 != 32 {
		return invalid("field element size %d, BN254 has 32", n8)
	}
	q := new(big.Int).SetBytes(reversed(b[4:36]))
	if q.Cmp(fp.Modulus()) != 0 {
		return invalid("curve with base field %s is not BN254 (bn128)", q)
	}
	p.Power = int(binary.LittleEndian.Uint32(b[36:]))
	p.CeremonyPower = int(binary.LittleEndian.Uint32(b[40:]))
	if p.Power < 1 || p.Power > MaxPower {
		return invalid("power %d out of range 1..%d", p.Power, MaxPower)
	}
	if p.CeremonyPower < p.Power {
		return invalid("ceremony power %d below file power %d", p.CeremonyPower, p.Power)
	}
	return nil
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

// checkLayout checks that the point sections exist and have the sizes the power implies.
func (p *File) checkLayout() error {
	n := int64(1) << p.Power
	want := map[uint32]int64{
		secTauG1:      (2*n - 1) * g1Size,
		secTauG2:      n * g2Size,
		secAlphaTauG1: n * g1Size,
		secBetaTauG1:  n * g1Size,
		secBetaG2:     g2Size,
	}
	lagrange := map[uint32]int64{
		secLagTauG1:      (4*n - 1) * g1Size, // powers 0..power+1
		secLagTauG2:      (2*n - 1) * g2Size,
		secLagAlphaTauG1: (2*n - 1) * g1Size,
		secLagBetaTauG1:  (2*n - 1) * g1Size,
	}
	nLag := 0
	for id := range lagrange {
		if _, ok := p.sections[id]; ok {
			nLag++
		}
	}
	if nLag != 0 && nLag != len(lagrange) {
		return invalid("%d of the 4 Lagrange sections of a prepared file", nLag)
	}
	if nLag == len(lagrange) {
		p.Prepared = true
		for id, size := range lagrange {
			want[id] = size
		}
	}
	for id, size := range want {
		s, ok := p.sections[id]
		if !ok {
			return invalid("no %s section", sectionNames[id])
		}
		if s.size != size {
			return invalid("%s section is %d bytes, power %d needs %d", sectionNames[id], s.size, p.Power, size)
		}
	}
	if _, ok := p.sections[secContributions]; !ok {
		return invalid("no contributions section")
	}
	return nil
}

// Contribution is one entry of a ptau file's contribution list.
type Contribution struct {
	Name string `json:"name,omitempty"`
	// Beacon is the hex beacon hash of a beacon contribution (empty for a participant).
	Beacon string `json:"beacon,omitempty"`
	// BeaconIterationsExp is the log2 of the beacon's hash iterations.
	BeaconIterationsExp int `json:"beacon_iterations_exp,omitempty"`
}

// contributionFixed is the size of a contribution record before its parameters: the
// points after it (tauG1, tauG2, alphaG1, betaG1, betaG2), the public key (6 G1, 3 G2),
// the partial hash (216) and the next challenge (64), and the type.
const contributionFixed = 3*g1Size + 2*g2Size + 6*g1Size + 3*g2Size + 216 + 64 + 4

// Contributions parses the contribution list (names and beacons; the points in each
// record are not needed to use the file: the powers themselves are checked).
func (p *File) Contributions() ([]Contribution, error) {
	s := p.sections[secContributions]
	b := make([]byte, s.size)
	if _, err := p.f.ReadAt(b, s.off); err != nil {
		return nil, fmt.Errorf("read contributions: %w", err)
	}
	if len(b) < 4 {
		return nil, invalid("contributions section is %d bytes", len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	var out []Contribution
	for i := uint32(0); i < n; i++ {
		if len(b) < contributionFixed+4 {
			return nil, invalid("contribution %d is cut short", i+1)
		}
		typ := binary.LittleEndian.Uint32(b[contributionFixed-4:])
		plen := int(binary.LittleEndian.Uint32(b[contributionFixed:]))
		b = b[contributionFixed+4:]
		if plen > len(b) {
			return nil, invalid("contribution %d parameters are cut short", i+1)
		}
		c, err := parseParams(b[:plen])
		if err != nil {
			return nil, invalid("contribution %d: %v", i+1, err)
		}
		if typ == 1 && c.Beacon == "" {
			return nil, invalid("contribution %d is a beacon without a beacon hash", i+1)
		}
		out = append(out, c)
		b = b[plen:]
	}
	if len(b) != 0 {
		return nil, invalid("%d bytes after the last contribution", len(b))
	}
	return out, nil
}

func parseParams(b []byte) (Contribution, error) {
	var c Contribution
	last := byte(0)
	for len(b) > 0 {
		t := b[0]
		if t <= last {
			return c, errors.New("parameters not sorted")
		}
		last = t
		b = b[1:]
		switch t {
		case 1, 3:
			if len(b) < 1 || int(b[0]) > len(b)-1 {
				return c, errors.New("parameter cut short")
			}
			v := b[1 : 1+int(b[0])]
			if t == 1 {
				c.Name = string(v)
			} else {
				c.Beacon = fmt.Sprintf("%x", v)
			}
			b = b[1+int(b[0]):]
		case 2:
			if len(b) < 1 {
				return c, errors.New("parameter cut short")
			}
			c.BeaconIterationsExp = int(b[0])
			b = b[1:]
		default:
			return c, fmt.Errorf("unknown parameter %d", t)
		}
	}
	return c, nil
}

// qLimbs is the base field modulus in 64-bit little-endian limbs.
var qLimbs = func() (l [4]uint64) {
	for i, w := range fp.Modulus().Bits() {
		l[i] = uint64(w)
	}
	return l
}()

// feFromMont decodes a field element stored in Montgomery form, little endian (the form
// of gnark-crypto's fp.Element limbs). It reports false when the value is not below q.
func feFromMont(b []byte) (fp.Element, bool) {
	var e fp.Element
	for i := range e {
		e[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	for i := 3; i >= 0; i-- {
		if e[i] != qLimbs[i] {
			return e, e[i] < qLimbs[i]
		}
	}
	return e, false // equal to q
}

func decodeG1(b []byte, p *curve.G1Affine) error {
	var ok0, ok1 bool
	p.X, ok0 = feFromMont(b)
	p.Y, ok1 = feFromMont(b[32:])
	switch {
	case !ok0 || !ok1:
		return errors.New("coordinate not below the field modulus")
	case p.X.IsZero() && p.Y.IsZero():
		return errors.New("point at infinity")
	case !p.IsOnCurve(): // G1 of BN254 has cofactor 1: on the curve is in the subgroup
		return errors.New("not on the curve")
	}
	return nil
}

func decodeG2(b []byte, p *curve.G2Affine) error {
	var ok [4]bool
	p.X.A0, ok[0] = feFromMont(b)
	p.X.A1, ok[1] = feFromMont(b[32:])
	p.Y.A0, ok[2] = feFromMont(b[64:])
	p.Y.A1, ok[3] = feFromMont(b[96:])
	switch {
	case !ok[0] || !ok[1] || !ok[2] || !ok[3]:
		return errors.New("coordinate not below the field modulus")
	case p.X.IsZero() && p.Y.IsZero():
		return errors.New("point at infinity")
	case !p.IsOnCurve():
		return errors.New("not on the curve")
	}
	return nil // subgroup membership is checked in batch (checkG2Subgroup)
}

// chunkPoints is how many points are read and decoded at a time.
const chunkPoints = 1 << 15

// readPoints streams count points of size sz from section id, starting at point start,
// decoding chunks in parallel.
func readPoints[T any](p *File, id uint32, start, count int, sz int, decode func([]byte, *T) error) ([]T, error) {
	s, ok := p.sections[id]
	if !ok {
		return nil, invalid("no %s section", sectionNames[id])
	}
	if int64(start+count)*int64(sz) > s.size {
		return nil, invalid("%s holds %d points, %d needed", sectionNames[id], s.size/int64(sz), start+count)
	}
	out := make([]T, count)
	r := bufio.NewReaderSize(io.NewSectionReader(p.f, s.off+int64(start)*int64(sz), int64(count)*int64(sz)), 1<<20)
	buf := make([]byte, chunkPoints*sz)
	for done := 0; done < count; {
		n := min(chunkPoints, count-done)
		if _, err := io.ReadFull(r, buf[:n*sz]); err != nil {
			return nil, fmt.Errorf("read %s: %w", sectionNames[id], err)
		}
		if err := parallel(n, func(i int) error {
			if err := decode(buf[i*sz:(i+1)*sz], &out[done+i]); err != nil {
				return invalid("%s[%d]: %v", sectionNames[id], start+done+i, err)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		done += n
	}
	return out, nil
}

// ReadG1 reads count G1 points of section id from point start, each checked to be a
// canonical encoding of a point on the curve, other than infinity.
func (p *File) ReadG1(id uint32, start, count int) ([]curve.G1Affine, error) {
	return readPoints(p, id, start, count, g1Size, decodeG1)
}

// ReadG2 reads count G2 points of section id from point start, each checked like ReadG1
// and, as a batch, to lie in the prime-order subgroup.
func (p *File) ReadG2(id uint32, start, count int) ([]curve.G2Affine, error) {
	pts, err := readPoints(p, id, start, count, g2Size, decodeG2)
	if err != nil {
		return nil, err
	}
	if !curve.IsInSubGroupBatchG2(pts) {
		// Find the culprit for the error message (rare path).
		for i := range pts {
			if !pts[i].IsInSubGroup() {
				return nil, invalid("%s[%d]: not in the prime-order subgroup", sectionNames[id], start+i)
			}
		}
		return nil, invalid("%s: a point is not in the prime-order subgroup", sectionNames[id])
	}
	return pts, nil
}

// parallel runs f(0..n-1) on all CPUs and returns the first error.
func parallel(n int, f func(i int) error) error {
	workers := min(runtime.NumCPU(), max(1, n/256))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	per := (n + workers - 1) / workers
	for w := range workers {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w * per; i < min(n, (w+1)*per); i++ {
				if err := f(i); err != nil {
					errs[w] = err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
