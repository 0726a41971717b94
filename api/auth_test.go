package api_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/store"
)

func TestKeys(t *testing.T) {
	a, b := api.NewKey(), api.NewKey()
	if a == b || !strings.HasPrefix(a, "zk_") || len(a) != 3+43 {
		t.Fatalf("NewKey = %q, %q", a, b)
	}
	if h := api.HashKey(a); len(h) != 64 || h == api.HashKey(b) || strings.Contains(h, a) {
		t.Fatalf("HashKey = %q", h)
	}
}

func TestWebhookSignature(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"type":"job.succeeded"}`)
	sig := api.SignWebhook("whsec_1", now, body)
	for _, tc := range []struct {
		name   string
		secret string
		body   []byte
		at     time.Time
		ok     bool
	}{
		{"valid", "whsec_1", body, now.Add(time.Minute), true},
		{"wrong secret", "whsec_2", body, now, false},
		{"tampered body", "whsec_1", []byte(`{"type":"job.failed"}`), now, false},
		{"replayed late", "whsec_1", body, now.Add(time.Hour), false},
	} {
		if err := api.VerifyWebhook(tc.secret, sig, tc.body, tc.at, 5*time.Minute); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
	if api.VerifyWebhook("whsec_1", "garbage", body, now, time.Minute) == nil {
		t.Error("garbage header verifies")
	}
}

func TestErrorStatusTable(t *testing.T) {
	// Errors from other layers map to one status and code each.
	for _, tc := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("engine: %w", api.ErrInvalidInput), 422},
		{fmt.Errorf("engine: %w", api.ErrInvalidModel), 422},
		{fmt.Errorf("get: %w", store.ErrNotFound), 404},
		{&http.MaxBytesError{Limit: 1}, 413},
		{errors.New("boom"), 500},
		// The database cannot be reached: 503, whatever the driver wraps it in.
		{fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), 503},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), 503},
		{fmt.Errorf("query: %w", syscall.ECONNRESET), 503},
		{fmt.Errorf("query: %w", sqlStateError("08006")), 503}, // connection_failure
		{fmt.Errorf("query: %w", sqlStateError("57P01")), 503}, // admin_shutdown
		{fmt.Errorf("query: %w", sqlStateError("53300")), 503}, // too_many_connections
		{fmt.Errorf("query: %w", sqlStateError("23505")), 500}, // unique_violation: a bug, not an outage
	} {
		var e *api.Error
		if !errors.As(api.AsError(tc.err), &e) || e.Status() != tc.status {
			t.Errorf("%v: status %d, want %d", tc.err, e.Status(), tc.status)
		}
	}
}

// sqlStateError is an error with a SQLSTATE, as pgx's *pgconn.PgError has.
type sqlStateError string

func (e sqlStateError) Error() string    { return "SQLSTATE " + string(e) }
func (e sqlStateError) SQLState() string { return string(e) }

func ExampleVerifyWebhook() {
	// A receiver checks the Zkml-Signature header with the key's webhook secret.
	body := []byte(`{"type":"job.succeeded","job":{"id":"job_1"}}`)
	sent := time.Unix(1_700_000_000, 0)
	header := api.SignWebhook("whsec_example", sent, body)
	fmt.Println(api.VerifyWebhook("whsec_example", header, body, sent.Add(30*time.Second), 5*time.Minute))
	fmt.Println(api.VerifyWebhook("whsec_other", header, body, sent, 5*time.Minute) != nil)
	// Output:
	// <nil>
	// true
}
