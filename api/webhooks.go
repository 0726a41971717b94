package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/zkml/zkml/internal/store"
)

// WebhookQueue is implemented by queues that can redeliver a finished job's webhook.
type WebhookQueue interface {
	// RedeliverWebhook queues delivery number j.WebhookRedeliveries of j's webhook.
	RedeliverWebhook(ctx context.Context, j *store.Job) error
}

// WebhookView is a job's webhook: where it goes, and every delivery attempt.
type WebhookView struct {
	URL        string                `json:"url"`
	Delivered  bool                  `json:"delivered"`
	Attempts   int                   `json:"attempts"`
	Deliveries []WebhookDeliveryView `json:"deliveries"`
}

// WebhookDeliveryView is one delivery attempt.
type WebhookDeliveryView struct {
	// Redelivery is 0 for the automatic delivery, n for the n-th manual redelivery.
	Redelivery int       `json:"redelivery"`
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	Delivered  bool      `json:"delivered"`
}

// newWebhookView renders j's webhook, or nil when it has none.
func newWebhookView(j *store.Job) *WebhookView {
	if j.WebhookURL == "" {
		return nil
	}
	v := &WebhookView{URL: j.WebhookURL, Delivered: j.WebhookDelivered, Attempts: j.WebhookAttempts,
		Deliveries: make([]WebhookDeliveryView, 0, len(j.WebhookDeliveries))}
	for _, d := range j.WebhookDeliveries {
		v.Deliveries = append(v.Deliveries, WebhookDeliveryView{Redelivery: d.Redelivery, Attempt: d.Attempt, At: d.At,
			StatusCode: d.StatusCode, Error: d.Error, Delivered: d.Delivered})
	}
	return v
}

// redeliverWebhook is POST /v1/jobs/{id}/webhook: deliver a finished job's webhook
// again (after the receiver was down past the retry window, or lost the event).
func (s *Server) redeliverWebhook(w http.ResponseWriter, r *http.Request) error {
	q, ok := s.queue.(WebhookQueue)
	if !ok {
		return errorf(KindNotFound, "not_found", "webhook redelivery is not available")
	}
	j, err := s.store.RedeliverWebhook(r.Context(), principalFrom(r.Context()).keyID, chi.URLParam(r, "id"))
	if errors.Is(err, store.ErrConflict) {
		if j.WebhookURL == "" {
			return errorf(KindConflict, "no_webhook", "job %s has no webhook_url", j.ID)
		}
		return errorf(KindConflict, "job_not_finished", "job %s is %s; its webhook is sent when it finishes", j.ID, j.Status)
	}
	if err != nil {
		return err
	}
	if err := q.RedeliverWebhook(r.Context(), j); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/jobs/"+j.ID)
	return writeJSON(w, http.StatusAccepted, NewJobView(j))
}

// PublicAddr reports whether ip is a public unicast address: not loopback, private,
// link-local, carrier-grade NAT or unique-local. Webhooks may only go to those.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) && // carrier-grade NAT
		!netip.MustParsePrefix("fc00::/7").Contains(ip)
}

// checkWebhookTarget refuses, at submit time, a webhook URL whose host is a
// loopback or private address, "localhost", or a name resolving to one (unless the
// server allows private webhooks). A name that does not resolve now is accepted:
// the delivery dialer checks the address it connects to in any case.
func (s *Server) checkWebhookTarget(ctx context.Context, raw string) error {
	if raw == "" || s.allowPrivateWebhooks {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return badRequest("webhook_url must be an absolute http(s) URL")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	refuse := func(what string) error {
		return badRequest("webhook_url %s is %s; webhooks go to public addresses only", host, what)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return refuse("a loopback name")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !PublicAddr(ip) {
			return refuse("not a public address")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if !PublicAddr(ip) {
			return refuse("a name for the non-public address " + ip.String())
		}
	}
	return nil
}
