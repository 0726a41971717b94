// Package clienttest runs the real zkml service in-process for tests of code that
// talks to it through package client: the embedded SQLite store in a temporary
// directory, the real proving engine (in-process), in-process workers, behind an
// httptest server.
package clienttest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/client"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
)

// AdminKey is the admin key of the services Start runs.
const AdminKey = "admin-key-for-clienttest"

// Start runs the service until the end of the test and returns a client of it that
// authenticates with AdminKey (see Client.WithKey for tenant keys). Jobs are polled
// every 20ms, and webhooks may go to loopback receivers.
func Start(t testing.TB) *client.Client {
	t.Helper()
	ctx := context.Background()
	cfg := service.Config{
		DataDir: t.TempDir(), AdminKey: AdminKey, Engine: &engine.Engine{},
		PollInterval: 20 * time.Millisecond, RetryBase: 50 * time.Millisecond, Heartbeat: 100 * time.Millisecond,
		SweepEvery: 500 * time.Millisecond, Workers: 1, WebhookAllowPrivate: true, ShutdownGrace: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	a, err := service.Open(ctx, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	c := client.New(srv.URL, AdminKey)
	c.HTTP = srv.Client()
	return c
}

// logWriter sends the service's log to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
