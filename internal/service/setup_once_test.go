package service_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/api/apitest"
	"github.com/zkml/zkml/internal/store"
)

// TestSetupOnce is issue 13's double-setup regression test: two concurrent setup
// requests for one model and system get the same job and keys are made once; a setup
// request after that is refused with 409, and a setup job that reaches a worker when
// the keys exist (it raced the first one's end) succeeds without making new keys.
func TestSetupOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		eng := &apitest.Engine{Delay: 300 * time.Millisecond}
		e := newEnv(t, fastConfig(b.cfg(t), eng))
		k := e.newKey("dapp")
		m, cj := e.upload(k.Key, []byte("onnx-tiny-model"), "")
		if got := e.wait(k.Key, cj, 20*time.Second); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got)
		}
		var wg sync.WaitGroup
		views := make([]api.JobView, 2)
		codes := make([]int, 2)
		for i := range views {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do("POST", "/v1/models/"+m+"/setup", k.Key, strings.NewReader(`{"system":"groth16"}`))
				codes[i] = r.status
				r.json(t, &views[i])
			}()
		}
		wg.Wait()
		if views[0].ID == "" || views[0].ID != views[1].ID {
			t.Fatalf("concurrent setups got jobs %q and %q (status %v)", views[0].ID, views[1].ID, codes)
		}
		if got := e.wait(k.Key, views[0].ID, 20*time.Second); got.Status != "succeeded" {
			t.Fatalf("setup: %+v", got)
		}
		if n := eng.Setups.Load(); n != 1 {
			t.Fatalf("keys made %d times", n)
		}
		r := e.want(e.do("POST", "/v1/models/"+m+"/setup", k.Key, strings.NewReader(`{"system":"groth16"}`)), 409)
		if code := r.code(t); code != "already_set_up" {
			t.Fatalf("setup after setup: %s", r.body)
		}
		// A setup job queued behind the API's check (the race the 409 cannot see).
		ctx := context.Background()
		late, _, err := e.app.Store.CreateJob(ctx, &store.Job{ID: store.NewID("job"), Owner: k.ID, ModelID: m,
			Kind: store.KindSetup, System: "groth16"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.app.Processor.Enqueue(ctx, late); err != nil {
			t.Fatal(err)
		}
		if got := e.wait(k.Key, late.ID, 20*time.Second); got.Status != "succeeded" {
			t.Fatalf("late setup: %+v", got)
		}
		if n := eng.Setups.Load(); n != 1 {
			t.Fatalf("a late setup made keys again (%d setups)", n)
		}
	})
}
