package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// MaxInputBytes bounds an input.json document read by ReadInput.
const MaxInputBytes = 64 << 20

// maxInputRank bounds each entry of the optional input_shapes field.
const maxInputRank = 64

// ReadInput reads an input.json document (the layout EZKL users already have) from r
// and returns one tensor per runtime input of g, shaped as g declares. It reads at most
// MaxInputBytes. Errors wrap ErrBadInput.
func ReadInput(r io.Reader, g *Graph) ([]*Tensor, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading input.json: %v", ErrBadInput, err)
	}
	return ParseInput(data, g)
}

// ParseInput decodes an input.json document:
//
//	{"input_data": [[x0, x1, ...], ...], "input_shapes": [[1, 3, 8, 8], ...]}
//
// input_data holds one flat, row-major list of JSON numbers per runtime input of g, in the
// order of g.Inputs. input_shapes is optional; when present each shape must have the element
// count g declares. Other fields (such as output_data) are ignored. Numbers written as strings,
// null, nested lists and values outside the float64 range (NaN and Infinity cannot be written
// in JSON) are rejected. Errors wrap ErrBadInput and name the offending input.
func ParseInput(data []byte, g *Graph) ([]*Tensor, error) {
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("%w: input.json is over the %d byte limit", ErrBadInput, MaxInputBytes)
	}
	p := &inputParser{dec: json.NewDecoder(bytes.NewReader(data)), g: g}
	p.dec.UseNumber()
	out, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("%w: input.json: %v", ErrBadInput, err)
	}
	return out, nil
}

type inputParser struct {
	dec *json.Decoder
	g   *Graph
}

// token returns the next JSON token, turning syntax errors into errors with an offset.
func (p *inputParser) token() (json.Token, error) {
	t, err := p.dec.Token()
	if err == io.EOF {
		return nil, errors.New("unexpected end of document")
	}
	if err != nil {
		return nil, fmt.Errorf("invalid JSON near byte %d: %v", p.dec.InputOffset(), err)
	}
	return t, nil
}

func (p *inputParser) expectDelim(want json.Delim, what string) error {
	t, err := p.token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("%s: want %q, found %s", what, want, describeToken(t))
	}
	return nil
}

func (p *inputParser) parse() ([]*Tensor, error) {
	if err := p.expectDelim('{', "document"); err != nil {
		return nil, err
	}
	var (
		tensors []*Tensor
		shapes  [][]int
		seen    = map[string]bool{}
	)
	for p.dec.More() {
		t, err := p.token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		if seen[key] && (key == "input_data" || key == "input_shapes") {
			return nil, fmt.Errorf("duplicate field %q", key)
		}
		seen[key] = true
		switch key {
		case "input_data":
			if tensors, err = p.parseData(); err != nil {
				return nil, err
			}
		case "input_shapes":
			if shapes, err = p.parseShapes(); err != nil {
				return nil, err
			}
		default:
			if err := p.skip(); err != nil {
				return nil, err
			}
		}
	}
	if err := p.expectDelim('}', "document"); err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the document near byte %d", p.dec.InputOffset())
	}
	if !seen["input_data"] {
		return nil, errors.New(`missing field "input_data"`)
	}
	if shapes != nil {
		if len(shapes) != len(p.g.Inputs) {
			return nil, fmt.Errorf("input_shapes has %d shapes, the model has %d inputs", len(shapes), len(p.g.Inputs))
		}
		for i, in := range p.g.Inputs {
			if n, err := shapeNumel(shapes[i]); err != nil || n != numel(in.Shape) {
				return nil, fmt.Errorf("input_shapes[%d] is %v, but input %q has shape %v (%d values)",
					i, shapes[i], in.Name, in.Shape, numel(in.Shape))
			}
		}
	}
	return tensors, nil
}

