package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/prover"
)

// warnDevSetup prints the warning every command that runs the service's setup gives:
// its keys come from the single-party development setup.
func warnDevSetup(w io.Writer) {
	fmt.Fprintln(w, "WARNING: the service's setup is the development setup:", prover.DevSetupWarning)
}

// removeDemoDir removes a data directory the demo created, so that it leaves nothing
// behind (pass --dir to keep one).
func removeDemoDir(errw io.Writer, dir string) {
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(errw, "demo: removing %s: %v\n", dir, err)
	}
}

// serviceDemo runs the proving service in this process on a loopback port, with the
// embedded SQLite store in a fresh data directory, and drives a whole flow over HTTP
// the way a dApp would: API key, model upload, setup, proof job, proof, verification.
func serviceDemo(ctx context.Context, out, errw io.Writer, example, system, dataDir string) error {
	name, onnx, inputJSON, err := demoExample(example)
	if err != nil {
		return err
	}
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "zkml-demo-"); err != nil {
			return err
		}
		// Runs after the service has stopped (defers run last-in first-out).
		defer removeDemoDir(errw, dataDir)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	admin := api.NewKey()
	cfg, err := service.FromEnv()
	if err != nil {
		return err
	}
	cfg.DatabaseURL, cfg.DataDir, cfg.AdminKey = "", dataDir, admin
	cfg.Engine = &engine.Engine{ChildCommand: []string{self, "internal-job"}}
	cfg.Logger = slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- service.ServeListener(sctx, cfg, ln) }()
	defer func() {
		stop()
		<-served
	}()
	c := &demoClient{base: "http://" + ln.Addr().String(), key: admin}
	fmt.Fprintf(out, "service    %s (embedded SQLite store in %s)\n", c.base, dataDir)
	if err := c.waitReady(ctx); err != nil {
		return err
	}

	var key struct{ Key string }
	if err := c.do(ctx, "POST", "/v1/keys", map[string]any{"name": "demo"}, &key); err != nil {
		return err
	}
	c.key = key.Key
	fmt.Fprintln(out, "api key    created (admin key -> tenant key)")

	var created struct {
		Model struct{ ID string }
		Job   struct{ ID string }
	}
	body := map[string]any{"name": name, "onnx": base64.StdEncoding.EncodeToString(onnx)}
	if err := c.do(ctx, "POST", "/v1/models", body, &created); err != nil {
		return err
	}
	if _, err := c.waitJob(ctx, out, created.Job.ID, "compile"); err != nil {
		return err
	}
	var m struct {
		ID            string
		EngineModelID string `json:"engine_model_id"`
		Constraints   map[string]int
	}
	if err := c.do(ctx, "GET", "/v1/models/"+created.Model.ID, nil, &m); err != nil {
		return err
	}
	fmt.Fprintf(out, "model      %s (model ID %s), constraints: groth16 %d, plonk %d\n", m.ID, m.EngineModelID, m.Constraints["groth16"], m.Constraints["plonk"])

	var job struct{ ID string }
	warnDevSetup(errw)
	if err := c.do(ctx, "POST", "/v1/models/"+m.ID+"/setup", map[string]any{"system": system}, &job); err != nil {
		return err
	}
	if _, err := c.waitJob(ctx, out, job.ID, "setup "+system); err != nil {
		return err
	}
	var input any
	if err := json.Unmarshal(inputJSON, &input); err != nil {
		return err
	}
	if err := c.do(ctx, "POST", "/v1/models/"+m.ID+"/proofs", map[string]any{"system": system, "input": input}, &job); err != nil {
		return err
	}
	proofID, err := c.waitJob(ctx, out, job.ID, "prove "+system)
	if err != nil {
		return err
	}
	var proof struct {
		ID           string
		Proof        string
		PublicInputs []string `json:"public_inputs"`
		Outputs      [][]float64
		Calldata     string
		ProveSeconds float64 `json:"prove_seconds"`
	}
	if err := c.do(ctx, "GET", "/v1/proofs/"+proofID, nil, &proof); err != nil {
		return err
	}
	g, err := model.Load(onnx)
	if err != nil {
		return err
	}
	in, err := model.ParseInput(inputJSON, g)
	if err != nil {
		return err
	}
	want, err := g.Eval(in)
	if err != nil {
		return err
	}
	maxErr := 0.0
	for i, o := range proof.Outputs {
		for j, v := range o {
			maxErr = math.Max(maxErr, math.Abs(v-want[i].Data[j]))
		}
	}
	fmt.Fprintf(out, "proof      %s: %d public inputs, %d bytes of calldata, proved in %.2fs\n", proof.ID, len(proof.PublicInputs), (len(proof.Calldata)-2)/2, proof.ProveSeconds)
	fmt.Fprintf(out, "outputs    %v\n           max abs error vs float reference %.2e\n", proof.Outputs, maxErr)

	var v struct{ Valid bool }
	if err := c.do(ctx, "POST", "/v1/verify", map[string]any{"proof_id": proof.ID}, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "verify     proof %s: valid=%v\n", proof.ID, v.Valid)
	if !v.Valid {
		return errors.New("the service rejected its own proof")
	}
	forged := append([]string(nil), proof.PublicInputs...)
	forged[len(forged)-1] = "1"
	if err := c.do(ctx, "POST", "/v1/verify", map[string]any{"model_id": m.ID, "system": system, "proof": proof.Proof, "public_inputs": forged}, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "verify     the same proof with a forged output: valid=%v\n", v.Valid)
	if v.Valid {
		return errors.New("a forged output verified")
	}
	sol, err := c.raw(ctx, "GET", "/v1/models/"+m.ID+"/verifier.sol?system="+system)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "solidity   verifier.sol: %d bytes (deploy ZKMLVerifier with the model ID)\n", len(sol))
	fmt.Fprintln(out, "done: the service compiled, set up, proved and verified the model over HTTP")
	return nil
}

type demoClient struct {
	base, key string
}

func (c *demoClient) raw(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, err
}

func (c *demoClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

func (c *demoClient) waitReady(ctx context.Context) error {
	for i := 0; i < 100; i++ {
		if _, err := c.raw(ctx, "GET", "/readyz"); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("service did not become ready")
}

// waitJob polls a job until it ends and returns its proof ID (for proof jobs).
func (c *demoClient) waitJob(ctx context.Context, out io.Writer, id, what string) (string, error) {
	start := time.Now()
	for {
		var j struct {
			Status  string
			Error   *struct{ Code, Message string }
			ProofID string `json:"proof_id"`
		}
		if err := c.do(ctx, "GET", "/v1/jobs/"+id, nil, &j); err != nil {
			return "", err
		}
		switch j.Status {
		case "succeeded":
			fmt.Fprintf(out, "job        %-16s succeeded in %.2fs\n", what, time.Since(start).Seconds())
			return j.ProofID, nil
		case "failed", "cancelled":
			msg := ""
			if j.Error != nil {
				msg = j.Error.Code + ": " + j.Error.Message
			}
			return "", fmt.Errorf("%s job %s: %s", what, j.Status, msg)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
