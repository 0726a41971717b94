package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// TestModelIDSameForCLIAndService checks that the CLI (flags) and the service (a
// settings JSON object) give the same model ID to the same model and settings, whether
// the defaults are left out or spelled out: the model ID is what a verifier contract
// is deployed with.
func TestModelIDSameForCLIAndService(t *testing.T) {
	onnx, err := os.ReadFile(filepath.Join("..", "..", "examples", "mnist_cnn", "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(t *testing.T, cfg quant.Config) string {
		t.Helper()
		_, p, err := prover.Build(onnx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		id, err := prover.ModelID(p)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	cli := func(t *testing.T, args ...string) string {
		t.Helper()
		var cf configFlags
		cmd := &cobra.Command{}
		cf.register(cmd)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := cf.config()
		if err != nil {
			t.Fatal(err)
		}
		return id(t, cfg)
	}
	service := func(t *testing.T, settings string) string {
		t.Helper()
		cfg, err := engine.ParseSettings([]byte(settings))
		if err != nil {
			t.Fatal(err)
		}
		return id(t, cfg)
	}
	def := cli(t)
	bits := cli(t, "--range-check", "bits")
	if def == bits {
		t.Fatal("range_check lookup and bits give the same model ID")
	}
	for _, c := range []struct {
		name string
		got  string
		want string
	}{
		{"service defaults", service(t, "{}"), def},
		{"service empty body", service(t, ""), def},
		{"service explicit lookup", service(t, `{"range_check":"lookup"}`), def},
		{"service empty range_check", service(t, `{"range_check":""}`), def},
		{"service explicit defaults", service(t, `{"scale":8,"param_scale":8,"bits":24,"lookup_bits":12,"range_check":"lookup","input_visibility":"private","output_visibility":"public","param_visibility":"fixed"}`), def},
		{"cli explicit lookup", cli(t, "--range-check", "lookup"), def},
		{"library defaults", id(t, quant.DefaultConfig()), def},
		{"service bits", service(t, `{"range_check":"bits"}`), bits},
	} {
		if c.got != c.want {
			t.Errorf("%s: model ID %s, want %s", c.name, c.got, c.want)
		}
	}
}
