package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/internal/qdq"
	"github.com/zkml/zkml/model"
)

func init() {
	extraCommands = append(extraCommands, quantizeCmd)
}

func quantizeCmd() *cobra.Command {
	var data, out string
	var perChannel bool
	cmd := &cobra.Command{
		Use:   "quantize MODEL.onnx --data samples.json",
		Short: "Write an int8 QDQ version of a float model, calibrated on sample inputs",
		Long: `quantize performs static int8 quantization in onnxruntime's QDQ format (activations
uint8 asymmetric with min/max calibration on the samples, weights int8 symmetric, biases
int32 at input scale x weight scale) and writes the quantized ONNX model. zkml compiles
such models, and those from standard tools, as the integer arithmetic they define:
each Conv/Gemm/MatMul becomes an exact int32 accumulation and a requantization
rounded half to even, as QLinearConv; nothing is re-quantized from float.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			g, err := model.Load(b)
			if err != nil {
				return err
			}
			samples, err := readSamples(data, g)
			if err != nil {
				return err
			}
			q, err := qdq.Quantize(b, samples, qdq.Options{PerChannel: perChannel})
			if err != nil {
				return err
			}
			if out == "" {
				out = strings.TrimSuffix(args[0], ".onnx") + ".int8.onnx"
			}
			if err := os.WriteFile(out, q, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (int8 QDQ, %d calibration samples, per-channel weights: %v)\n", out, len(samples), perChannel)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "calibration samples: an input.json, or a JSON array of them (required)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "output model (default MODEL.int8.onnx)")
	cmd.Flags().BoolVar(&perChannel, "per-channel", false, "one weight scale per output channel")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}