// parseData reads input_data, checking the count of rows and of values in each row
// against g before storing anything, so an oversized document fails early.
func (p *inputParser) parseData() ([]*Tensor, error) {
	if err := p.expectDelim('[', "input_data"); err != nil {
		return nil, err
	}
	var out []*Tensor
	for p.dec.More() {
		k := len(out)
		if k >= len(p.g.Inputs) {
			return nil, fmt.Errorf("input_data has more than %d lists; the model has %d inputs: %s",
				len(p.g.Inputs), len(p.g.Inputs), p.inputNames())
		}
		in := p.g.Inputs[k]
		want := numel(in.Shape)
		what := fmt.Sprintf("input_data[%d] (input %q, shape %v, %d values)", k, in.Name, in.Shape, want)
		if err := p.expectDelim('[', what); err != nil {
			return nil, err
		}
		t := NewTensor(in.Shape...)
		n := 0
		for p.dec.More() {
			tok, err := p.token()
			if err != nil {
				return nil, err
			}
			num, ok := tok.(json.Number)
			if !ok {
				return nil, fmt.Errorf("%s: element %d is %s, want a JSON number (NaN and Infinity are not allowed)",
					what, n, describeToken(tok))
			}
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, fmt.Errorf("%s: element %d (%s) is outside the float64 range", what, n, num)
			}
			if n >= want {
				return nil, fmt.Errorf("%s: has more than %d values", what, want)
			}
			t.Data[n] = v
			n++
		}
		if err := p.expectDelim(']', what); err != nil {
			return nil, err
		}
		if n != want {
			return nil, fmt.Errorf("%s: has %d values", what, n)
		}
		out = append(out, t)
	}
	if err := p.expectDelim(']', "input_data"); err != nil {
		return nil, err
	}
	if len(out) != len(p.g.Inputs) {
		return nil, fmt.Errorf("input_data has %d lists; the model has %d inputs: %s",
			len(out), len(p.g.Inputs), p.inputNames())
	}
	return out, nil
}

func (p *inputParser) inputNames() string {
	names := make([]string, len(p.g.Inputs))
	for i, in := range p.g.Inputs {
		names[i] = fmt.Sprintf("%q %v", in.Name, in.Shape)
	}
	return strings.Join(names, ", ")
}

// parseShapes reads input_shapes: a list of short lists of non-negative integers.
func (p *inputParser) parseShapes() ([][]int, error) {
	if err := p.expectDelim('[', "input_shapes"); err != nil {
		return nil, err
	}
	var shapes [][]int
	for p.dec.More() {
		if len(shapes) > len(p.g.Inputs) {
			return nil, fmt.Errorf("input_shapes has more than %d shapes", len(p.g.Inputs))
		}
		what := fmt.Sprintf("input_shapes[%d]", len(shapes))
		if err := p.expectDelim('[', what); err != nil {
			return nil, err
		}
		shape := []int{}
		for p.dec.More() {
			tok, err := p.token()
			if err != nil {
				return nil, err
			}
			num, ok := tok.(json.Number)
			d, err := strconv.ParseInt(string(num), 10, 64)
			if !ok || err != nil || d < 0 || d > MaxTensorElements {
				return nil, fmt.Errorf("%s: dimension %s is not an integer in [0, %d]", what, describeToken(tok), MaxTensorElements)
			}
			if len(shape) >= maxInputRank {
				return nil, fmt.Errorf("%s: more than %d dimensions", what, maxInputRank)
			}
			shape = append(shape, int(d))
		}
		if err := p.expectDelim(']', what); err != nil {
			return nil, err
		}
		shapes = append(shapes, shape)
	}
	if err := p.expectDelim(']', "input_shapes"); err != nil {
		return nil, err
	}
	return shapes, nil
}

// skip consumes one JSON value of a field zkml does not read.
func (p *inputParser) skip() error {
	depth := 0
	for {
		t, err := p.token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '[' || d == '{' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// shapeNumel multiplies dims, failing on overflow past MaxTensorElements.
func shapeNumel(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		n *= d
		if n > MaxTensorElements {
			return 0, fmt.Errorf("shape %v is over %d elements", shape, MaxTensorElements)
		}
	}
	return n, nil
}

func describeToken(t json.Token) string {
	switch v := t.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 32 {
			v = v[:32] + "..."
		}
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case json.Delim:
		switch v {
		case '[':
			return "a list"
		case '{':
			return "an object"
		}
		return fmt.Sprintf("%q", v)
	case json.Number:
		return string(v)
	}
	return fmt.Sprint(t)
}
