package model

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func twoInputGraph() *Graph {
	return &Graph{Inputs: []Value{{Name: "x", Shape: []int{1, 3}}, {Name: "y", Shape: []int{2}}}}
}

func TestParseInput(t *testing.T) {
	g := twoInputGraph()
	tests := []struct {
		name    string
		doc     string
		want    [][]float64
		wantErr string // substring of the error; "" means success
	}{
		{"ok", `{"input_data": [[1, 2.5, -3e-2], [0, 7]]}`, [][]float64{{1, 2.5, -0.03}, {0, 7}}, ""},
		{"extra fields ignored", `{"output_data": [[1,[2]], {"a": null}], "input_data": [[1,2,3],[4,5]], "x": "s"}`,
			[][]float64{{1, 2, 3}, {4, 5}}, ""},
		{"input_shapes checked", `{"input_shapes": [[3], [2, 1]], "input_data": [[1,2,3],[4,5]]}`,
			[][]float64{{1, 2, 3}, {4, 5}}, ""},
		{"input_shapes wrong count", `{"input_shapes": [[4], [2]], "input_data": [[1,2,3],[4,5]]}`,
			nil, `input_shapes[0] is [4], but input "x" has shape [1 3] (3 values)`},
		{"input_shapes too many", `{"input_shapes": [[3], [2], [1]], "input_data": [[1,2,3],[4,5]]}`,
			nil, "input_shapes has 3 shapes"},
		{"input_shapes not ints", `{"input_shapes": [[1.5], [2]], "input_data": [[1,2,3],[4,5]]}`,
			nil, "dimension 1.5 is not an integer"},
		{"empty", ``, nil, "unexpected end"},
		{"not an object", `[[1,2,3],[4,5]]`, nil, `document: want "{"`},
		{"missing input_data", `{"input": [[1,2,3],[4,5]]}`, nil, `missing field "input_data"`},
		{"too few inputs", `{"input_data": [[1,2,3]]}`, nil, `input_data has 1 lists; the model has 2 inputs: "x" [1 3], "y" [2]`},
		{"too many inputs", `{"input_data": [[1,2,3],[4,5],[6]]}`, nil, "input_data has more than 2 lists"},
		{"too few values", `{"input_data": [[1,2],[4,5]]}`, nil, `input_data[0] (input "x", shape [1 3], 3 values): has 2 values`},
		{"too many values", `{"input_data": [[1,2,3],[4,5,6]]}`, nil, `input_data[1] (input "y", shape [2], 2 values): has more than 2 values`},
		{"string number", `{"input_data": [[1,"2",3],[4,5]]}`, nil, `element 1 is the string "2", want a JSON number`},
		{"NaN string", `{"input_data": [[1,2,3],["NaN",5]]}`, nil, `element 0 is the string "NaN"`},
		{"bare NaN", `{"input_data": [[1,2,NaN],[4,5]]}`, nil, "invalid JSON"},
		{"Infinity", `{"input_data": [[1,2,3],[4,Infinity]]}`, nil, "invalid JSON"},
		{"overflow", `{"input_data": [[1,2,1e400],[4,5]]}`, nil, "element 2 (1e400) is outside the float64 range"},
		{"null", `{"input_data": [[1,null,3],[4,5]]}`, nil, "element 1 is null"},
		{"bool", `{"input_data": [[1,true,3],[4,5]]}`, nil, "element 1 is the boolean true"},
		{"nested", `{"input_data": [[[1,2,3]],[4,5]]}`, nil, "element 0 is a list"},
		{"flat not nested", `{"input_data": [1,2,3]}`, nil, `input_data[0] (input "x", shape [1 3], 3 values): want "["`},
		{"duplicate", `{"input_data": [[1,2,3],[4,5]], "input_data": [[1,2,3],[4,5]]}`, nil, `duplicate field "input_data"`},
		{"trailing", `{"input_data": [[1,2,3],[4,5]]} {}`, nil, "unexpected data after the document"},
		{"truncated", `{"input_data": [[1,2,3],[4,5]`, nil, "unexpected end"},
		{"syntax", `{"input_data": [[1,2,3],[4,5]],}`, nil, "invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseInput([]byte(tc.doc), g)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseInput succeeded, want error containing %q", tc.wantErr)
				}
				if !errors.Is(err, ErrBadInput) {
					t.Errorf("error %v does not wrap ErrBadInput", err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d tensors, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				if !sameShape(got[i].Shape, g.Inputs[i].Shape) {
					t.Errorf("tensor %d has shape %v, want %v", i, got[i].Shape, g.Inputs[i].Shape)
				}
				for j := range w {
					if got[i].Data[j] != w[j] {
						t.Errorf("tensor %d element %d = %v, want %v", i, j, got[i].Data[j], w[j])
					}
				}
			}
		})
	}
}

func TestReadInputLimits(t *testing.T) {
	g := &Graph{Inputs: []Value{{Name: "x", Shape: []int{2}}}}
	if _, err := ReadInput(strings.NewReader(`{"input_data": [[1, 2]]}`), g); err != nil {
		t.Fatal(err)
	}
	big := `{"input_data": [[1, 2]], "pad": "` + strings.Repeat(" ", MaxInputBytes) + `"}`
	if _, err := ReadInput(strings.NewReader(big), g); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "byte limit") {
		t.Errorf("oversized document: got %v, want a byte-limit error", err)
	}
	if _, err := ReadInput(iotest.ErrReader(errors.New("disk on fire")), g); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: got %v", err)
	}
}
