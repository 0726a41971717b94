package service_test

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/zkml/zkml/api/apitest"
	"github.com/zkml/zkml/internal/service"
)

// TestServeAndWork runs the real entry points: Serve as the API only and Work as a
// separate worker with its probes on its own address; both stop cleanly on cancel.
func TestServeAndWork(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := fastConfig(b.cfg(t), &apitest.Engine{})
		apiOnly := false
		cfg.InProcessWorkers = &apiOnly
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- service.ServeListener(ctx, cfg, ln) }()

		wcfg := cfg
		wcfg.Addr = "127.0.0.1:0"
		wln, err := net.Listen("tcp", wcfg.Addr)
		if err != nil {
			t.Fatal(err)
		}
		wcfg.Addr = wln.Addr().String()
		wln.Close()
		worked := make(chan error, 1)
		go func() { worked <- service.Work(ctx, wcfg) }()

		e := &env{t: t, srv: &httptest.Server{URL: "http://" + ln.Addr().String()}, cfg: cfg}
		w := &env{t: t, srv: &httptest.Server{URL: "http://" + wcfg.Addr}, cfg: wcfg}
		waitHTTP(t, e)
		waitHTTP(t, w)
		w.want(w.do("GET", "/metrics", "", nil), 200)
		w.want(w.do("GET", "/v1/models", "", nil), 404) // workers serve probes only

		k := e.newKey("alice")
		m := e.readyModel(k.Key) // runs on the worker process
		e.want(e.prove(k.Key, m, goodInput), 202)

		cancel()
		for name, ch := range map[string]chan error{"serve": served, "work": worked} {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("%s returned %v", name, err)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("%s did not stop", name)
			}
		}
	})
}

func waitHTTP(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", e.srv.URL[len("http://"):])
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened", e.srv.URL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.want(e.do("GET", "/readyz", "", nil), 200)
}
