package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/client"
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
// behind (pass --dir to keep one); unhook drops the removal onInterrupt registered
// for an interrupt.
func removeDemoDir(errw io.Writer, dir string, unhook func()) {
	unhook()
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
		defer removeDemoDir(errw, dataDir, onInterrupt(func() { os.RemoveAll(dataDir) }))
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
	admc := client.New("http://"+ln.Addr().String(), admin)
	fmt.Fprintf(out, "service    %s (embedded SQLite store in %s)\n", admc.BaseURL, dataDir)
	if err := admc.WaitReady(ctx); err != nil {
		return err
	}
	key, err := admc.CreateKey(ctx, "demo")
	if err != nil {
		return err
	}
	c := admc.WithKey(key.Key)
	fmt.Fprintln(out, "api key    created (admin key -> tenant key)")

	created, err := c.UploadModel(ctx, client.ModelUpload{Name: name, ONNX: onnx})
	if err != nil {
		return err
	}
	if _, err := waitDemoJob(ctx, out, c, created.Job.ID, "compile"); err != nil {
		return err
	}
	m, err := c.GetModel(ctx, created.Model.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "model      %s (model ID %s), constraints: groth16 %d, plonk %d\n", m.ID, m.EngineModelID, m.Constraints["groth16"], m.Constraints["plonk"])

	warnDevSetup(errw)
	job, err := c.Setup(ctx, m.ID, client.SetupRequest{System: system})
	if err != nil {
		return err
	}
	if _, err := waitDemoJob(ctx, out, c, job.ID, "setup "+system); err != nil {
		return err
	}
	if job, err = c.Prove(ctx, m.ID, client.ProofRequest{System: system, Input: inputJSON}); err != nil {
		return err
	}
	if job, err = waitDemoJob(ctx, out, c, job.ID, "prove "+system); err != nil {
		return err
	}
	proof, err := c.GetProof(ctx, job.ProofID)
	if err != nil {
		return err
	}
	calldata, err := client.Calldata(proof)
	if err != nil {
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
	fmt.Fprintf(out, "proof      %s: %d public inputs, %d bytes of calldata, proved in %.2fs\n", proof.ID, len(proof.PublicInputs), len(calldata), proof.ProveSeconds)
	fmt.Fprintf(out, "outputs    %v\n           max abs error vs float reference %.2e\n", proof.Outputs, maxErr)

	v, err := c.Verify(ctx, client.VerifyRequest{ProofID: proof.ID})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "verify     proof %s: valid=%v\n", proof.ID, v.Valid)
	if !v.Valid {
		return fmt.Errorf("the service rejected its own proof: %s", v.Reason)
	}
	forged := append([]string(nil), proof.PublicInputs...)
	forged[len(forged)-1] = "1"
	if v, err = c.Verify(ctx, client.VerifyRequest{ModelID: m.ID, System: system, Proof: proof.Proof, PublicInputs: forged}); err != nil {
		return err
	}
	fmt.Fprintf(out, "verify     the same proof with a forged output: valid=%v\n", v.Valid)
	if v.Valid {
		return errors.New("a forged output verified")
	}
	sol, err := c.VerifierSolidity(ctx, m.ID, system)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "solidity   verifier.sol: %d bytes (deploy ZKMLVerifier with the model ID)\n", len(sol))
	fmt.Fprintln(out, "done: the service compiled, set up, proved and verified the model over HTTP")
	return nil
}

// waitDemoJob waits for a job and prints how long it took.
func waitDemoJob(ctx context.Context, out io.Writer, c *client.Client, id, what string) (client.Job, error) {
	start := time.Now()
	j, err := c.WaitJob(ctx, id, &client.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond, Factor: 1.5})
	if err != nil {
		return j, fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintf(out, "job        %-16s succeeded in %.2fs\n", what, time.Since(start).Seconds())
	return j, nil
}
