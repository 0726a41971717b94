package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/internal/calibrate"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

func init() {
	extraCommands = append(extraCommands, calibrateCmd)
}

// readSamples reads calibration data: one input.json object, or a JSON array of them.
func readSamples(path string, g *model.Graph) ([][]*model.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &raws); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		raws = []json.RawMessage{b}
	}
	var samples [][]*model.Tensor
	for i, r := range raws {
		in, err := model.ParseInput(r, g)
		if err != nil {
			return nil, fmt.Errorf("%s: sample %d: %w", path, i, err)
		}
		samples = append(samples, in)
	}
	return samples, nil
}

func calibrateCmd() *cobra.Command {
	var data, scales, write string
	var margin float64
	cmd := &cobra.Command{
		Use:   "calibrate MODEL.onnx --data samples.json",
		Short: "Choose fixed-point settings from sample inputs and report the accuracy/constraint trade-off",
		Long: `calibrate runs the model's integer reference on sample inputs (an input.json, or a JSON
array of them) for each candidate scale, picks the activation width (bits) that keeps
every range-checked value in range with a safety margin, and prints, per candidate:
scale, bits, Groth16 constraints, max abs error against the float reference and argmax
agreement. The recommended candidate is the cheapest with the best argmax agreement
and an error within 2x of the smallest; --write saves it as a settings file for
'zkml compile --settings'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			onnx, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			g, err := model.Load(onnx)
			if err != nil {
				return err
			}
			samples, err := readSamples(data, g)
			if err != nil {
				return err
			}
			var ss []int
			for _, s := range strings.Split(scales, ",") {
				v, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil {
					return fmt.Errorf("--scales: %w", err)
				}
				ss = append(ss, v)
			}
			cands, best, err := calibrate.Run(g, samples, quant.DefaultConfig(), calibrate.Options{Scales: ss, Margin: margin})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "\tscale\tbits\tlookup bits\tconstraints\tmax abs error\targmax agreement\t\n")
			for i, c := range cands {
				mark := ""
				if i == best {
					mark = "*"
				}
				if c.Err != "" {
					fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t%s\n", mark, c.Config.Scale, c.Err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.3e\t%.0f%%\t\n", mark, c.Config.Scale, c.Config.Bits, c.Config.LookupBits, c.Constraints, c.MaxAbsErr, 100*c.Argmax)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if best < 0 {
				return fmt.Errorf("no candidate scale works on these samples")
			}
			fmt.Fprintf(out, "recommended (*): scale %d, bits %d over %d samples\n", cands[best].Config.Scale, cands[best].Config.Bits, len(samples))
			if write != "" {
				b, err := json.MarshalIndent(cands[best].Config, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(write, append(b, '\n'), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote %s (use: zkml compile %s --settings %s)\n", write, args[0], write)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "sample inputs: input.json or a JSON array of input objects")
	cmd.Flags().StringVar(&scales, "scales", "4,6,8,10,12", "candidate scales (fractional bits)")
	cmd.Flags().Float64Var(&margin, "margin", 2, "safety factor on the largest value seen when choosing bits")
	cmd.Flags().StringVar(&write, "write", "", "write the recommended settings to this file")
	_ = cmd.MarkFlagRequired("data")
	return cmd
}
