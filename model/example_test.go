package model_test

import (
	"fmt"
	"log"
	"os"

	"github.com/zkml/zkml/model"
)

// Load a model, read its input.json and run the float reference.
func Example() {
	data, err := os.ReadFile("testdata/relu/network.onnx")
	if err != nil {
		log.Fatal(err)
	}
	g, err := model.Load(data)
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Open("testdata/relu/input.json")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	inputs, err := model.ReadInput(f, g)
	if err != nil {
		log.Fatal(err)
	}
	out, err := g.Eval(inputs)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(g.Inputs[0].Shape, "->", out[0].Shape)
	fmt.Printf("%.4f\n", out[0].Data)
	// Output:
	// [1 3] -> [1 3]
	// [0.0000 2.4938 0.5796]
}
